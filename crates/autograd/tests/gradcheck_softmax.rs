#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests
//! gradcheck in f64 for softmax and log-softmax along every dim.

mod common;
use common::gradchecks;

use common::rand_tensor;

#[test]
fn softmax_and_log_softmax_match_finite_differences() {
    for dims in [&[5][..], &[3, 4], &[2, 3, 4]] {
        for d in 0..dims.len() as isize {
            let x = rand_tensor(dims, -2.0, 2.0, d as u64);
            gradchecks(|v| v[0].softmax(d), &[x.clone()]).unwrap();
            gradchecks(|v| v[0].log_softmax(d), &[x.clone()]).unwrap();
            gradchecks(|v| v[0].log_softmax(d - dims.len() as isize), &[x]).unwrap();
        }
    }
}

#[test]
fn softmax_stays_finite_for_logits_in_the_thousands() {
    let tape = chainrule_autograd::Tape::<f32>::new();
    let x = tape.leaf(
        chainrule_autograd::Tensor::from_vec(vec![3000.0, -2000.0, 2999.0], &[1, 3]).unwrap(),
    );
    let y = x.softmax(1).unwrap();
    assert!(y.value().data().iter().all(|v| v.is_finite()));
    let l = x.log_softmax(1).unwrap();
    assert!(l.value().data().iter().all(|v| v.is_finite()));
    let g = l.sum().backward().unwrap();
    assert!(g.wrt(&x).unwrap().data().iter().all(|v| v.is_finite()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    #[test]
    fn softmax_on_random_shapes_and_dims_matches(
        dims in proptest::collection::vec(1usize..4, 1..4), pick in 0usize..3, seed in 0u64..1000,
    ) {
        let d = (pick % dims.len()) as isize;
        let x = rand_tensor(&dims, -3.0, 3.0, seed);
        gradchecks(|v| v[0].softmax(d), &[x.clone()]).unwrap();
        gradchecks(|v| v[0].log_softmax(d), &[x]).unwrap();
    }
}
