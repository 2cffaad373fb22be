//! The differentiable ops, one file per family. Each op is a method on [`crate::Var`]
//! whose backward rule is written right below its forward.

mod binary;
mod conv;
mod loss;
mod matmul;
mod movement;
mod pool;
mod reduce;
mod softmax;
mod unary;

pub use loss::Reduction;
pub use unary::Unary;

use chainrule_tensor::Tensor;

use crate::InputGrads;

/// The contributions of a one-input op.
pub(crate) fn one<T: chainrule_tensor::Element>(g: Tensor<T>) -> InputGrads<T> {
    InputGrads::from_iter([Some(g)])
}
