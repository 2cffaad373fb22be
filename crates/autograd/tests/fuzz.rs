//! A fuzz harness over the public API: proptest builds random op chains on random
//! shapes (0, 1, large, overflowing), attributes (0, huge, negative where signed) and
//! values (NaN, ±inf, subnormals, ±1e30), then runs them forward and backward. Every
//! case must return `Ok` or a typed error — a panic fails the case, an abort or a
//! runaway allocation would end the run. Chains of smooth ops on valid small inputs
//! must also pass gradcheck.
//!
//! CI runs `FUZZ_CASES` cases (default 1500, about a minute); a long campaign:
//! `FUZZ_CASES=200000 cargo test --release -p chainrule-autograd --test fuzz -- --nocapture`.
//!
//! Sizes are drawn from `0..=5` or from `2^35` and up, never in between: a product of
//! such dims is either tiny or far beyond any machine (refused with `TooLarge` or
//! `OutOfMemory`), so no case can succeed in allocating gigabytes.

use chainrule_autograd::{
    gradcheck, AvgPool2dParams, Conv2dParams, Error, MaxPool2dParams, Reduction, Tape, Tensor,
    TensorError, Unary, Var,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A size: small, or so large that nothing of it can be allocated.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=5,
        1 => Just(1usize << 35),
        1 => Just(1usize << 62),
        1 => Just(usize::MAX),
        1 => Just((1usize << 63) + 1),
    ]
}

/// A signed dim or extent, in range or not.
fn signed() -> impl Strategy<Value = isize> {
    prop_oneof![
        8 => -5isize..=5,
        1 => Just(isize::MAX),
        1 => Just(isize::MIN),
        1 => Just(1isize << 40),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -2.0f64..2.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e-310),
        1 => Just(1e30),
        1 => Just(-1e30),
        1 => Just(-0.0),
    ]
}

/// A tensor that exists: at most 4 dims of at most 4 (256 elements).
fn tensor() -> impl Strategy<Value = Tensor<f64>> {
    prop::collection::vec(0usize..=4, 0..=4).prop_flat_map(|dims| {
        let n = dims.iter().product::<usize>();
        prop::collection::vec(value(), n)
            .prop_map(move |data| Tensor::from_vec(data, &dims).expect("length matches"))
    })
}

fn pair() -> impl Strategy<Value = [usize; 2]> {
    [size(), size()]
}

#[derive(Clone, Debug)]
enum Op {
    Unary(usize),
    LeakyRelu(f64),
    Powf(f64),
    Binary(usize, Tensor<f64>),
    Sum,
    Mean,
    SumDims(Vec<isize>, bool),
    MeanDims(Vec<isize>, bool),
    Max(isize, bool),
    Logsumexp(isize, bool),
    Softmax(isize),
    LogSoftmax(isize),
    Reshape(Vec<isize>),
    Flatten(isize),
    Permute(Vec<isize>),
    Transpose(isize, isize),
    BroadcastTo(Vec<usize>),
    Narrow(isize, usize, usize),
    ConcatSelf(isize),
    Matmul(Tensor<f64>),
    Linear(Tensor<f64>, bool),
    Conv2d {
        weight: Tensor<f64>,
        bias: bool,
        params: Conv2dParams,
    },
    MaxPool(MaxPool2dParams),
    AvgPool(AvgPool2dParams),
    Adaptive([usize; 2]),
    CrossEntropy(Vec<usize>, Reduction),
    Mse(Reduction),
    Bce(Reduction),
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        Just(Reduction::Mean),
        Just(Reduction::Sum),
        Just(Reduction::None)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let dims = || prop::collection::vec(signed(), 0..=4);
    prop_oneof![
        (0..Unary::ALL.len()).prop_map(Op::Unary),
        value().prop_map(Op::LeakyRelu),
        value().prop_map(Op::Powf),
        ((0usize..5), tensor()).prop_map(|(k, t)| Op::Binary(k, t)),
        Just(Op::Sum),
        Just(Op::Mean),
        (dims(), any::<bool>()).prop_map(|(d, k)| Op::SumDims(d, k)),
        (dims(), any::<bool>()).prop_map(|(d, k)| Op::MeanDims(d, k)),
        (signed(), any::<bool>()).prop_map(|(d, k)| Op::Max(d, k)),
        (signed(), any::<bool>()).prop_map(|(d, k)| Op::Logsumexp(d, k)),
        signed().prop_map(Op::Softmax),
        signed().prop_map(Op::LogSoftmax),
        dims().prop_map(Op::Reshape),
        signed().prop_map(Op::Flatten),
        dims().prop_map(Op::Permute),
        (signed(), signed()).prop_map(|(a, b)| Op::Transpose(a, b)),
        prop::collection::vec(size(), 0..=5).prop_map(Op::BroadcastTo),
        (signed(), size(), size()).prop_map(|(d, s, l)| Op::Narrow(d, s, l)),
        signed().prop_map(Op::ConcatSelf),
        tensor().prop_map(Op::Matmul),
        (tensor(), any::<bool>()).prop_map(|(w, b)| Op::Linear(w, b)),
        (tensor(), any::<bool>(), pair(), pair(), pair(), size()).prop_map(
            |(weight, bias, stride, padding, dilation, groups)| Op::Conv2d {
                weight,
                bias,
                params: Conv2dParams {
                    stride,
                    padding,
                    dilation,
                    groups,
                },
            }
        ),
        (pair(), pair(), pair(), pair(), any::<bool>()).prop_map(|(k, s, p, d, c)| {
            Op::MaxPool(MaxPool2dParams {
                kernel_size: k,
                stride: s,
                padding: p,
                dilation: d,
                ceil_mode: c,
            })
        }),
        (pair(), pair(), pair(), any::<bool>(), any::<bool>()).prop_map(|(k, s, p, c, i)| {
            Op::AvgPool(AvgPool2dParams {
                kernel_size: k,
                stride: s,
                padding: p,
                ceil_mode: c,
                count_include_pad: i,
            })
        }),
        pair().prop_map(Op::Adaptive),
        (prop::collection::vec(size(), 0..=5), reduction())
            .prop_map(|(l, r)| Op::CrossEntropy(l, r)),
        reduction().prop_map(Op::Mse),
        reduction().prop_map(Op::Bce),
    ]
}

