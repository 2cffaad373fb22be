//! chainrule: define-by-run reverse-mode automatic differentiation for Rust.
pub use chainrule_autograd::*;
pub use chainrule_nn as nn;
pub use chainrule_tensor as tensor;
