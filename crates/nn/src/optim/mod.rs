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

use chainrule_autograd::{Element, Gradients, Param, Tensor};

/// Double buffers for parameter updates: each step writes a parameter's new value into
/// a spare buffer, swaps it in ([`Param::replace`]) and keeps the old one as the next
/// spare. No parameter is ever edited in place, so a snapshot someone holds stays
/// whole, and in steady state no step allocates or copies.
///
/// Indexed by the parameter's position in the optimizer's list: a hash lookup per
/// parameter is measurable on W6's 2000 small parameters.
pub(crate) struct Spares<T: Element>(Vec<Option<Tensor<T>>>);

impl<T: Element> Spares<T> {
    pub(crate) fn new() -> Self {
        Spares(Vec::new())
    }

    /// Stores the new value of `p`, the optimizer's parameter number `index`, computed
    /// by `f(old, new)` writing every element of `new`; `old` is the snapshot of `p`
    /// the caller read (one lock per parameter fewer).
    pub(crate) fn swap_update<R>(
        &mut self,
        index: usize,
        p: &Param<T>,
        old: Tensor<T>,
        f: impl FnOnce(&[T], &mut [T]) -> R,
    ) -> R {
        if self.0.len() <= index {
            self.0.resize_with(index + 1, || None);
        }
        let mut new = match self.0[index].take() {
            Some(spare) if spare.shape() == old.shape() => spare,
            _ => old.zeros_like(),
        };
        // unique unless a snapshot from two steps ago is still held; then it copies
        let out = f(old.data(), new.data_mut());
        let previous = p.replace(new);
        drop(old);
        self.0[index] = Some(previous);
        out
    }
}

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

/// PyTorch's hyperparameter rule `low <= value` (and `value < high` when given): NaN
/// fails every comparison, so it is rejected too.
pub(crate) fn check_range(
    what: &'static str,
    name: &str,
    value: f64,
    low: f64,
    high: Option<f64>,
) -> crate::Result<()> {
    let ok = value >= low && high.is_none_or(|h| value < h) && value.is_finite();
    if ok {
        return Ok(());
    }
    let range = match high {
        Some(h) => format!("in [{low}, {h})"),
        None => format!("a finite number >= {low}"),
    };
    Err(crate::Error::Invalid {
        what,
        reason: format!("invalid {name} {value}: must be {range}"),
    })
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
