//! gradcheck and gradgradcheck in f64 for the indexing family (gather, index_select,
//! index, embedding, scatter_add, where, masked_fill) over random shapes, dims and
//! indices, and the errors an index out of range gets.

mod common;
use common::{gradchecks, rand_tensor};

use chainrule_autograd::{IntTensor, Tape, Tensor, Var};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Integers in `0..bound` (repeats included, so the backward's sums are exercised).
fn rand_index(dims: &[usize], bound: usize, seed: u64) -> IntTensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    IntTensor::from_vec(
        (0..n).map(|_| rng.gen_range(0..bound as i64)).collect(),
        dims,
    )
    .unwrap()
}

/// A random shape of rank 1..=3, a dim of it, and an index shape for gather along it.
fn gather_case() -> impl Strategy<Value = (Vec<usize>, usize, Vec<usize>, u64)> {
    prop::collection::vec(1usize..4, 1..4).prop_flat_map(|x| {
        let n = x.len();
        (
            Just(x),
            0..n,
            prop::collection::vec(1usize..4, n),
            0u64..1000,
        )
            .prop_map(|(x, dim, raw, seed)| {
                // no larger than x outside dim, any extent along it
                let idx: Vec<usize> = (0..x.len())
                    .map(|d| if d == dim { raw[d] } else { raw[d].min(x[d]) })
                    .collect();
                (x, dim, idx, seed)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn gather_and_scatter_add_match((x, dim, idx, seed) in gather_case()) {
        let index = rand_index(&idx, x[dim], seed);
        let d = dim as isize;
        gradchecks(|v| v[0].gather(d, &index), &[rand_tensor(&x, -1.0, 1.0, seed)]).unwrap();
        gradchecks(
            |v| v[0].scatter_add(d, &index, &v[1]),
            &[rand_tensor(&x, -1.0, 1.0, seed), rand_tensor(&idx, -1.0, 1.0, seed + 1)],
        )
        .unwrap();
        // squared, so the second derivative is not zero
        gradchecks(|v| v[0].gather(d, &index)?.square().sum_dims(&[0], false), &[rand_tensor(&x, -1.0, 1.0, seed)]).unwrap();
    }

    #[test]
    fn index_select_and_index_match(
        x in prop::collection::vec(1usize..4, 1..4), k in 1usize..5, seed in 0u64..1000,
    ) {
        let dim = seed as usize % x.len();
        let index = rand_index(&[k], x[dim], seed);
        let t = rand_tensor(&x, -1.0, 1.0, seed);
        gradchecks(|v| Ok(v[0].index_select(dim as isize, &index)?.square()), std::slice::from_ref(&t)).unwrap();
        let rows = rand_index(&[2, k], x[0], seed + 7);
        gradchecks(|v| Ok(v[0].index(&rows)?.tanh()), &[t]).unwrap();
    }

    #[test]
    fn embedding_matches_and_skips_the_padding_row(
        num in 2usize..6, width in 1usize..4, ids in prop::collection::vec(1usize..4, 1..3),
        padded in any::<bool>(), seed in 0u64..1000,
    ) {
        let index = rand_index(&ids, num, seed);
        let pad = padded.then_some(0);
        // finite differences see the padding row's value, which backward ignores by
        // design: with padding, row 0 is a constant and the other rows the input
        let top = Tensor::from_vec(vec![0.25; width], &[1, width]).unwrap();
        let rows = if padded { num - 1 } else { num };
        gradchecks(
            |v| {
                let w = if padded {
                    Var::concat(&[&v[0].tape().constant(top.clone()), &v[0]], 0)?
                } else {
                    v[0].clone()
                };
                Ok(w.embedding(&index, pad)?.tanh())
            },
            &[rand_tensor(&[rows, width], -1.0, 1.0, seed)],
        )
        .unwrap();
        let tape = Tape::<f64>::new();
        let wv = tape.leaf(rand_tensor(&[num, width], -1.0, 1.0, seed));
        let g = wv.embedding(&index, pad).unwrap().sum().backward().unwrap();
        let g = g.wrt(&wv).unwrap();
        for row in 0..num {
            let uses = index.data().iter().filter(|&&i| i as usize == row).count() as f64;
            let want = if Some(row) == pad { 0.0 } else { uses };
            prop_assert!(g.data()[row * width..(row + 1) * width].iter().all(|&v| v == want));
        }
    }

    #[test]
    fn where_and_masked_fill_match_with_broadcasting(
        dims in prop::collection::vec(1usize..4, 1..4), seed in 0u64..1000,
    ) {
        let n = dims.len();
        // the condition broadcasts along the first dim, b along the last
        let mut cdims = dims.clone();
        cdims[0] = 1;
        let bdims = dims[..n - 1].iter().copied().chain([1]).collect::<Vec<_>>();
        let cond = rand_index(&cdims, 2, seed);
        gradchecks(
            |v| Var::where_cond(&cond, &v[0], &v[1]),
            &[rand_tensor(&dims, -1.0, 1.0, seed), rand_tensor(&bdims, -1.0, 1.0, seed + 1)],
        )
        .unwrap();
        gradchecks(|v| Ok(v[0].masked_fill(&cond, 0.5)?.square()), &[rand_tensor(&dims, -1.0, 1.0, seed)]).unwrap();
    }
}

#[test]
fn an_index_out_of_range_names_the_index_its_position_and_the_bound() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::zeros(&[4, 3]).unwrap());
    let bad = IntTensor::from_vec(vec![0, 1, 7, 2], &[2, 2]).unwrap();
    let line = line!() + 1;
    let msg = x.gather(0, &bad).unwrap_err().to_string();
    assert!(msg.starts_with("gather at "), "{msg}");
    assert!(msg.contains(&format!("gradcheck_index.rs:{line}")), "{msg}");
    assert!(
        msg.contains("index 7 at position [1, 0] is outside 0..4"),
        "{msg}"
    );
    let msg = x
        .index_select(1, &IntTensor::from(vec![0, -1]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("index -1 at position [1] is outside 0..3"),
        "{msg}"
    );
    let msg = x
        .embedding(&IntTensor::from(vec![3, 4]), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("embedding at") && msg.contains("index 4 at position [1] is outside 0..4"),
        "{msg}"
    );
    let msg = x.index(&IntTensor::from(vec![-5])).unwrap_err().to_string();
    assert!(
        msg.contains("index -5 at position [0] is outside 0..4"),
        "{msg}"
    );
    let msg = x
        .embedding(&IntTensor::from(vec![0]), Some(4))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("padding_idx"), "{msg}");
    let msg = x
        .gather(0, &IntTensor::from(vec![0]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ranks must match"), "{msg}");
    let src = tape.leaf(Tensor::zeros(&[3]).unwrap());
    let msg = x.scatter_add(0, &bad, &src).unwrap_err().to_string();
    assert!(msg.contains("scatter_add at"), "{msg}");
    let msg = Var::where_cond(&IntTensor::from(vec![1, 0]), &x, &src)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("where at") && msg.contains("do not broadcast"),
        "{msg}"
    );
}
