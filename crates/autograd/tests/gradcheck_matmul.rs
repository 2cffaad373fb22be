//! gradcheck in f64 for matmul (2-D, batched, broadcast batch dims, 1-D) and linear.

mod common;
use common::gradchecks;

use common::rand_tensor;
use proptest::prelude::*;

fn check(a: &[usize], b: &[usize], seed: u64) {
    let (x, y) = (
        rand_tensor(a, -1.0, 1.0, seed),
        rand_tensor(b, -1.0, 1.0, seed + 1),
    );
    gradchecks(|v| v[0].matmul(&v[1]), &[x, y]).unwrap_or_else(|e| panic!("{a:?} @ {b:?}: {e}"));
}

#[test]
fn matmul_matches_finite_differences() {
    check(&[3, 4], &[4, 5], 1);
    check(&[1, 4], &[4, 1], 2);
    check(&[2, 3, 4], &[2, 4, 2], 3);
    check(&[2, 3, 4], &[4, 2], 4);
    check(&[3, 4], &[2, 4, 2], 5);
    check(&[2, 1, 3, 4], &[3, 4, 2], 6);
    check(&[4], &[4, 3], 7);
    check(&[3, 4], &[4], 8);
    check(&[4], &[4], 9);
}

#[test]
fn linear_matches_finite_differences_with_and_without_bias() {
    let (x, w, b) = (
        rand_tensor(&[5, 4], -1.0, 1.0, 1),
        rand_tensor(&[3, 4], -1.0, 1.0, 2),
        rand_tensor(&[3], -1.0, 1.0, 3),
    );
    gradchecks(
        |v| v[0].linear(&v[1], Some(&v[2])),
        &[x.clone(), w.clone(), b],
    )
    .unwrap();
    gradchecks(|v| v[0].linear(&v[1], None), &[x, w.clone()]).unwrap();
    gradchecks(
        |v| v[0].linear(&v[1], None),
        &[rand_tensor(&[2, 3, 4], -1.0, 1.0, 4), w],
    )
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn batched_matmul_on_random_shapes_matches(m in 1usize..4, k in 1usize..4, n in 1usize..4, batch in 1usize..3, bcast in any::<bool>(), seed in 0u64..1000) {
        let b_dims: Vec<usize> = if bcast { vec![1, k, n] } else { vec![batch, k, n] };
        check(&[batch, m, k], &b_dims, seed);
    }
}
