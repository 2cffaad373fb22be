use chainrule_autograd::{AvgPool2dParams, Element, MaxPool2dParams, Result, Var};

use crate::{Module, ModuleState};

/// Max pooling; `MaxPool2d::new([2, 2])` is PyTorch's `MaxPool2d(2)`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::MaxPool2d, Module};
/// let x = Tape::<f32>::new().constant(Tensor::zeros(&[1, 3, 24, 24])?);
/// assert_eq!(MaxPool2d::new([2, 2]).forward(&x)?.dims(), &[1, 3, 12, 12]);
/// # Ok::<(), chainrule_autograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d(pub MaxPool2dParams);

impl MaxPool2d {
    /// A window of `kernel_size` with stride equal to it.
    pub fn new(kernel_size: [usize; 2]) -> Self {
        MaxPool2d(MaxPool2dParams::new(kernel_size))
    }
}

impl<T: Element> ModuleState<T> for MaxPool2d {}

impl<T: Element> Module<T> for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.max_pool2d(self.0)
    }
}

/// Average pooling; `AvgPool2d::new([2, 2])` is PyTorch's `AvgPool2d(2)`.
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d(pub AvgPool2dParams);

impl AvgPool2d {
    /// A window of `kernel_size` with stride equal to it.
    pub fn new(kernel_size: [usize; 2]) -> Self {
        AvgPool2d(AvgPool2dParams::new(kernel_size))
    }
}

impl<T: Element> ModuleState<T> for AvgPool2d {}

impl<T: Element> Module<T> for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.avg_pool2d(self.0)
    }
}

/// Adaptive average pooling to a fixed `[oh, ow]` output, `[n, c, oh, ow]`.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveAvgPool2d(pub [usize; 2]);

impl<T: Element> ModuleState<T> for AdaptiveAvgPool2d {}

impl<T: Element> Module<T> for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.adaptive_avg_pool2d(self.0)
    }
}

/// Global average pooling: the mean of each channel, `[n, c, h, w] → [n, c]` (PyTorch's
/// `AdaptiveAvgPool2d(1)` followed by `Flatten`).
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::GlobalAvgPool2d, Module};
/// let x = Tape::<f32>::new().constant(Tensor::ones(&[2, 8, 7, 7])?);
/// assert_eq!(GlobalAvgPool2d.forward(&x)?.dims(), &[2, 8]);
/// # Ok::<(), chainrule_autograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GlobalAvgPool2d;

impl<T: Element> ModuleState<T> for GlobalAvgPool2d {}

impl<T: Element> Module<T> for GlobalAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.adaptive_avg_pool2d([1, 1])?.flatten(1)
    }
}
