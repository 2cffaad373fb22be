//! gradcheck in f64 for the broadcasting binary ops, on fixed and random shapes.

mod common;
use common::gradchecks;

use chainrule_autograd::{Result, Var};
use common::{rand_tensor, spread_tensor};
use proptest::prelude::*;

type BinaryOp = fn(&Var<f64>, &Var<f64>) -> Result<Var<f64>>;

const OPS: [(&str, BinaryOp); 6] = [
    ("add", Var::add),
    ("sub", Var::sub),
    ("mul", Var::mul),
    ("div", Var::div),
    ("maximum", Var::maximum),
    ("minimum", Var::minimum),
];

fn check(a_dims: &[usize], b_dims: &[usize], seed: u64) {
    for (name, op) in OPS {
        let a = spread_tensor(a_dims, seed);
        // div needs a denominator away from 0; maximum and minimum need no ties with a.
        let b = if name == "div" {
            rand_tensor(b_dims, 0.5, 2.0, seed + 1)
        } else {
            rand_tensor(b_dims, -1.0, 1.0, seed + 1)
        };
        gradchecks(|v| op(&v[0], &v[1]), &[a, b])
            .unwrap_or_else(|e| panic!("{name} {a_dims:?} {b_dims:?}: {e}"));
    }
}

#[test]
fn binary_ops_match_finite_differences_with_broadcasting() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[3], &[3]),
        (&[2, 3], &[2, 3]),
        (&[2, 3], &[3]),
        (&[3, 1], &[1, 4]),
        (&[2, 1, 4], &[3, 1]),
        (&[1], &[2, 2]),
        (&[], &[2, 3]),
    ];
    for (i, (a, b)) in cases.iter().enumerate() {
        check(a, b, i as u64);
        check(b, a, 100 + i as u64);
    }
}

#[test]
fn a_value_used_on_both_sides_gets_both_contributions() {
    gradchecks(
        |v| (&v[0] * &v[0])? + &v[0],
        &[rand_tensor(&[2, 3], -1.0, 1.0, 5)],
    )
    .unwrap();
}

#[test]
fn maximum_and_minimum_split_a_tie_evenly_like_pytorch() {
    let tape = chainrule_autograd::Tape::<f64>::new();
    let a = tape.leaf(chainrule_autograd::Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let b = tape.leaf(chainrule_autograd::Tensor::from_vec(vec![1.0, 3.0], &[2]).unwrap());
    let g = a.maximum(&b).unwrap().sum().backward().unwrap();
    assert_eq!(g.wrt(&a).unwrap().data(), &[0.5, 0.0]);
    assert_eq!(g.wrt(&b).unwrap().data(), &[0.5, 1.0]);
    let g = a.minimum(&b).unwrap().sum().backward().unwrap();
    assert_eq!(g.wrt(&a).unwrap().data(), &[0.5, 1.0]);
    assert_eq!(g.wrt(&b).unwrap().data(), &[0.5, 0.0]);
}

/// A random shape and a second shape that broadcasts with it (some dims set to 1 or
/// dropped from the left).
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..4, 1..4).prop_flat_map(|a| {
        let n = a.len();
        (Just(a), prop::collection::vec(any::<bool>(), n), 0..=n).prop_map(|(a, ones, drop)| {
            let b: Vec<usize> = a
                .iter()
                .zip(&ones)
                .map(|(&d, &one)| if one { 1 } else { d })
                .skip(drop)
                .collect();
            (a, b)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn binary_ops_match_finite_differences_on_random_broadcasts((a, b) in broadcast_pair(), seed in 0u64..1000) {
        check(&a, &b, seed);
        check(&b, &a, seed + 7);
    }
}
