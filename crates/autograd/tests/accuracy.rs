//! f32 reductions accumulate in f64, so long sums stay within a rounding of the exact
//! value (a sequential f32 sum of 10⁷ × 0.1 was 8.8% high).

use chainrule_autograd::{Reduction, Tape, Tensor};

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn a_sum_of_ten_million_tenths_in_f32_is_a_million() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::full(&[10_000_000], 0.1f32).unwrap());
    let s = x.sum().value().item().unwrap() as f64;
    assert!(rel(s, 1e6) < 1e-6, "sum {s}");
    let m = x.mean().unwrap().value().item().unwrap() as f64;
    assert!(rel(m, 0.1) < 1e-6, "mean {m}");
}

#[test]
fn a_mean_over_four_million_elements_per_row_is_accurate() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::full(&[2, 4_000_000], 0.3f32).unwrap());
    let m = x.mean_dims(&[1], false).unwrap();
    for &v in m.value().data() {
        assert!(rel(v as f64, 0.3) < 1e-6, "mean {v}");
    }
    // and the backward of sum_to (a bias gradient) sums the same way
    let b = tape.leaf(Tensor::zeros(&[4_000_000]).unwrap());
    let y = (&x + &b).unwrap().sum();
    let g = y.backward().unwrap();
    assert!(g.wrt(&b).unwrap().data().iter().all(|&v| v == 2.0));
}

#[test]
fn cross_entropy_mean_over_two_million_rows_is_ln_2() {
    let tape = Tape::<f32>::new();
    let logits = tape.leaf(Tensor::zeros(&[2_000_000, 2]).unwrap());
    let labels = vec![1usize; 2_000_000];
    let loss = logits.cross_entropy(&labels, Reduction::Mean).unwrap();
    let l = loss.value().item().unwrap() as f64;
    assert!(rel(l, std::f64::consts::LN_2) < 1e-6, "loss {l}");
}

#[test]
fn a_two_million_wide_softmax_backward_is_accurate() {
    let n = 2_000_000;
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::zeros(&[1, n]).unwrap());
    let y = x.softmax(1).unwrap();
    let g: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let grads = y
        .backward_with(&Tensor::from_vec(g, &[1, n]).unwrap())
        .unwrap();
    // dx_i = y_i (g_i − Σ g·y) = ±1/(2n)
    let want = 0.5 / n as f64;
    for (i, &d) in grads.wrt(&x).unwrap().data().iter().enumerate() {
        let w = if i % 2 == 1 { want } else { -want };
        assert!(rel(d as f64, w) < 1e-5, "element {i}: {d} vs {w}");
    }
}
