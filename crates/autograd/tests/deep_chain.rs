//! Backward is a loop, not recursion: a chain of a million ops backpropagates.

use chainrule_autograd::{Tape, Tensor};

#[test]
fn a_chain_of_one_million_ops_backpropagates_without_stack_overflow() {
    const OPS: usize = 1_000_000;
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0], &[1]).unwrap());
    let mut h = x.clone();
    for _ in 0..OPS {
        h = h.mul_scalar(1.0000001);
    }
    assert_eq!(tape.len(), OPS + 1);
    let g = h.sum().backward().unwrap();
    let want = 1.0000001f64.powi(OPS as i32);
    let got = g.wrt(&x).unwrap().data()[0];
    assert!((got - want).abs() < 1e-9 * want, "got {got}, want {want}");
}
