#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for sum, mean, max and logsumexp over random shapes and dims.

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
}
