#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for reshape, flatten, permute, transpose, broadcast_to, concat, narrow,
//! stack, squeeze and unsqueeze.

mod common;
use common::gradchecks;

use chainrule_autograd::Var;
use common::rand_tensor;
use proptest::prelude::*;

#[test]
fn movement_ops_match_finite_differences() {
    let x = rand_tensor(&[2, 3, 4], -1.0, 1.0, 1);
    let one = |f: fn(&Var<f64>) -> chainrule_autograd::Result<Var<f64>>| {
        gradchecks(|v| f(&v[0]), &[x.clone()]).unwrap()
    };
    one(|v| v.reshape(&[4, -1]));
    one(|v| v.flatten(1));
    one(|v| v.flatten(0));
    one(|v| v.permute(&[2, 0, 1]));
    one(|v| v.transpose(0, -1));
    one(|v| v.narrow(2, 1, 2));
    one(|v| v.narrow(0, 1, 1));
    gradchecks(
        |v| v[0].broadcast_to(&[2, 3, 4]),
        &[rand_tensor(&[3, 1], -1.0, 1.0, 2)],
    )
    .unwrap();
    gradchecks(
        |v| v[0].broadcast_to(&[2, 4]),
        &[rand_tensor(&[4], -1.0, 1.0, 3)],
    )
    .unwrap();
}

#[test]
fn concat_matches_finite_differences() {
    let (a, b, c) = (
        rand_tensor(&[2, 3], -1.0, 1.0, 1),
        rand_tensor(&[2, 1], -1.0, 1.0, 2),
        rand_tensor(&[2, 2], -1.0, 1.0, 3),
    );
    gradchecks(|v| Var::concat(&[&v[0], &v[1], &v[2]], 1), &[a, b, c]).unwrap();
    let (a, b) = (
        rand_tensor(&[1, 3], -1.0, 1.0, 4),
        rand_tensor(&[2, 3], -1.0, 1.0, 5),
    );
    gradchecks(|v| Var::concat(&[&v[0], &v[1], &v[0]], 0), &[a, b]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn permutations_of_random_shapes_match(dims in prop::collection::vec(1usize..4, 1..5), seed in 0u64..1000) {
        let n = dims.len();
        let mut perm: Vec<isize> = (0..n as isize).collect();
        perm.rotate_left(seed as usize % n);
        let x = rand_tensor(&dims, -1.0, 1.0, seed);
        gradchecks(|v| v[0].permute(&perm), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].transpose(0, -1), &[x]).unwrap();
    }

    #[test]
    fn stack_squeeze_unsqueeze_of_random_shapes_match(
        dims in prop::collection::vec(1usize..3, 0..4), parts in 1usize..4, seed in 0u64..1000,
    ) {
        let n = dims.len() as isize;
        let dim = (seed as isize % (2 * n + 2)) - (n + 1); // any of -(n+1)..=n
        let xs: Vec<_> = (0..parts).map(|k| rand_tensor(&dims, -1.0, 1.0, seed + k as u64)).collect();
        gradchecks(|v| Ok(Var::stack(&v.iter().collect::<Vec<_>>(), dim)?.square()), &xs).unwrap();
        let y = Var::stack(&[&chainrule_autograd::Tape::<f64>::new().leaf(xs[0].clone())], dim).unwrap();
        let d = if dim < 0 { dim + n + 1 } else { dim } as usize;
        let mut want = dims.clone();
        want.insert(d, 1);
        prop_assert_eq!(y.dims(), &want[..]);
        gradchecks(|v| Ok(v[0].unsqueeze(dim)?.squeeze(None)?.square()), &[xs[0].clone()]).unwrap();
        if n > 0 {
            gradchecks(|v| Ok(v[0].squeeze(Some(-1))?.tanh()), &[xs[0].clone()]).unwrap();
        }
    }
}
