//! Dense, row-major n-dimensional arrays of `f32` or `f64` and the numeric kernels
//! that chainrule's differentiable ops are built from. Nothing here knows about
//! gradients: `chainrule-autograd` pairs each kernel with its backward rule.
//!
//! ```
//! use chainrule_tensor::Tensor;
//! let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = a.matmul(&a)?;
//! assert_eq!(b.data(), &[7.0, 10.0, 15.0, 22.0]);
//! # Ok::<(), chainrule_tensor::TensorError>(())
//! ```
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod element;
mod error;
mod int_tensor;
pub mod kernels;
pub mod pool;
mod shape;
pub mod special;
mod tensor;

pub use element::Element;
pub use error::{TensorError, TensorResult};
pub use int_tensor::{AsIntTensor, IntTensor};
pub use kernels::conv::{Conv2dParams, ConvTranspose2dParams};
pub use kernels::pool::{AvgPool2dParams, MaxPool2dParams};
pub use shape::Shape;
pub use tensor::Tensor;
