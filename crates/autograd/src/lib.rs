//! chainrule's engine: define-by-run, tape-based reverse-mode automatic differentiation.
//!
//! Every op called on a [`Var`] computes its value at once and appends one record to
//! its [`Tape`]: the op's name, its inputs, its backward rule with what that rule needs,
//! and the caller's source line. [`Var::backward`] walks the tape once in reverse, in a
//! loop, applies each rule, and sums the contributions of every use of a value.
//!
//! # Does a module used three times need special handling?
//!
//! No. *"If the same module is used three times in one iteration, does its gradient
//! need special processing? Will `backward()` work correctly?"* — Each use of a
//! [`Param`] is recorded as one more input edge of the same tape record, and backward
//! adds every contribution that reaches a record before passing it on. The weight's
//! gradient is therefore the sum of the three uses' gradients, exactly what three
//! separate copies would receive added together. The test `shared_weights.rs` checks
//! this to the last bit.
//!
//! ```
//! use chainrule_autograd::{Param, Tape, Tensor};
//! let w = Param::new(Tensor::<f64>::from_vec(vec![0.5, -0.3, 0.2, 0.8], &[2, 2])?);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 2])?);
//! let wv = tape.param(&w);
//! let h = x.matmul(&wv)?.tanh().matmul(&wv)?.tanh().matmul(&wv)?; // w used three times
//! let grads = h.sum().backward()?;
//! assert_eq!(grads.get(&w).unwrap().dims(), &[2, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Gradients are returned, not stored
//!
//! `backward` returns a [`Gradients`] value keyed by parameter. There is no `.grad`
//! field to zero between steps; to accumulate over several passes, use
//! [`Gradients::accumulate`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod anomaly;
mod backward;
mod error;
mod grad;
mod gradcheck;
mod grads;
mod hooks;
mod operand;
mod ops;
mod param;
mod paramcheck;
mod recompute;
mod tape;
mod var;

pub use anomaly::AnomalyGuard;
pub use chainrule_tensor::{
    AsIntTensor, AvgPool2dParams, Conv2dParams, ConvTranspose2dParams, Element, IntTensor,
    MaxPool2dParams, Shape, Tensor, TensorError,
};
pub use error::{Error, GradcheckMismatch, Result, Site};
pub use grad::{grad, GradOptions};
pub use gradcheck::{
    gradcheck, gradcheck_with, gradgradcheck, gradgradcheck_with, GradcheckOptions, GradcheckReport,
};
pub use grads::Gradients;
pub use operand::{Grads, Operand, Saved};
pub use ops::{
    AttentionOptions, BatchNormOptions, CrossEntropyOptions, InterpolateMode, InterpolateSize,
    LstmState, PadMode, Reduction, RnnWeights, RunningStats, Saves, Unary,
};
pub use param::{Param, ParamId};
pub use paramcheck::{gradcheck_params, gradgradcheck_params};
pub use recompute::checkpoint;
pub use tape::{BackwardRule, InputGrads, NoGradGuard, RecordInfo, Tape};
pub use var::{BackwardOptions, Var};
