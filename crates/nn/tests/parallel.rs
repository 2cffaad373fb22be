//! Micro-batch data parallelism in one process: the gradient of a split batch equals
//! the unsplit one up to summation order, and is bitwise the same for any thread count.

use chainrule_autograd::{Gradients, Reduction, Tape, Tensor};
use chainrule_nn::layers::{BatchNorm1d, Linear};
use chainrule_nn::models::seed_cnn;
use chainrule_nn::{parallel, Module, ModuleState};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn batch(n: usize, rng: &mut StdRng) -> (Tensor<f64>, Vec<usize>) {
    let x = (0..n * 784).map(|_| rng.gen::<f64>()).collect();
    let labels = (0..n).map(|_| rng.gen_range(0..10)).collect();
    (Tensor::from_vec(x, &[n, 1, 28, 28]).unwrap(), labels)
}

/// Rows `[start, start + len)` of a batch.
fn rows(b: &(Tensor<f64>, Vec<usize>), start: usize, len: usize) -> (Tensor<f64>, Vec<usize>) {
    let x = b.0.data()[start * 784..(start + len) * 784].to_vec();
    (
        Tensor::from_vec(x, &[len, 1, 28, 28]).unwrap(),
        b.1[start..start + len].to_vec(),
    )
}

#[test]
fn split_batches_match_the_whole_batch_and_any_thread_count() {
    let mut rng = StdRng::seed_from_u64(1);
    let net = seed_cnn::<f64, _>(&mut rng, true).unwrap();
    let whole = batch(60, &mut rng);
    let tape = Tape::new();
    let loss = net
        .forward(&tape.constant(whole.0.clone()))
        .unwrap()
        .cross_entropy(&whole.1, Reduction::Mean)
        .unwrap();
    let reference = loss.backward().unwrap();
    let full_loss = loss.value().item().unwrap();

    // unequal micro-batches: 7 of them, the weights are their shares of the rows
    let sizes = [9, 9, 9, 9, 9, 9, 6];
    let mut start = 0;
    let micro: Vec<_> = sizes
        .iter()
        .map(|&n| {
            let m = rows(&whole, start, n);
            start += n;
            m
        })
        .collect();
    let weights: Vec<f64> = sizes.iter().map(|&n| n as f64 / 60.0).collect();
    let run = |threads: usize| -> (f64, Gradients<f64>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            parallel::micro_batch_gradients(&net, &micro, &weights, |tape, (x, y)| {
                net.forward(&tape.constant(x.clone()))?
                    .cross_entropy(y, Reduction::Mean)
            })
            .unwrap()
        })
    };
    let (loss1, g1) = run(1);
    let (loss2, g2) = run(2);
    let (loss3, g3) = run(3);
    assert!((loss1 - full_loss).abs() <= 1e-12 * full_loss);
    assert_eq!(loss1.to_bits(), loss2.to_bits());
    assert_eq!(loss1.to_bits(), loss3.to_bits());
    for p in net.parameters() {
        let r = reference.get(&p).unwrap().data();
        let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for g in [&g1, &g2, &g3] {
            let d = g.get(&p).unwrap().data();
            assert!(d
                .iter()
                .zip(g1.get(&p).unwrap().data())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let worst = d
                .iter()
                .zip(r)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 1e-12 * scale,
                "split gradient off by {worst:e} (scale {scale:e})"
            );
        }
    }
}

#[test]
fn bad_weights_and_models_with_buffers_are_refused() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Linear::<f64>::new(2, 2, &mut rng).unwrap();
    let micro = [Tensor::<f64>::ones(&[1, 2]).unwrap()];
    let f = |tape: &Tape<f64>, x: &Tensor<f64>| Ok(net.forward(&tape.constant(x.clone()))?.sum());
    let e = parallel::micro_batch_gradients(&net, &micro, &[0.5, 0.5], f).unwrap_err();
    assert!(
        e.to_string().contains("1 micro-batches and 2 weights"),
        "{e}"
    );
    let e = parallel::micro_batch_gradients(&net, &micro, &[f64::NAN], f).unwrap_err();
    assert!(e.to_string().contains("not finite"), "{e}");
    let bn = BatchNorm1d::<f64>::new(2).unwrap();
    let e = parallel::micro_batch_gradients(&bn, &micro, &[1.0], |tape, x| {
        Ok(bn.forward(&tape.constant(x.clone()))?.sum())
    })
    .unwrap_err();
    assert!(e.to_string().contains("running_mean"), "{e}");
}
