#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for max, average and adaptive-average pooling.

mod common;
use common::gradchecks;

use chainrule_autograd::{AvgPool2dParams, MaxPool2dParams};
use common::{rand_tensor, spread_tensor};
use proptest::prelude::*;

#[test]
fn pooling_matches_finite_differences() {
    let x = spread_tensor(&[2, 2, 6, 7], 1);
    gradchecks(
        |v| v[0].max_pool2d(MaxPool2dParams::new([2, 2])),
        &[x.clone()],
    )
    .unwrap();
    let mp = MaxPool2dParams {
        kernel_size: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        ceil_mode: true,
    };
    gradchecks(|v| v[0].max_pool2d(mp), &[x.clone()]).unwrap();
    let mp = MaxPool2dParams {
        dilation: [2, 1],
        padding: [0, 0],
        ..mp
    };
    gradchecks(|v| v[0].max_pool2d(mp), &[x.clone()]).unwrap();
    for (ceil, include) in [(false, true), (false, false), (true, true), (true, false)] {
        let ap = AvgPool2dParams {
            kernel_size: [3, 2],
            stride: [2, 2],
            padding: [1, 1],
            ceil_mode: ceil,
            count_include_pad: include,
        };
        gradchecks(|v| v[0].avg_pool2d(ap), &[x.clone()]).unwrap();
    }
    for out in [[1, 1], [2, 3], [4, 4], [6, 7]] {
        gradchecks(
            |v| v[0].adaptive_avg_pool2d(out),
            &[rand_tensor(&[1, 2, 6, 7], -1.0, 1.0, 3)],
        )
        .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn pooling_with_random_attributes_matches(
        h in 3usize..8, w in 3usize..8, k in 1usize..4, s in 1usize..3, pad in 0usize..2, ceil in any::<bool>(),
        include in any::<bool>(), seed in 0u64..1000,
    ) {
        prop_assume!(pad <= k / 2);
        let x = spread_tensor(&[1, 2, h, w], seed);
        let mp = MaxPool2dParams { kernel_size: [k, k], stride: [s, s], padding: [pad, pad], dilation: [1, 1], ceil_mode: ceil };
        gradchecks(|v| v[0].max_pool2d(mp), &[x.clone()]).unwrap();
        let ap = AvgPool2dParams { kernel_size: [k, k], stride: [s, s], padding: [pad, pad], ceil_mode: ceil, count_include_pad: include };
        gradchecks(|v| v[0].avg_pool2d(ap), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].adaptive_avg_pool2d([1 + seed as usize % h, 1 + seed as usize % w]), &[x]).unwrap();
    }
}
