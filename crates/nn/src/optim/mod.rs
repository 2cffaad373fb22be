//! Optimizers with PyTorch's exact update rules, parameter groups, saved state,
//! gradient clipping and learning-rate schedules.
//!
//! An optimizer holds the parameters it updates; [`Optimizer::step`] takes the
//! [`Gradients`] a backward pass returned. Parameters with no gradient are skipped, as
//! in PyTorch when `.grad` is `None`. Every optimizer is a [`RuleOptimizer`] with its
//! [`UpdateRule`]: groups, [`Optimizer::state_dict`] and schedules work the same for all.

mod adagrad;
mod adam;
mod clip;
mod nadam;
mod radam;
mod rmsprop;
mod rule;
mod schedule;
mod sgd;
mod state;

pub use adagrad::{Adagrad, AdagradOptions, AdagradRule};
pub use adam::{Adam, AdamOptions, AdamRule};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use nadam::{NAdam, NAdamOptions, NAdamRule};
pub use radam::{RAdam, RAdamOptions, RAdamRule};
pub use rmsprop::{RmsProp, RmsPropOptions, RmsPropRule};
pub use rule::{ParamGroup, ParamState, RuleOptimizer, UpdateRule};
pub use schedule::{
    AnnealStrategy, CosineAnnealingLr, CosineAnnealingWarmRestarts, ExponentialLr, LinearLr,
    LrSchedule, MultiStepLr, OneCycleLr, PlateauMode, PlateauOptions, ReduceLrOnPlateau, Scheduler,
    SequentialLr, StepLr, ThresholdMode,
};
pub use sgd::{Sgd, SgdOptions, SgdRule};
pub use state::{GroupState, OptimizerState};

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
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Optimizer, Sgd};
/// let w = Param::new(Tensor::<f32>::zeros(&[2])?);
/// let mut opt: Box<dyn Optimizer> = Box::new(Sgd::new(vec![w], 0.1)?.momentum(0.9)?);
/// opt.set_lr(0.01);
/// assert_eq!((opt.lr(), opt.momenta()), (0.01, vec![Some(0.9)]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Optimizer<T: Element = f32> {
    /// One update of every parameter that has a gradient.
    ///
    /// # Errors
    /// A gradient whose shape differs from its parameter's (checked for every
    /// parameter before any changes).
    fn step(&mut self, grads: &Gradients<T>) -> crate::Result<()>;

    /// Each group's learning rate.
    fn lrs(&self) -> Vec<f64>;

    /// Sets group `group`'s learning rate (schedules use this); no such group: nothing.
    fn set_group_lr(&mut self, group: usize, lr: f64);

    /// Each group's momentum as a one-cycle schedule sees it (SGD's and RMSprop's
    /// momentum, the Adam family's β₁; `None` for Adagrad).
    fn momenta(&self) -> Vec<Option<f64>>;

    /// Sets group `group`'s momentum; nothing for a rule without one.
    fn set_group_momentum(&mut self, group: usize, momentum: f64);

    /// Everything needed to resume: each group's hyperparameters and each parameter's
    /// step count and buffers (PyTorch's `state_dict`). Save it with
    /// [`OptimizerState::save`].
    fn state_dict(&self) -> OptimizerState<T>;

    /// Restores a [`Optimizer::state_dict`] taken from an optimizer of the same kind over
    /// parameters of the same shapes in the same groups.
    ///
    /// # Errors
    /// Any mismatch (kind, groups, shapes, unknown hyperparameter); the error lists
    /// every one and nothing changes.
    fn load_state_dict(&mut self, state: &OptimizerState<T>) -> crate::Result<()>;

    /// The first group's learning rate.
    fn lr(&self) -> f64 {
        self.lrs().first().copied().unwrap_or(0.0)
    }

    /// Sets every group's learning rate.
    fn set_lr(&mut self, lr: f64) {
        for g in 0..self.lrs().len() {
            self.set_group_lr(g, lr);
        }
    }
}

/// A saved boolean hyperparameter: any non-zero value is on.
pub(crate) fn flag(v: f64) -> bool {
    v != 0.0
}

/// The Adam family's weight decay on one `(weight, gradient)` pair: decoupled (AdamW)
/// shrinks the weight by `decay = 1 − lr·wd`, L2 adds `wd·w` to the gradient.
#[inline(always)]
pub(crate) fn decayed<T: Element>(
    w: T,
    g: T,
    on: bool,
    decoupled: bool,
    decay: T,
    wd: T,
) -> (T, T) {
    match (on, decoupled) {
        (false, _) => (w, g),
        (true, true) => (w * decay, g),
        (true, false) => (w, g + wd * w),
    }
}

/// The Adam family's rule: each beta in `[0, 1)`.
pub(crate) fn check_betas(what: &'static str, (b1, b2): (f64, f64)) -> crate::Result<()> {
    check_range(what, "beta1", b1, 0.0, Some(1.0))?;
    check_range(what, "beta2", b2, 0.0, Some(1.0))
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
