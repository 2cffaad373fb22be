use chainrule_autograd::{Element, InterpolateMode, InterpolateSize, Result, Var};

use crate::{Module, ModuleState};

/// PyTorch's `nn.Upsample`: resizes `[n, c, h, w]` to a size or by a scale, nearest or
/// bilinear (see [`Var::interpolate`]).
///
/// ```
/// use chainrule_autograd::{InterpolateMode, InterpolateSize, Tape, Tensor};
/// use chainrule_nn::{layers::Upsample, Module};
/// let up = Upsample { size: InterpolateSize::Scale([2.0, 2.0]), mode: InterpolateMode::Nearest };
/// let x = Tape::<f32>::new().constant(Tensor::zeros(&[1, 3, 4, 4])?);
/// assert_eq!(up.forward(&x)?.dims(), &[1, 3, 8, 8]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Upsample {
    /// The output size or the scale factors.
    pub size: InterpolateSize,
    /// Nearest or bilinear.
    pub mode: InterpolateMode,
}

impl<T: Element> ModuleState<T> for Upsample {}

impl<T: Element> Module<T> for Upsample {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.interpolate(self.size, self.mode)
    }
}
