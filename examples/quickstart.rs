//! The README's first example: a tiny model, one backward pass, the gradients printed.
//!
//! `cargo run --release --example quickstart`

use chainrule::{Param, Tape, Tensor};

fn main() -> Result<(), chainrule::Error> {
    let w = Param::new(Tensor::<f64>::from_vec(vec![0.5, -1.0, 0.2], &[3])?);
    let b = Param::new(Tensor::<f64>::scalar(0.1));
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    let (wv, bv) = (tape.param(&w), tape.param(&b));
    // y = tanh(w·x + b) used twice: loss = y² + 3y
    let y = ((&wv * &x)?.sum() + &bv)?.tanh();
    let loss = (&y * &y + &y.mul_scalar(3.0))?;
    let grads = loss.backward()?;
    println!("loss   = {:.6}", loss.value().item().unwrap());
    println!("dL/dw  = {:?}", grads.get(&w).unwrap().data());
    println!("dL/db  = {:?}", grads.get(&b).unwrap().data());
    Ok(())
}
