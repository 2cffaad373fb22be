#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! Every layer's output shape, and gradcheck in f64 through the layer with respect to
//! its input and each of its parameters.

use chainrule_autograd::{gradcheck, AvgPool2dParams, Conv2dParams, Tensor, Var};
use chainrule_nn::layers::*;
use chainrule_nn::{Module, ModuleState};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn rand(dims: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    // distinct values away from 0, so ReLU and max-pool have no kinks within eps
    let mut v: Vec<f64> = (0..n)
        .map(|i| (i as f64 - n as f64 / 2.0) * 0.037 + 0.011)
        .collect();
    for i in (1..n).rev() {
        v.swap(i, rng.gen_range(0..=i));
    }
    Tensor::from_vec(v, dims).unwrap()
}

/// Checks the layer's output shape; then gradcheck with respect to the input, and the
/// same central-difference comparison (PyTorch's tolerances) for every parameter
/// element, perturbing the parameter in place.
fn check(layer: &dyn Module<f64>, input: &[usize], want: &[usize]) {
    let x = rand(input, 1);
    let tape = chainrule_autograd::Tape::new();
    let y = layer.forward(&tape.constant(x.clone())).unwrap();
    assert_eq!(y.dims(), want);
    gradcheck(|v: &[Var<f64>]| layer.forward(&v[0]), &[x.clone()]).unwrap();
    if layer.parameters().is_empty() {
        return;
    }

    let mut rng = StdRng::seed_from_u64(9);
    let cot = Tensor::from_vec(
        (0..y.value().numel())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect(),
        want,
    )
    .unwrap();
    let objective = || -> f64 {
        let tape = chainrule_autograd::Tape::new();
        let y = layer.forward(&tape.constant(x.clone())).unwrap();
        y.value()
            .data()
            .iter()
            .zip(cot.data())
            .map(|(a, b)| a * b)
            .sum()
    };
    let tape = chainrule_autograd::Tape::new();
    let grads = layer
        .forward(&tape.constant(x.clone()))
        .unwrap()
        .backward_with(&cot)
        .unwrap();
    let eps = 1e-6;
    for (name, p) in layer.named_parameters() {
        let analytic = grads
            .get(&p)
            .unwrap_or_else(|| panic!("{name} got no gradient"))
            .clone();
        for j in 0..analytic.numel() {
            let orig = p.value().data()[j];
            p.update(|t| t.data_mut()[j] = orig + eps);
            let up = objective();
            p.update(|t| t.data_mut()[j] = orig - eps);
            let down = objective();
            p.update(|t| t.data_mut()[j] = orig);
            let numeric = (up - down) / (2.0 * eps);
            let a = analytic.data()[j];
            assert!(
                (a - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(),
                "{name}[{j}]: analytic {a}, numeric {numeric}"
            );
        }
    }
}

#[test]
fn layers_have_the_documented_output_shapes() {
    let mut rng = StdRng::seed_from_u64(0);
    let tape = chainrule_autograd::Tape::<f32>::new();
    let x = tape.constant(Tensor::zeros(&[2, 4, 8, 8]).unwrap());
    let shape = |m: &dyn Module<f32>| m.forward(&x).unwrap().dims().to_vec();
    assert_eq!(
        shape(&Conv2d::new(4, 6, [3, 3], &mut rng).unwrap()),
        [2, 6, 6, 6]
    );
    let strided = Conv2d::with_options(
        4,
        6,
        [3, 3],
        Conv2dParams {
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 2,
        },
        false,
        &mut rng,
    );
    assert_eq!(shape(&strided.unwrap()), [2, 6, 4, 4]);
    assert_eq!(shape(&MaxPool2d::new([2, 2])), [2, 4, 4, 4]);
    assert_eq!(shape(&AvgPool2d::new([3, 3])), [2, 4, 2, 2]);
    assert_eq!(shape(&AdaptiveAvgPool2d([3, 5])), [2, 4, 3, 5]);
    assert_eq!(shape(&GlobalAvgPool2d), [2, 4]);
    assert_eq!(shape(&Flatten::default()), [2, 256]);
    for act in [
        &ReLU as &dyn Module<f32>,
        &LeakyReLU(0.1),
        &Sigmoid,
        &Tanh,
        &Softmax(1),
        &GELU::default(),
        &GELU(GeluApproximation::Tanh),
        &SiLU,
        &ELU::default(),
        &Softplus::default(),
        &LogSigmoid,
    ] {
        assert_eq!(shape(act), [2, 4, 8, 8]);
    }
    let flat = tape.constant(Tensor::zeros(&[5, 7]).unwrap());
    assert_eq!(
        Linear::new(7, 3, &mut rng)
            .unwrap()
            .forward(&flat)
            .unwrap()
            .dims(),
        [5, 3]
    );
    assert!(Conv2d::<f32>::with_options(
        4,
        6,
        [3, 3],
        Conv2dParams {
            groups: 4,
            ..Default::default()
        },
        true,
        &mut rng
    )
    .is_err());
}

#[test]
fn gradients_through_each_layer_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(3);
    check(&Linear::new(4, 3, &mut rng).unwrap(), &[2, 4], &[2, 3]);
    check(
        &Linear::without_bias(4, 3, &mut rng).unwrap(),
        &[2, 4],
        &[2, 3],
    );
    check(
        &Conv2d::new(2, 3, [3, 3], &mut rng).unwrap(),
        &[2, 2, 5, 5],
        &[2, 3, 3, 3],
    );
    let grouped = Conv2d::with_options(
        4,
        2,
        [2, 2],
        Conv2dParams {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 2,
        },
        true,
        &mut rng,
    );
    check(&grouped.unwrap(), &[1, 4, 5, 6], &[1, 2, 3, 4]);
    check(&MaxPool2d::new([2, 2]), &[1, 2, 4, 6], &[1, 2, 2, 3]);
    check(
        &AvgPool2d(AvgPool2dParams {
            padding: [1, 1],
            count_include_pad: false,
            ..AvgPool2dParams::new([3, 3])
        }),
        &[1, 2, 5, 5],
        &[1, 2, 2, 2],
    );
    check(&AdaptiveAvgPool2d([2, 2]), &[1, 2, 5, 5], &[1, 2, 2, 2]);
    check(&GlobalAvgPool2d, &[2, 3, 3, 3], &[2, 3]);
    check(&Flatten::default(), &[2, 3, 2], &[2, 6]);
    check(&ReLU, &[3, 4], &[3, 4]);
    check(&LeakyReLU(0.2), &[3, 4], &[3, 4]);
    check(&Sigmoid, &[3, 4], &[3, 4]);
    check(&Tanh, &[3, 4], &[3, 4]);
    check(&Softmax(-1), &[3, 4], &[3, 4]);
    check(&GELU::default(), &[3, 4], &[3, 4]);
    check(&GELU(GeluApproximation::Tanh), &[3, 4], &[3, 4]);
    check(&SiLU, &[3, 4], &[3, 4]);
    check(&ELU(0.5), &[3, 4], &[3, 4]);
    check(&Softplus::default(), &[3, 4], &[3, 4]);
    check(&LogSigmoid, &[3, 4], &[3, 4]);
    let seq = Sequential::new()
        .push(Conv2d::new(1, 2, [3, 3], &mut rng).unwrap())
        .push(Tanh)
        .push(Flatten::default())
        .push(Linear::new(8, 3, &mut rng).unwrap());
    check(&seq, &[2, 1, 4, 4], &[2, 3]);
}

