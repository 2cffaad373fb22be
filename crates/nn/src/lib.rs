//! Neural networks on chainrule's engine: modules with named parameters, layers,
//! initializers, losses, optimizers, safetensors checkpoints and an MNIST reader.
//!
//! A model is written imperatively; reusing a module several times in one forward
//! pass is the normal case and needs nothing special (its gradient is the sum of the
//! uses').
//!
//! ```
//! use chainrule_autograd::{Tape, Tensor};
//! use chainrule_nn::{layers::{Linear, ReLU, Sequential}, optim::{Optimizer, Sgd}, Module, ModuleState};
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let model = Sequential::<f32>::new().push(Linear::new(4, 8, &mut rng)?).push(ReLU).push(Linear::new(8, 3, &mut rng)?);
//! let mut opt = Sgd::new(model.parameters(), 0.1)?.momentum(0.9)?;
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::ones(&[2, 4])?);
//! let loss = model.forward(&x)?.cross_entropy(&[0, 2], chainrule_autograd::Reduction::Mean)?;
//! let grads = loss.backward()?;
//! opt.step(&grads)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// the derive's generated code names `::chainrule_nn`, which inside this crate is itself
extern crate self as chainrule_nn;

mod buffer;
pub mod check;
pub mod checkpoint;
mod error;
pub mod init;
pub mod layers;
pub mod loss;
pub mod mnist;
pub mod models;
mod module;
pub mod optim;
pub mod parallel;

pub use buffer::{Buffer, BufferValue};
pub use chainrule_derive::Module;
pub use error::{Error, Result};
pub use module::{Module, ModuleState};

/// Paths the derive's generated code uses; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use chainrule_autograd::{Element, Param};
}
