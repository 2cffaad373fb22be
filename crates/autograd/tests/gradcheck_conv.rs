//! gradcheck in f64 for conv2d and conv_transpose2d over stride, padding, output
//! padding, dilation, groups and bias.

mod common;
use common::gradchecks;

use chainrule_autograd::{Conv2dParams, ConvTranspose2dParams};
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

    #[test]
    fn conv_transpose2d_with_random_attributes_matches(
        n in 1usize..3, cg in 1usize..3, og in 1usize..3, groups in 1usize..3,
        h in 1usize..4, w in 1usize..4, kh in 1usize..4, kw in 1usize..4,
        s in 1usize..3, p in 0usize..2, op in 0usize..2, d in 1usize..3, bias in any::<bool>(), seed in 0u64..1000,
    ) {
        let params = ConvTranspose2dParams {
            stride: [s, 1], padding: [p, 0], output_padding: [op.min(s - 1), 0], dilation: [d, 1], groups,
        };
        // the output has at least one row: (h − 1)·s + d·(kh − 1) + op + 1 > 2p
        prop_assume!((h - 1) * s + d * (kh - 1) + op.min(s - 1) + 1 > 2 * p);
        let mut inputs = vec![
            rand_tensor(&[n, cg * groups, h, w], -1.0, 1.0, seed),
            rand_tensor(&[cg * groups, og, kh, kw], -1.0, 1.0, seed + 1),
        ];
        if bias {
            inputs.push(rand_tensor(&[og * groups], -1.0, 1.0, seed + 2));
        }
        gradchecks(|v| v[0].conv_transpose2d(&v[1], v.get(2), params), &inputs)
            .unwrap_or_else(|e| panic!("{params:?}: {e}"));
    }
}

#[test]
fn conv_transpose2d_is_the_adjoint_of_conv2d() {
    // <conv2d(x), y> = <x, conv_transpose2d(y)> for the same attributes
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(rand_tensor(&[2, 4, 7, 6], -1.0, 1.0, 1));
    let w = tape.leaf(rand_tensor(&[6, 2, 3, 2], -1.0, 1.0, 2));
    let c = Conv2dParams {
        stride: [2, 1],
        padding: [1, 0],
        dilation: [1, 2],
        groups: 2,
    };
    let y = x.conv2d(&w, None, c).unwrap();
    let u = tape.leaf(rand_tensor(y.dims(), -1.0, 1.0, 3));
    let t = ConvTranspose2dParams {
        stride: c.stride,
        padding: c.padding,
        output_padding: [0, 0],
        dilation: c.dilation,
        groups: 2,
    };
    let back = u.conv_transpose2d(&w, None, t).unwrap();
    assert_eq!(back.dims(), x.dims());
    let lhs = y.mul(&u).unwrap().sum().value().item().unwrap();
    let rhs = x.mul(&back).unwrap().sum().value().item().unwrap();
    assert!(
        (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}
