#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for the losses (cross-entropy with label smoothing and ignored
//! labels, NLL, MSE, BCE, L1, smooth L1, Huber, KL divergence, cosine similarity), every
//! reduction, and stability on huge logits.

mod common;
use common::gradchecks;

use chainrule_autograd::{CrossEntropyOptions, IntTensor, Reduction, Tape, Tensor, Var};
use common::rand_tensor;

const REDUCTIONS: [Reduction; 4] = [
    Reduction::Mean,
    Reduction::Sum,
    Reduction::None,
    Reduction::BatchMean,
];

#[test]
fn class_losses_match_finite_differences() {
    let labels = [2usize, 0, 4, 1];
    for r in REDUCTIONS {
        let x = rand_tensor(&[4, 5], -2.0, 2.0, 1);
        gradchecks(|v| v[0].cross_entropy(&labels, r), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].log_softmax(1)?.nll_loss(&labels, r), &[x]).unwrap();
    }
}

#[test]
fn regression_losses_match_finite_differences() {
    for r in REDUCTIONS {
        let (x, t) = (
            rand_tensor(&[3, 4], -2.0, 2.0, 2),
            rand_tensor(&[3, 4], -2.0, 2.0, 3),
        );
        gradchecks(|v| v[0].mse_loss(&v[1], r), &[x.clone(), t]).unwrap();
        let bits = Tensor::from_vec((0..12).map(|i| (i % 2) as f64).collect(), &[3, 4]).unwrap();
        let tape = Tape::<f64>::new();
        let target = tape.constant(bits);
        // the target is a constant: only the logits are checked
        gradchecks(|v| v[0].bce_with_logits(&target.detach_to(&v[0]), r), &[x]).unwrap();
    }
}

#[test]
fn cross_entropy_stays_finite_for_logits_in_the_thousands() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(
        Tensor::from_vec(vec![5000.0, -3000.0, 0.0, 1000.0, 1000.0, -1000.0], &[2, 3]).unwrap(),
    );
    let loss = x.cross_entropy(&[1, 0], Reduction::Mean).unwrap();
    // rows: 5000 − (−3000) = 8000, and ln 2 for the tie; the mean of the two
    let want = 4000.0 + 0.5 * std::f32::consts::LN_2;
    assert!((loss.value().item().unwrap() - want).abs() < 1e-2);
    let g = loss.backward().unwrap();
    assert!(g.wrt(&x).unwrap().data().iter().all(|v| v.is_finite()));
    let b = x
        .bce_with_logits(
            &tape.constant(Tensor::ones(&[2, 3]).unwrap()),
            Reduction::Sum,
        )
        .unwrap();
    assert!(b.value().item().unwrap().is_finite());
}

/// Moves a constant onto the tape of `like` (gradcheck builds a new tape per evaluation).
trait DetachTo {
    fn detach_to(&self, like: &chainrule_autograd::Var<f64>) -> chainrule_autograd::Var<f64>;
}

