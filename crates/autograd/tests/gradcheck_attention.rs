//! gradcheck and gradgradcheck in f64 for scaled dot-product attention (plain, causal,
//! masked, explicit scale) over random batch, head and sequence sizes.

mod common;
use common::{gradchecks, rand_tensor};

use chainrule_autograd::{AttentionOptions, IntTensor, Tape, Tensor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn attention_matches(
        b in 1usize..3, l in 1usize..4, s in 1usize..4, d in 1usize..4, dv in 1usize..3,
        causal in any::<bool>(), scale in prop::option::of(0.2f64..1.5), seed in 0u64..1000,
    ) {
        let opts = AttentionOptions { is_causal: causal, scale, attn_mask: None };
        let inputs = [
            rand_tensor(&[b, l, d], -1.0, 1.0, seed),
            rand_tensor(&[b, s, d], -1.0, 1.0, seed + 1),
            rand_tensor(&[b, s, dv], -1.0, 1.0, seed + 2),
        ];
        gradchecks(|v| v[0].scaled_dot_product_attention(&v[1], &v[2], &opts), &inputs).unwrap();
        // a mask that keeps key 0 for every query (so no row is all −∞)
        let keep: Vec<i64> = (0..l * s).map(|k| i64::from(k % s == 0 || (k + seed as usize).is_multiple_of(2))).collect();
        let masked = AttentionOptions { attn_mask: Some(IntTensor::from_vec(keep, &[l, s]).unwrap()), ..Default::default() };
        gradchecks(|v| v[0].scaled_dot_product_attention(&v[1], &v[2], &masked), &inputs).unwrap();
    }
}

#[test]
fn causal_attention_ignores_later_keys() {
    let tape = Tape::<f64>::new();
    let q = tape.leaf(rand_tensor(&[1, 3, 2], -1.0, 1.0, 1));
    let k = tape.leaf(rand_tensor(&[1, 3, 2], -1.0, 1.0, 2));
    let v = tape.leaf(rand_tensor(&[1, 3, 2], -1.0, 1.0, 3));
    let opts = AttentionOptions {
        is_causal: true,
        ..Default::default()
    };
    let y = q.scaled_dot_product_attention(&k, &v, &opts).unwrap();
    // the first query sees only the first value
    assert_eq!(&y.value().data()[..2], &v.value().data()[..2]);
    let g = y.narrow(1, 0, 1).unwrap().sum().backward().unwrap();
    assert!(g.wrt(&v).unwrap().data()[2..].iter().all(|&x| x == 0.0));
    let e = q
        .scaled_dot_product_attention(&tape.leaf(Tensor::zeros(&[1, 3, 5]).unwrap()), &v, &opts)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("scaled_dot_product_attention at "),
        "{e}"
    );
}
