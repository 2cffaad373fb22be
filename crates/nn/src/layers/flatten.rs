use chainrule_autograd::{Element, Result, Var};

use crate::{Module, ModuleState};

/// Flattens dims `start_dim..` into one; `Flatten::default()` keeps the batch dim
/// (`[64, 3, 12, 12] → [64, 432]`), as PyTorch's `nn.Flatten()`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Flatten, Module};
/// let x = Tape::<f32>::new().constant(Tensor::zeros(&[64, 3, 12, 12])?);
/// assert_eq!(Flatten::default().forward(&x)?.dims(), &[64, 432]);
/// # Ok::<(), chainrule_autograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    /// First dim to flatten.
    pub start_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start_dim: 1 }
    }
}

impl<T: Element> ModuleState<T> for Flatten {}

impl<T: Element> Module<T> for Flatten {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.flatten(self.start_dim)
    }
}
