//! gradcheck and gradgradcheck in f64 for the LSTM and GRU cells and sequences over
//! random sizes, with and without biases, against every input and weight.

mod common;
use common::{gradchecks, rand_tensor};

use chainrule_autograd::{RnnWeights, Tape, Tensor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn lstm_and_gru_over_sequences_match(
        t in 1usize..4, n in 1usize..3, input in 1usize..4, h in 1usize..3, bias in any::<bool>(), seed in 0u64..1000,
    ) {
        for gates in [4usize, 3] {
            let mut inputs = vec![
                rand_tensor(&[t, n, input], -1.0, 1.0, seed),
                rand_tensor(&[n, h], -1.0, 1.0, seed + 1),
                rand_tensor(&[n, h], -1.0, 1.0, seed + 2),
                rand_tensor(&[gates * h, input], -0.8, 0.8, seed + 3),
                rand_tensor(&[gates * h, h], -0.8, 0.8, seed + 4),
            ];
            if bias {
                inputs.push(rand_tensor(&[gates * h], -0.5, 0.5, seed + 5));
                inputs.push(rand_tensor(&[gates * h], -0.5, 0.5, seed + 6));
            }
            gradchecks(
                |v| {
                    let w = RnnWeights { w_ih: &v[3], w_hh: &v[4], b_ih: v.get(5), b_hh: v.get(6) };
                    if gates == 4 {
                        let (out, (hn, cn)) = v[0].lstm(&v[1], &v[2], &w)?;
                        // the final state feeds the output too
                        out.sum().add(&hn.mul(&cn)?.sum())
                    } else {
                        // c0 is unused by the GRU: add it so every input has a gradient
                        let (out, hn) = v[0].gru(&v[1], &w)?;
                        out.add(&hn.mul(&v[2])?)
                    }
                },
                &inputs,
            )
            .unwrap_or_else(|e| panic!("gates {gates}: {e}"));
        }
    }
}

#[test]
fn wrong_weight_shapes_are_named() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::zeros(&[2, 1, 3]).unwrap());
    let h = tape.leaf(Tensor::zeros(&[1, 2]).unwrap());
    let (w_ih, w_hh) = (
        tape.leaf(Tensor::zeros(&[6, 3]).unwrap()),
        tape.leaf(Tensor::zeros(&[8, 2]).unwrap()),
    );
    let w = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: None,
        b_hh: None,
    };
    let e = x.lstm(&h, &h, &w).unwrap_err().to_string();
    assert!(
        // the op the caller called, checked before any step runs
        e.starts_with("lstm at ") && e.contains("w_ih [6, 3]"),
        "{e}"
    );
    let e = tape
        .leaf(Tensor::zeros(&[2, 3]).unwrap())
        .gru(&h, &w)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gru at ") && e.contains("[T, n, input]"),
        "{e}"
    );
}
