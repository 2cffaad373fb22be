#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use chainrule_autograd::*;
pub use chainrule_nn as nn;
pub use chainrule_tensor as tensor;
