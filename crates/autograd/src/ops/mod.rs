//! The differentiable ops, one file per family. Each op is a method on [`crate::Var`]
//! whose backward rule is written right below its forward.

mod binary;
mod conv;
mod index;
mod loss;
mod matmul;
mod movement;
mod pool;
pub(crate) mod reduce;
mod scan;
mod softmax;
mod statistics;
mod unary;

pub use loss::Reduction;
pub use unary::Unary;

use crate::{Grads, Operand};

/// The contributions of a one-input op.
pub(crate) fn one<T: chainrule_tensor::Element>(g: Operand<T>) -> Grads<T> {
    Grads::from_iter([Some(g)])
}
