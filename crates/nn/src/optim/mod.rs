//! Optimizers with PyTorch's exact update rules, and learning-rate schedules.
//!
//! An optimizer holds the parameters it updates; [`Optimizer::step`] takes the
//! [`Gradients`] a backward pass returned. Parameters with no gradient are skipped, as
//! in PyTorch when `.grad` is `None`.

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::{CosineAnnealingLr, LrSchedule, StepLr};
pub use sgd::Sgd;

use chainrule_autograd::{Element, Gradients};

/// Updates parameters from gradients.
pub trait Optimizer<T: Element = f32> {
    /// One update of every parameter that has a gradient.
    ///
    /// # Errors
    /// A gradient whose shape differs from its parameter's.
    fn step(&mut self, grads: &Gradients<T>) -> crate::Result<()>;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (schedules use this).
    fn set_lr(&mut self, lr: f64);
}

/// Checks a gradient against its parameter's shape.
pub(crate) fn check_shape<T: Element>(
    what: &'static str,
    p: &chainrule_autograd::Tensor<T>,
    g: &chainrule_autograd::Tensor<T>,
) -> crate::Result<()> {
    if p.shape() != g.shape() {
        return Err(crate::Error::Invalid {
            what,
            reason: format!(
                "gradient shape {} differs from parameter shape {}",
                g.shape(),
                p.shape()
            ),
        });
    }
    Ok(())
}