impl DetachTo for chainrule_autograd::Var<f64> {
    fn detach_to(&self, like: &chainrule_autograd::Var<f64>) -> chainrule_autograd::Var<f64> {
        like.tape().constant(self.value().clone())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    #[test]
    fn losses_on_random_shapes_and_labels_match(
        n in 1usize..5, c in 2usize..5, r in 0usize..4, seed in 0u64..1000,
    ) {
        let r = REDUCTIONS[r];
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % c).collect();
        let x = rand_tensor(&[n, c], -3.0, 3.0, seed);
        gradchecks(|v| v[0].cross_entropy(&labels, r), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].log_softmax(1)?.nll_loss(&labels, r), &[x.clone()]).unwrap();
        let t = rand_tensor(&[n, c], -2.0, 2.0, seed + 1);
        gradchecks(|v| v[0].mse_loss(&v[1], r), &[x.clone(), t]).unwrap();
        let bits = Tensor::from_vec((0..n * c).map(|i| ((i + seed as usize) % 2) as f64).collect(), &[n, c]).unwrap();
        let target = Tape::<f64>::new().constant(bits);
        gradchecks(|v| v[0].bce_with_logits(&target.detach_to(&v[0]), r), &[x]).unwrap();
    }

    #[test]
    fn cross_entropy_with_smoothing_and_ignored_labels_matches(
        n in 1usize..6, c in 2usize..5, r in 0usize..4, eps in 0.0f64..1.0, ignore in 0i64..3, seed in 0u64..1000,
    ) {
        let opts = CrossEntropyOptions { reduction: REDUCTIONS[r], label_smoothing: eps, ignore_index: Some(ignore) };
        let labels: Vec<i64> = (0..n).map(|i| ((i * 5 + seed as usize) % c) as i64).collect();
        // at least one row counts: with every row ignored the mean is 0/0 (NaN, as in
        // PyTorch; `ignored_rows_add_nothing_and_get_no_gradient` checks that case)
        let ignore = if labels[0] == ignore { (ignore + 1) % c as i64 } else { ignore };
        let opts = CrossEntropyOptions { ignore_index: Some(ignore), ..opts };
        let labels = IntTensor::from(labels);
        let x = rand_tensor(&[n, c], -3.0, 3.0, seed);
        gradchecks(|v| v[0].cross_entropy_with(&labels, opts), &[x]).unwrap();
    }

    #[test]
    fn pointwise_losses_match(
        dims in proptest::collection::vec(1usize..4, 1..4), r in 0usize..4, width in 0.3f64..2.0, seed in 0u64..1000,
    ) {
        let r = REDUCTIONS[r];
        // differences spread away from the kinks at 0 and ±width
        let x = common::spread_tensor(&dims, seed).map(|v| v * 3.0);
        let t = Tensor::zeros(&dims).unwrap();
        let w = (width * 40.0).round() / 40.0 + 0.0011;
        gradchecks(|v| v[0].l1_loss(&v[1], r), &[x.clone(), t.clone()]).unwrap();
        gradchecks(|v| v[0].smooth_l1_loss(&v[1], r, w), &[x.clone(), t.clone()]).unwrap();
        gradchecks(|v| v[0].huber_loss(&v[1], r, w), &[x.clone(), t.clone()]).unwrap();
        // probabilities inside (0, 1) against soft targets; log-probabilities for KL
        let p = rand_tensor(&dims, 0.05, 0.95, seed);
        let soft = Tape::<f64>::new().constant(rand_tensor(&dims, 0.0, 1.0, seed + 1));
        gradchecks(|v| v[0].binary_cross_entropy(&soft.detach_to(&v[0]), r), &[p]).unwrap();
        let logp = rand_tensor(&dims, -3.0, -0.1, seed + 2);
        for log_target in [false, true] {
            let target = if log_target { rand_tensor(&dims, -3.0, 0.0, seed + 3) } else { rand_tensor(&dims, 0.0, 1.0, seed + 3) };
            let target = Tape::<f64>::new().constant(target);
            gradchecks(|v| v[0].kl_div(&target.detach_to(&v[0]), r, log_target), &[logp.clone()]).unwrap();
        }
    }

    #[test]
    fn cosine_similarity_matches_with_broadcasting(
        dims in proptest::collection::vec(1usize..4, 1..4), seed in 0u64..1000,
    ) {
        let dim = (seed as usize % dims.len()) as isize;
        let mut bdims = dims.clone();
        bdims[0] = 1;
        gradchecks(
            |v| v[0].cosine_similarity(&v[1], dim, 1e-8),
            &[rand_tensor(&dims, 0.2, 1.0, seed), rand_tensor(&bdims, -1.0, 1.0, seed + 1)],
        )
        .unwrap();
    }
}

#[test]
fn ignored_rows_add_nothing_and_get_no_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(rand_tensor(&[3, 4], -1.0, 1.0, 8));
    let opts = CrossEntropyOptions::default();
    let all = x
        .cross_entropy_with(&IntTensor::from(vec![1, -100, 2]), opts)
        .unwrap();
    let kept = x.narrow(0, 0, 1).unwrap();
    let last = x.narrow(0, 2, 1).unwrap();
    let two = Var::concat(&[&kept, &last], 0)
        .unwrap()
        .cross_entropy(&[1, 2], Reduction::Mean)
        .unwrap();
    assert!((all.value().item().unwrap() - two.value().item().unwrap()).abs() < 1e-15);
    let g = all.backward().unwrap();
    assert!(g.wrt(&x).unwrap().data()[4..8].iter().all(|&v| v == 0.0));
    // every row ignored: the mean is 0/0, as in PyTorch
    let none = x
        .cross_entropy_with(&IntTensor::from(vec![-100; 3]), opts)
        .unwrap();
    assert!(none.value().item().unwrap().is_nan());
    // without an ignored index, −100 is an error naming it
    let strict = CrossEntropyOptions {
        ignore_index: None,
        ..opts
    };
    let e = x
        .cross_entropy_with(&IntTensor::from(vec![1, -100, 2]), strict)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("label -100 at index 1 is outside 0..4"),
        "{e}"
    );
}
