#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for sum, mean, max, logsumexp, var, std, norm and cumsum over random
//! shapes and dims.

mod common;
use common::gradchecks;

use common::{rand_tensor, spread_tensor};
use proptest::prelude::*;

#[test]
fn full_reductions_match_finite_differences() {
    let x = rand_tensor(&[2, 3, 4], -1.0, 1.0, 1);
    gradchecks(|v| Ok(v[0].sum()), &[x.clone()]).unwrap();
    gradchecks(|v| v[0].mean(), &[x]).unwrap();
}

fn shape_and_dims() -> impl Strategy<Value = (Vec<usize>, Vec<isize>, bool)> {
    prop::collection::vec(1usize..4, 1..4).prop_flat_map(|dims| {
        let n = dims.len();
        (
            Just(dims),
            prop::sample::subsequence((0..n as isize).collect::<Vec<_>>(), 1..=n),
            any::<bool>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn sum_and_mean_over_random_dims_match((dims, axes, keep) in shape_and_dims(), seed in 0u64..1000) {
        let x = rand_tensor(&dims, -1.0, 1.0, seed);
        gradchecks(|v| v[0].sum_dims(&axes, keep), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].mean_dims(&axes, keep), &[x]).unwrap();
    }

    #[test]
    fn max_and_logsumexp_along_random_dims_match((dims, axes, keep) in shape_and_dims(), seed in 0u64..1000, neg in any::<bool>()) {
        let x = spread_tensor(&dims, seed);
        let d = if neg { axes[0] - dims.len() as isize } else { axes[0] };
        gradchecks(|v| v[0].max(d, keep), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].logsumexp(d, keep), &[x]).unwrap();
    }

    #[test]
    fn var_std_and_norms_over_random_dims_match((dims, axes, keep) in shape_and_dims(), seed in 0u64..1000, all in any::<bool>()) {
        let x = spread_tensor(&dims, seed);
        let count: usize = if all { dims.iter().product() } else { axes.iter().map(|&a| dims[a as usize]).product() };
        let axes = (!all).then_some(&axes[..]);
        // correction 1 needs two values per output
        for correction in [0, usize::from(count > 1)] {
            gradchecks(|v| v[0].var(axes, correction, keep), &[x.clone()]).unwrap();
            if count > 1 {
                gradchecks(|v| v[0].std(axes, correction, keep), &[x.clone()]).unwrap();
            }
        }
        for p in [1.0, 2.0, 3.0, 1.5, f64::INFINITY] {
            gradchecks(|v| v[0].norm(p, axes, keep), &[x.clone()])
                .unwrap_or_else(|e| panic!("p = {p}: {e}"));
        }
    }

    #[test]
    fn cumsum_along_random_dims_matches((dims, axes, _keep) in shape_and_dims(), seed in 0u64..1000) {
        let x = rand_tensor(&dims, -1.0, 1.0, seed);
        gradchecks(|v| Ok(v[0].cumsum(axes[0])?.square()), &[x]).unwrap();
    }
}

#[test]
fn a_zero_norm_has_a_zero_gradient_like_pytorch() {
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(chainrule_autograd::Tensor::zeros(&[2, 3]).unwrap());
    for p in [2.0, 3.0, f64::INFINITY] {
        let g = x
            .norm(p, Some(&[1]), false)
            .unwrap()
            .sum()
            .backward()
            .unwrap();
        assert!(
            g.wrt(&x).unwrap().data().iter().all(|&v| v == 0.0),
            "p = {p}"
        );
    }
    // the norm of a row with one non-zero is its magnitude, with gradient sign(x)
    let y = tape.leaf(chainrule_autograd::Tensor::from_vec(vec![0.0, -2.0], &[2]).unwrap());
    let g = y.norm(2.0, None, false).unwrap().backward().unwrap();
    assert_eq!(g.wrt(&y).unwrap().data(), &[0.0, -1.0]);
}

#[test]
fn infinity_norm_ties_share_the_gradient() {
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(chainrule_autograd::Tensor::from_vec(vec![3.0, -3.0, 1.0], &[3]).unwrap());
    let g = x
        .norm(f64::INFINITY, None, false)
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(g.wrt(&x).unwrap().data(), &[0.5, -0.5, 0.0]);
}
