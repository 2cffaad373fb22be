#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for the losses, every reduction, and stability on huge logits.

mod common;
use common::gradchecks;

use chainrule_autograd::{Reduction, Tape, Tensor};
use common::rand_tensor;

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

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
        n in 1usize..5, c in 2usize..5, r in 0usize..3, seed in 0u64..1000,
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
}
