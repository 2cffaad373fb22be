//! gradcheck in f64 for conv2d over stride, padding, dilation, groups and bias.

mod common;
use common::gradchecks;

use chainrule_autograd::Conv2dParams;
use common::rand_tensor;
use proptest::prelude::*;

fn check(x: &[usize], w: &[usize], bias: bool, p: Conv2dParams, seed: u64) {
    let mut inputs = vec![
        rand_tensor(x, -1.0, 1.0, seed),
        rand_tensor(w, -1.0, 1.0, seed + 1),
    ];
    if bias {
        inputs.push(rand_tensor(&[w[0]], -1.0, 1.0, seed + 2));
    }
    gradchecks(|v| v[0].conv2d(&v[1], v.get(2), p), &inputs)
        .unwrap_or_else(|e| panic!("x {x:?} w {w:?} {p:?}: {e}"));
}

#[test]
fn conv2d_matches_finite_differences() {
    let d = Conv2dParams::default();
    check(&[2, 1, 6, 6], &[3, 1, 3, 3], true, d, 1);
    check(
        &[1, 2, 5, 5],
        &[2, 2, 3, 3],
        false,
        Conv2dParams {
            stride: [2, 2],
            padding: [1, 1],
            ..d
        },
        2,
    );
    check(
        &[1, 2, 7, 7],
        &[2, 2, 3, 3],
        true,
        Conv2dParams {
            dilation: [2, 2],
            padding: [2, 1],
            ..d
        },
        3,
    );
    check(
        &[1, 4, 4, 4],
        &[6, 2, 3, 3],
        true,
        Conv2dParams {
            groups: 2,
            padding: [1, 1],
            ..d
        },
        4,
    );
    check(&[2, 3, 4, 5], &[2, 3, 1, 1], true, d, 5);
    check(
        &[1, 1, 5, 4],
        &[1, 1, 2, 3],
        true,
        Conv2dParams {
            stride: [1, 2],
            ..d
        },
        6,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn conv2d_with_random_attributes_matches(
        n in 1usize..3, cg in 1usize..3, og in 1usize..3, groups in 1usize..3,
        h in 3usize..7, w in 3usize..7, kh in 1usize..4, kw in 1usize..4,
        s in 1usize..3, p in 0usize..2, d in 1usize..3, bias in any::<bool>(), seed in 0u64..1000,
    ) {
        let params = Conv2dParams { stride: [s, 1], padding: [p, p], dilation: [d, 1], groups };
        prop_assume!(d * (kh - 1) < h + 2 * p && kw <= w + 2 * p);
        check(&[n, cg * groups, h, w], &[og * groups, cg, kh, kw], bias, params, seed);
    }
}
