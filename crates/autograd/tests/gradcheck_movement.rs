#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for reshape, flatten, permute, transpose, broadcast_to, concat, narrow,
//! stack, squeeze, unsqueeze, split, chunk and flip.

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

/// Σₖ (k + 1)·Σ pieceₖ³: each piece's gradient differs, so a piece routed to the wrong
/// place fails.
fn weigh(pieces: Vec<Var<f64>>) -> chainrule_autograd::Result<Var<f64>> {
    let mut total = pieces[0]
        .tape()
        .constant(chainrule_autograd::Tensor::scalar(0.0));
    for (k, p) in pieces.iter().enumerate() {
        let cube = p.square().mul(p)?.sum();
        let weight = p
            .tape()
            .constant(chainrule_autograd::Tensor::scalar((k + 1) as f64));
        total = total.add(&cube.mul(&weight)?)?;
    }
    Ok(total)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn split_chunk_and_flip_of_random_shapes_match(
        dims in prop::collection::vec(1usize..5, 1..4), size in 1usize..4, seed in 0u64..1000,
    ) {
        let n = dims.len() as isize;
        let dim = (seed as isize % (2 * n)) - n; // any of -n..n
        let d = if dim < 0 { dim + n } else { dim } as usize;
        let x = rand_tensor(&dims, -1.0, 1.0, seed);
        let tape = chainrule_autograd::Tape::<f64>::new();
        let leaf = tape.leaf(x.clone());
        // the pieces put back together are the value, of the promised sizes
        let pieces = leaf.split(size, dim).unwrap();
        prop_assert_eq!(pieces.len(), dims[d].div_ceil(size));
        let whole = Var::concat(&pieces.iter().collect::<Vec<_>>(), dim).unwrap();
        prop_assert_eq!(whole.value(), leaf.value());
        let chunks = leaf.chunk(size, dim).unwrap();
        prop_assert!(chunks.len() <= size);
        prop_assert_eq!(chunks[0].dims()[d], dims[d].div_ceil(size));
        gradchecks(|v| weigh(v[0].split(size, dim)?), &[x.clone()]).unwrap();
        gradchecks(|v| weigh(v[0].chunk(size, dim)?), &[x.clone()]).unwrap();
        let first = dims[d] / 2;
        gradchecks(|v| weigh(v[0].split_sizes(&[first, dims[d] - first], dim)?), &[x.clone()]).unwrap();
        gradchecks(|v| weigh(vec![v[0].flip(&[dim])?.narrow(d as isize, 0, 1)?]), &[x.clone()]).unwrap();
        if n >= 2 {
            gradchecks(|v| weigh(v[0].flip(&[0, -1])?.split(1, 0)?), &[x.clone()]).unwrap();
        }
    }
}

#[test]
fn flip_reverses_and_split_errors_name_the_attribute() {
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(
        chainrule_autograd::Tensor::from_vec((0..6).map(f64::from).collect(), &[2, 3]).unwrap(),
    );
    assert_eq!(
        x.flip(&[1]).unwrap().value().data(),
        &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
    );
    assert_eq!(
        x.flip(&[0, 1]).unwrap().value().data(),
        &[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    );
    assert_eq!(x.flip(&[]).unwrap().value(), x.value());
    let err = x.flip(&[1, -1]).unwrap_err().to_string();
    assert!(err.contains("dim 1 appears twice"), "{err}");
    let err = x.split_sizes(&[1, 1], 1).unwrap_err().to_string();
    assert!(
        err.contains("[1, 1] do not add up to the size 3 of dim 1"),
        "{err}"
    );
    let err = x.split(0, 0).unwrap_err().to_string();
    assert!(err.contains("split_size"), "{err}");
    assert!(x.chunk(0, 0).is_err());
    assert_eq!(x.chunk(5, 1).unwrap().len(), 3);
}
