//! The differentiable ops, one file per family. Each op is a method on [`crate::Var`]
//! whose backward rule is written right below its forward.

mod attention;
mod binary;
mod conv;
mod fused_norm;
mod index;
mod loss;
mod lstm_gates;
mod matmul;
mod movement;
mod normalization;
mod pointwise_loss;
mod pool;
mod recurrent;
pub(crate) mod reduce;
mod resample;
mod scan;
mod slicing;
mod softmax;
mod statistics;
mod unary;

pub use attention::AttentionOptions;
pub use loss::{CrossEntropyOptions, Reduction};
pub use normalization::{BatchNormOptions, RunningStats};
pub use recurrent::{LstmState, RnnWeights};
pub use resample::{InterpolateMode, InterpolateSize, PadMode};
pub use unary::{Saves, Unary};

use crate::{Grads, Operand};

/// The contributions of a one-input op.
pub(crate) fn one<T: chainrule_tensor::Element>(g: Operand<T>) -> Grads<T> {
    Grads::from_iter([Some(g)])
}

/// An op error about its operands' shapes.
pub(crate) fn shape_error(op: &'static str, site: crate::Site, message: String) -> crate::Error {
    crate::Error::Op {
        op,
        site,
        source: chainrule_tensor::TensorError::Shape(message),
    }
}

/// An op error about one of its attributes.
pub(crate) fn attr_error(
    op: &'static str,
    site: crate::Site,
    attr: &'static str,
    reason: String,
) -> crate::Error {
    crate::Error::Op {
        op,
        site,
        source: chainrule_tensor::TensorError::Attr { attr, reason },
    }
}