#[test]
fn dropout_scales_kept_units_and_is_identity_in_eval() {
    let d = Dropout::new(0.25, 1).unwrap();
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(Tensor::ones(&[4000]).unwrap());
    let y = Module::<f64>::forward(&d, &x).unwrap();
    let kept = y.value().data().iter().filter(|&&v| v != 0.0).count() as f64 / 4000.0;
    assert!((kept - 0.75).abs() < 0.03, "kept {kept}");
    assert!(y
        .value()
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-12));
    let g = y.sum().backward().unwrap();
    assert_eq!(g.wrt(&x).unwrap(), y.value(), "gradient is the mask");
    ModuleState::<f64>::eval(&d);
    assert_eq!(Module::<f64>::forward(&d, &x).unwrap().value(), x.value());
}

#[test]
fn batch_norm_with_cumulative_momentum_matches_pytorch() {
    // torch.nn.BatchNorm1d(2, momentum=None) after batches a and b, then eval on [1, 1]
    let cfg = BatchNormConfig {
        momentum: None,
        ..Default::default()
    };
    let bn = BatchNorm1d::<f64>::with_config(2, cfg).unwrap();
    let tape = chainrule_autograd::Tape::new();
    let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 5.0, 4.0, -1.0], &[3, 2]).unwrap());
    let b = tape.constant(Tensor::from_vec(vec![0.0, 1.0, 2.0, 2.0], &[2, 2]).unwrap());
    bn.forward(&a).unwrap();
    bn.forward(&b).unwrap();
    let buffers = bn.named_buffers();
    let close =
        |got: &[f64], want: &[f64]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12);
    assert!(close(
        buffers[0].1.float().unwrap().data(),
        &[1.8333333333333333, 1.75]
    ));
    assert!(close(
        buffers[1].1.float().unwrap().data(),
        &[2.1666666666666665, 4.75]
    ));
    assert_eq!(buffers[2].1.int().unwrap().data(), &[2]);
    bn.eval();
    let y = bn
        .forward(&tape.constant(Tensor::from_vec(vec![1.0, 1.0], &[1, 2]).unwrap()))
        .unwrap();
    assert!(close(
        y.value().data(),
        &[-0.5661372106033193, -0.3441232385710453]
    ));
    // eval leaves the statistics alone
    assert_eq!(bn.named_buffers()[2].1.int().unwrap().data(), &[2]);
    let names: Vec<String> = bn.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
}