fn apply(x: &Var<f64>, op: &Op) -> chainrule_autograd::Result<Var<f64>> {
    let tape = x.tape();
    Ok(match op {
        Op::Unary(i) => x.unary(Unary::ALL[*i]),
        Op::LeakyRelu(s) => x.leaky_relu(*s),
        Op::Powf(p) => x.powf(*p),
        Op::Binary(k, t) => {
            let y = tape.leaf(t.clone());
            match k {
                0 => x.add(&y)?,
                1 => x.sub(&y)?,
                2 => x.mul(&y)?,
                3 => x.div(&y)?,
                _ => x.maximum(&y)?,
            }
        }
        Op::Sum => x.sum(),
        Op::Mean => x.mean()?,
        Op::SumDims(d, k) => x.sum_dims(d, *k)?,
        Op::MeanDims(d, k) => x.mean_dims(d, *k)?,
        Op::Max(d, k) => x.max(*d, *k)?,
        Op::Logsumexp(d, k) => x.logsumexp(*d, *k)?,
        Op::Softmax(d) => x.softmax(*d)?,
        Op::LogSoftmax(d) => x.log_softmax(*d)?,
        Op::Reshape(d) => x.reshape(d)?,
        Op::Flatten(d) => x.flatten(*d)?,
        Op::Permute(d) => x.permute(d)?,
        Op::Transpose(a, b) => x.transpose(*a, *b)?,
        Op::BroadcastTo(d) => x.broadcast_to(d)?,
        Op::Narrow(d, s, l) => x.narrow(*d, *s, *l)?,
        Op::ConcatSelf(d) => Var::concat(&[x, x], *d)?,
        Op::Matmul(t) => x.matmul(&tape.leaf(t.clone()))?,
        Op::Linear(w, bias) => {
            let out = w.dims().first().copied().unwrap_or(0);
            let b = bias.then(|| tape.leaf(Tensor::zeros(&[out]).expect("small")));
            x.linear(&tape.leaf(w.clone()), b.as_ref())?
        }
        Op::Conv2d {
            weight,
            bias,
            params,
        } => {
            let out = weight.dims().first().copied().unwrap_or(0);
            let b = bias.then(|| tape.leaf(Tensor::zeros(&[out]).expect("small")));
            x.conv2d(&tape.leaf(weight.clone()), b.as_ref(), *params)?
        }
        Op::MaxPool(p) => x.max_pool2d(*p)?,
        Op::AvgPool(p) => x.avg_pool2d(*p)?,
        Op::Adaptive(s) => x.adaptive_avg_pool2d(*s)?,
        Op::CrossEntropy(l, r) => x.cross_entropy(l, *r)?,
        Op::Mse(r) => x.mse_loss(&x.detach(), *r)?,
        Op::Bce(r) => x.bce_with_logits(&x.sigmoid().detach(), *r)?,
    })
}

