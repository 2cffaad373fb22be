//! One model, several threads: each thread records its own tape over the shared
//! parameters. Four threads each take a quarter of a batch; their gradients, summed in
//! a fixed order, are the same to the bit run to run and within 1e-6 of the full
//! batch's. And an optimizer step while other threads read is well-defined: a reader
//! sees each parameter whole, before or after the step.

use chainrule::nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use chainrule::nn::{Module, ModuleState};
use chainrule::{Gradients, Param, Reduction, Tape, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

const BATCH: usize = 32;

fn model() -> Sequential<f64> {
    let mut rng = StdRng::seed_from_u64(5);
    Sequential::new()
        .push(Conv2d::new(1, 4, [3, 3], &mut rng).unwrap())
        .push(ReLU)
        .push(MaxPool2d::new([2, 2]))
        .push(Flatten::default())
        .push(Linear::new(4 * 5 * 5, 10, &mut rng).unwrap())
}

fn batch() -> (Tensor<f64>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(6);
    let x = (0..BATCH * 144).map(|_| rng.gen_range(-1.0..1.0)).collect();
    (
        Tensor::from_vec(x, &[BATCH, 1, 12, 12]).unwrap(),
        (0..BATCH).map(|i| (i * 7) % 10).collect(),
    )
}

/// The summed loss of `rows` of the batch over `BATCH` (so the parts add up to the
/// full batch's mean), differentiated on a tape of this thread's own.
fn part_grads(net: &Sequential<f64>, rows: std::ops::Range<usize>) -> Gradients<f64> {
    let (x, labels) = batch();
    let tape = Tape::new();
    let xs = tape.constant(x);
    let part = xs.narrow(0, rows.start, rows.len()).unwrap();
    net.forward(&part)
        .unwrap()
        .cross_entropy(&labels[rows], Reduction::Sum)
        .unwrap()
        .mul_scalar(1.0 / BATCH as f64)
        .backward()
        .unwrap()
}

/// Four threads, a quarter each, summed in thread order.
fn four_threads(net: &Sequential<f64>) -> Gradients<f64> {
    let q = BATCH / 4;
    let parts: Vec<Gradients<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| s.spawn(move || part_grads(net, t * q..(t + 1) * q)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap();
    for p in parts {
        total.accumulate(p).unwrap();
    }
    total
}

fn bits(net: &Sequential<f64>, g: &Gradients<f64>) -> Vec<u64> {
    net.parameters()
        .iter()
        .flat_map(|p| g.get(p).unwrap().data().to_vec())
        .map(f64::to_bits)
        .collect()
}

#[test]
fn four_threads_on_quarters_match_the_full_batch() {
    let net = model();
    let a = four_threads(&net);
    let b = four_threads(&net);
    assert_eq!(bits(&net, &a), bits(&net, &b), "run to run");
    let full = part_grads(&net, 0..BATCH);
    let mut worst = 0.0f64;
    for p in net.parameters() {
        let (x, y) = (a.get(&p).unwrap(), full.get(&p).unwrap());
        for (u, v) in x.data().iter().zip(y.data()) {
            worst = worst.max((u - v).abs());
        }
    }
    assert!(
        worst < 1e-6,
        "largest difference from the full batch {worst:e}"
    );
    assert!(
        worst > 0.0 || a.len() == 4,
        "compared {} parameters",
        a.len()
    );
}

#[test]
fn a_step_while_other_threads_read_shows_each_parameter_whole() {
    let w = Param::new(Tensor::<f64>::full(&[1000], 0.0).unwrap());
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for step in 1..=200 {
                w.set(Tensor::full(&[1000], step as f64).unwrap());
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..200 {
                    let tape = Tape::<f64>::new();
                    let v = tape.param(&w);
                    let first = v.value().data()[0];
                    assert!(v.value().data().iter().all(|&x| x == first), "torn read");
                    let g = v.sum().backward().unwrap();
                    assert_eq!(g.get(&w).unwrap().data(), &[1.0; 1000][..]);
                }
            });
        }
        writer.join().unwrap();
    });
    assert_eq!(w.value().data()[0], 200.0);
}