#[test]
fn normalization_and_embedding_layers_match_finite_differences() {
    let bn = BatchNorm2d::<f64>::new(2).unwrap();
    check(&bn, &[3, 2, 2, 2], &[3, 2, 2, 2]);
    bn.eval();
    check(&bn, &[3, 2, 2, 2], &[3, 2, 2, 2]);
    check(
        &LayerNorm::new(&[3, 2], 1e-5, true).unwrap(),
        &[2, 3, 2],
        &[2, 3, 2],
    );
    check(
        &GroupNorm::new(2, 4, 1e-5, true).unwrap(),
        &[2, 4, 3],
        &[2, 4, 3],
    );
    check(&Identity, &[2, 3], &[2, 3]);
    let emb = Embedding::<f64>::new(5, 3, None, &mut StdRng::seed_from_u64(4)).unwrap();
    let ids = chainrule_autograd::IntTensor::from_vec(vec![0, 1, 4, 4, 2, 1], &[2, 3]).unwrap();
    chainrule_nn::check::gradcheck_module(&emb, &[Tensor::zeros(&[1]).unwrap()], |m, v| {
        Ok(m.forward_ids(v[0].tape(), &ids)?.tanh().sum())
    })
    .unwrap();
}

#[test]
fn batch_norm_rejects_one_value_per_channel_in_training() {
    let bn = BatchNorm1d::<f32>::new(3).unwrap();
    let x = chainrule_autograd::Tape::new().constant(Tensor::ones(&[1, 3]).unwrap());
    let e = bn.forward(&x).unwrap_err().to_string();
    assert!(e.contains("more than 1 value per channel"), "{e}");
    bn.eval();
    assert!(bn.forward(&x).is_ok());
}
