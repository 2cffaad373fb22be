#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use chainrule_autograd::*;
pub use chainrule_nn as nn;
pub use chainrule_tensor as tensor;

/// The user guide (`docs/guide.md`), here so every example in it is compiled and run.
#[doc = include_str!("../docs/guide.md")]
pub mod guide {}
