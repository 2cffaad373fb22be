//! "What is the bookkeeping the framework does for me?" Records a small model's tape
//! and exports it as Graphviz DOT: one node per record (op, shape, source line), one
//! edge per input. The shared Linear's weight feeds two ops.
//!
//! `cargo run --release --example graph > docs/graph.dot && dot -Tsvg docs/graph.dot -o docs/graph.svg`

use chainrule::nn::layers::Linear;
use chainrule::nn::Module;
use chainrule::{Reduction, Tape, Tensor};
use rand::{rngs::StdRng, SeedableRng};

/// Records the model and returns the tape.
pub fn record() -> chainrule::nn::Result<Tape> {
    let mut rng = StdRng::seed_from_u64(0);
    let (inp, shared, out) = (
        Linear::new(4, 8, &mut rng)?,
        Linear::new(8, 8, &mut rng)?,
        Linear::new(8, 3, &mut rng)?,
    );
    let tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[2, 4])?);
    let h = inp.forward(&x)?.relu();
    let h = shared.forward(&h)?.tanh();
    let h = shared.forward(&h)?.tanh(); // the same module again
    let loss = out.forward(&h)?.cross_entropy(&[0, 2], Reduction::Mean)?;
    loss.backward()?;
    Ok(tape)
}

#[allow(dead_code)]
fn main() -> chainrule::nn::Result<()> {
    let tape = record()?;
    eprintln!("{} records on the tape", tape.len());
    print!("{}", tape.to_dot());
    Ok(())
}
