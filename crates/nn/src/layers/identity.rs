use chainrule_autograd::{Element, Result, Var};

use crate::{Module, ModuleState};

/// Returns its input (PyTorch's `Identity`): a placeholder where a model may or may
/// not have a layer.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Identity, Module};
/// let x = Tape::<f32>::new().constant(Tensor::ones(&[2])?);
/// assert_eq!(Identity.forward(&x)?.value(), x.value());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl<T: Element> ModuleState<T> for Identity {}

impl<T: Element> Module<T> for Identity {
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.clone())
    }
}