/// Runs a chain forward until an op refuses, then backward from whatever it reached.
/// Returns how far it got and whether backward ran.
fn run_chain(x: &Tensor<f64>, ops: &[Op]) -> (usize, bool) {
    let tape = Tape::<f64>::new();
    let mut v = tape.leaf(x.clone());
    let mut done = 0;
    for op in ops {
        match apply(&v, op) {
            Ok(y) => {
                v = y;
                done += 1;
            }
            Err(e) => {
                check_typed(&e);
                break;
            }
        }
    }
    let seed = Tensor::full(v.dims(), 1.0).expect("an output that exists can be matched");
    match v.backward_with(&seed) {
        Ok(_) => (done, true),
        Err(e) => {
            check_typed(&e);
            (done, false)
        }
    }
}

/// Every error names its op and renders without panicking.
fn check_typed(e: &Error) {
    let text = e.to_string();
    assert!(!text.is_empty());
    if let Error::Op { op, source, .. } = e {
        assert!(!op.is_empty());
        let _ = source.to_string();
    }
}

#[test]
fn random_op_chains_never_panic() {
    let n = cases(1500);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    // chains stopped at the first op, chains that ran ops, backward runs, ops run
    let stats = std::cell::Cell::new([0usize; 4]);
    runner
        .run(
            &(tensor(), prop::collection::vec(op(), 1..=6)),
            |(x, ops)| {
                let (done, backward) = run_chain(&x, &ops);
                let mut s = stats.get();
                s[usize::from(done > 0)] += 1;
                s[2] += usize::from(backward);
                s[3] += done;
                stats.set(s);
                Ok(())
            },
        )
        .unwrap();
    let stats = stats.get();
    println!(
        "fuzz: {n} chains, {} stopped at the first op, {} ran {} ops in all, {} ran backward; no panic",
        stats[0], stats[1], stats[3], stats[2]
    );
    assert!(
        stats[1] > 0 && stats[2] > 0,
        "the generator never produced a valid op"
    );
}

#[test]
fn random_shapes_and_sizes_are_ok_or_typed_errors() {
    let mut runner = TestRunner::new(Config {
        cases: cases(1500),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(size(), 0..=6), |dims| {
            let small = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_some_and(|n| n <= 1 << 16);
            match Tensor::<f32>::zeros(&dims) {
                Ok(t) => prop_assert!(small && t.numel() <= 1 << 16),
                Err(TensorError::TooLarge { .. } | TensorError::OutOfMemory { .. }) => {
                    prop_assert!(!small || dims.contains(&0))
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
            let describable = chainrule_autograd::Shape::new(&dims).is_ok();
            prop_assert_eq!(
                Tensor::<f64>::from_vec(vec![], &dims).is_ok(),
                describable && dims.contains(&0)
            );
            Ok(())
        })
        .unwrap();
}

/// A smooth op that is valid for the shape at hand, chosen by `pick`.
fn smooth(x: &Var<f64>, pick: u8) -> chainrule_autograd::Result<Var<f64>> {
    let nd = x.dims().len() as isize;
    let last = (pick as isize) % nd.max(1);
    Ok(match pick % 12 {
        0 => x.tanh(),
        1 => x.sigmoid(),
        2 => x.tanh().exp(),
        3 => x.square().mul_scalar(0.5),
        4 if nd > 0 => x.softmax(last)?,
        5 if nd > 0 => x.log_softmax(last)?,
        6 if nd > 0 => x.logsumexp(last, true)?,
        7 if nd > 1 => x.transpose(0, -1)?,
        8 => x.reshape(&[-1])?,
        9 => x.broadcast_to(&[2].iter().chain(x.dims()).copied().collect::<Vec<_>>())?,
        10 if nd > 0 => x.mean_dims(&[last], true)?,
        11 if nd == 2 => {
            let k = x.dims()[1];
            let w = Tensor::from_vec(
                (0..k * 3).map(|i| (i as f64 * 0.37).sin()).collect(),
                &[k, 3],
            )?;
            x.matmul(&x.tape().constant(w))?
        }
        _ => x.add_scalar(0.25),
    })
}

#[test]
fn random_smooth_chains_pass_gradcheck() {
    let mut runner = TestRunner::new(Config {
        cases: cases(1500) / 10,
        failure_persistence: None,
        ..Config::default()
    });
    let input = prop::collection::vec(1usize..=3, 1..=3).prop_flat_map(|dims| {
        let n = dims.iter().product::<usize>();
        prop::collection::vec(-1.0f64..1.0, n)
            .prop_map(move |data| Tensor::from_vec(data, &dims).expect("length matches"))
    });
    runner
        .run(
            &(input, prop::collection::vec(any::<u8>(), 1..=4)),
            |(x, picks)| {
                let f = |v: &[Var<f64>]| -> chainrule_autograd::Result<Var<f64>> {
                    let mut h = v[0].clone();
                    for &p in &picks {
                        h = smooth(&h, p)?;
                    }
                    Ok(h)
                };
                let report = gradcheck(f, &[x]).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(report.checked > 0);
                Ok(())
            },
        )
        .unwrap();
}
