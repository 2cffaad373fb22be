//! Learning-rate schedules with PyTorch's formulas, as pure functions of the step
//! count ([`LrSchedule`]), driven over an optimizer's groups by a [`Scheduler`]; and
//! the one schedule that depends on a metric, [`ReduceLrOnPlateau`].
//!
//! Each schedule computes PyTorch's closed form (its `_get_closed_form_lr`); PyTorch
//! steps most of them recursively, which agrees to rounding (checked against its
//! trajectories in `fixtures/schedule.json`).

use std::f64::consts::PI;

use chainrule_autograd::Element;

use super::Optimizer;

mod plateau;

pub use plateau::{PlateauMode, PlateauOptions, ReduceLrOnPlateau, ThresholdMode};

fn invalid(what: &'static str, reason: String) -> crate::Error {
    crate::Error::Invalid { what, reason }
}

/// A learning rate as a function of the number of scheduler steps taken.
pub trait LrSchedule {
    /// The learning rate after `step` steps for a group whose rate was `base_lr` when
    /// the schedule started.
    fn lr_at(&self, step: usize, base_lr: f64) -> f64;

    /// The momentum after `step` steps, for schedules that cycle it.
    fn momentum_at(&self, _step: usize) -> Option<f64> {
        None
    }

    /// The last valid step, for schedules defined over a fixed length.
    fn total_steps(&self) -> Option<usize> {
        None
    }

    /// Checks the schedule's settings.
    ///
    /// # Errors
    /// A setting PyTorch rejects, or one that would divide by zero.
    fn check(&self) -> crate::Result<()> {
        Ok(())
    }
}

impl<S: LrSchedule + ?Sized> LrSchedule for Box<S> {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        (**self).lr_at(step, base_lr)
    }

    fn momentum_at(&self, step: usize) -> Option<f64> {
        (**self).momentum_at(step)
    }

    fn total_steps(&self) -> Option<usize> {
        (**self).total_steps()
    }

    fn check(&self) -> crate::Result<()> {
        (**self).check()
    }
}

/// Applies an [`LrSchedule`] to an optimizer's groups, as PyTorch's schedulers do:
/// built once (setting the step-0 rate), then `step` after each optimizer step.
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Optimizer, Scheduler, Sgd, StepLr};
/// let w = Param::new(Tensor::<f32>::zeros(&[2])?);
/// let mut opt = Sgd::new(vec![w], 0.1)?;
/// let mut sched = Scheduler::new(StepLr { step_size: 2, gamma: 0.5 }, &mut opt)?;
/// for _ in 0..3 {
///     // opt.step(&grads)?;
///     sched.step(&mut opt)?;
/// }
/// assert_eq!(opt.lr(), 0.05);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Scheduler<S> {
    schedule: S,
    base_lrs: Vec<f64>,
    step: usize,
}

impl<S: LrSchedule> Scheduler<S> {
    /// Starts `schedule` from the optimizer's current rates and sets the step-0 rates.
    ///
    /// # Errors
    /// An invalid schedule, or one cycling momentum over an optimizer without one.
    pub fn new<T: Element>(
        schedule: S,
        opt: &mut (impl Optimizer<T> + ?Sized),
    ) -> crate::Result<Self> {
        let base_lrs = opt.lrs();
        Self::resume(schedule, base_lrs, 0, opt)
    }

    /// Continues a schedule after `step` steps from `base_lrs` (a saved run's
    /// [`Scheduler::base_lrs`] and [`Scheduler::steps`]), setting that step's rates.
    ///
    /// # Errors
    /// As [`Scheduler::new`], or `base_lrs` not one per group, or `step` past the end.
    pub fn resume<T: Element>(
        schedule: S,
        base_lrs: Vec<f64>,
        step: usize,
        opt: &mut (impl Optimizer<T> + ?Sized),
    ) -> crate::Result<Self> {
        schedule.check()?;
        let groups = opt.lrs().len();
        if base_lrs.len() != groups {
            return Err(invalid(
                "Scheduler",
                format!("{} base rates for {groups} groups", base_lrs.len()),
            ));
        }
        if schedule.momentum_at(0).is_some() && opt.momenta().iter().any(Option::is_none) {
            return Err(invalid(
                "Scheduler",
                "the schedule cycles momentum but the optimizer has none".into(),
            ));
        }
        let s = Scheduler {
            schedule,
            base_lrs,
            step,
        };
        s.apply(opt)?;
        Ok(s)
    }

    /// Advances one step and sets the optimizer's rates (and momenta).
    ///
    /// # Errors
    /// A schedule of fixed length stepped past its end (as PyTorch's OneCycleLR).
    pub fn step<T: Element>(
        &mut self,
        opt: &mut (impl Optimizer<T> + ?Sized),
    ) -> crate::Result<()> {
        self.step += 1;
        if let Err(e) = self.apply(opt) {
            self.step -= 1;
            return Err(e);
        }
        Ok(())
    }

    fn apply<T: Element>(&self, opt: &mut (impl Optimizer<T> + ?Sized)) -> crate::Result<()> {
        if let Some(total) = self.schedule.total_steps() {
            if self.step > total {
                return Err(invalid(
                    "Scheduler",
                    format!(
                        "stepped {} times, past the schedule's {total} total steps",
                        self.step
                    ),
                ));
            }
        }
        for (g, &base) in self.base_lrs.iter().enumerate() {
            opt.set_group_lr(g, self.schedule.lr_at(self.step, base));
            if let Some(m) = self.schedule.momentum_at(self.step) {
                opt.set_group_momentum(g, m);
            }
        }
        Ok(())
    }

    /// Each group's rate when the schedule started.
    pub fn base_lrs(&self) -> &[f64] {
        &self.base_lrs
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }
}

/// PyTorch's `StepLR`: multiply by `gamma` every `step_size` steps.
///
/// ```
/// use chainrule_nn::optim::{LrSchedule, StepLr};
/// assert_eq!(StepLr { step_size: 2, gamma: 0.5 }.lr_at(3, 0.1), 0.05);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StepLr {
    /// Steps between decays.
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        base_lr * self.gamma.powi(exponent(step / self.step_size.max(1)))
    }

    fn check(&self) -> crate::Result<()> {
        if self.step_size == 0 {
            return Err(invalid("StepLr", "step_size must be positive".into()));
        }
        Ok(())
    }
}

fn exponent(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// PyTorch's `MultiStepLR`: multiply by `gamma` at each milestone.
///
/// ```
/// use chainrule_nn::optim::{LrSchedule, MultiStepLr};
/// let s = MultiStepLr { milestones: vec![2, 5], gamma: 0.1 };
/// assert!((s.lr_at(5, 1.0) - 0.01).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    /// Steps at which the rate decays (a repeated milestone decays twice, as in PyTorch).
    pub milestones: Vec<usize>,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for MultiStepLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= step).count();
        base_lr * self.gamma.powi(exponent(passed))
    }
}

/// PyTorch's `ExponentialLR`: multiply by `gamma` every step.
///
/// ```
/// use chainrule_nn::optim::{ExponentialLr, LrSchedule};
/// assert_eq!(ExponentialLr { gamma: 0.5 }.lr_at(2, 1.0), 0.25);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ExponentialLr {
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for ExponentialLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        base_lr * self.gamma.powi(exponent(step))
    }
}

/// PyTorch's `CosineAnnealingLR`: from the base rate down to `eta_min` over `t_max`
/// steps along a cosine, and (as PyTorch) back up over the next `t_max`.
///
/// ```
/// use chainrule_nn::optim::{CosineAnnealingLr, LrSchedule};
/// let s = CosineAnnealingLr { t_max: 10, eta_min: 0.0 };
/// assert!((s.lr_at(5, 1.0) - 0.5).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealingLr {
    /// Steps to reach the minimum.
    pub t_max: usize,
    /// The minimum.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        let t = step as f64 / self.t_max.max(1) as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }

    fn check(&self) -> crate::Result<()> {
        if self.t_max == 0 {
            return Err(invalid(
                "CosineAnnealingLr",
                "t_max must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// PyTorch's `LinearLR`: the factor moves linearly from `start_factor` to
/// `end_factor` over `total_iters` steps, then stays.
///
/// ```
/// use chainrule_nn::optim::{LinearLr, LrSchedule};
/// let warmup = LinearLr { start_factor: 0.1, end_factor: 1.0, total_iters: 4 };
/// assert!((warmup.lr_at(2, 1.0) - 0.55).abs() < 1e-12);
/// assert_eq!(warmup.lr_at(9, 1.0), 1.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LinearLr {
    /// The factor at step 0, in (0, 1].
    pub start_factor: f64,
    /// The factor from `total_iters` on, in [0, 1].
    pub end_factor: f64,
    /// Steps of the ramp.
    pub total_iters: usize,
}

impl LrSchedule for LinearLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        let done = step.min(self.total_iters) as f64 / self.total_iters.max(1) as f64;
        base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)
    }

    fn check(&self) -> crate::Result<()> {
        let in_unit =
            |v: f64, open_low: bool| v <= 1.0 && if open_low { v > 0.0 } else { v >= 0.0 };
        if !in_unit(self.start_factor, true) || !in_unit(self.end_factor, false) {
            return Err(invalid(
                "LinearLr",
                format!(
                    "start_factor {} must be in (0, 1] and end_factor {} in [0, 1]",
                    self.start_factor, self.end_factor
                ),
            ));
        }
        Ok(())
    }
}

/// How [`OneCycleLr`] moves between its end points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnealStrategy {
    /// Along a half cosine (PyTorch's default).
    Cos,
    /// Linearly.
    Linear,
}

impl AnnealStrategy {
    fn anneal(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            AnnealStrategy::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            AnnealStrategy::Linear => (end - start) * pct + start,
        }
    }
}

/// PyTorch's `OneCycleLR`: the rate rises from `max_lr / div_factor` to `max_lr` over
/// the first `pct_start` of `total_steps`, then falls to `max_lr / div_factor /
/// final_div_factor`, while the momentum (SGD's, or Adam's β₁) moves the other way
/// between `max_momentum` and `base_momentum`. The optimizer's own rate is ignored.
///
/// ```
/// use chainrule_nn::optim::{LrSchedule, OneCycleLr};
/// let s = OneCycleLr::new(0.5, 100);
/// assert!((s.lr_at(0, 0.1) - 0.02).abs() < 1e-15);
/// assert!((s.lr_at(29, 0.1) - 0.5).abs() < 1e-12);
/// assert_eq!(s.momentum_at(0), Some(0.95));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct OneCycleLr {
    /// The peak rate.
    pub max_lr: f64,
    /// Steps in the cycle.
    pub total_steps: usize,
    /// Fraction of the cycle spent rising.
    pub pct_start: f64,
    /// Cosine or linear annealing.
    pub anneal_strategy: AnnealStrategy,
    /// Whether to cycle the momentum.
    pub cycle_momentum: bool,
    /// The momentum at the peak rate.
    pub base_momentum: f64,
    /// The momentum at the start and end.
    pub max_momentum: f64,
    /// The starting rate is `max_lr / div_factor`.
    pub div_factor: f64,
    /// The final rate is the starting rate over this.
    pub final_div_factor: f64,
    /// Fall back to the starting rate before annealing to the final one (fast.ai's
    /// three phases) instead of two phases.
    pub three_phase: bool,
}

impl OneCycleLr {
    /// PyTorch's defaults: pct_start 0.3, cosine, momentum 0.85–0.95, div_factor 25,
    /// final_div_factor 1e4, two phases.
    ///
    /// ```
    /// use chainrule_nn::optim::OneCycleLr;
    /// let s = OneCycleLr { pct_start: 0.25, ..OneCycleLr::new(0.1, 1000) };
    /// assert_eq!(s.div_factor, 25.0);
    /// ```
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal_strategy: AnnealStrategy::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }

    /// Each phase: (end step, start lr, end lr, start momentum, end momentum).
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let rise_end = self.pct_start * self.total_steps as f64 - 1.0;
        let last = self.total_steps as f64 - 1.0;
        let (lo, hi) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            vec![
                (rise_end, initial, self.max_lr, hi, lo),
                (
                    2.0 * self.pct_start * self.total_steps as f64 - 2.0,
                    self.max_lr,
                    initial,
                    lo,
                    hi,
                ),
                (last, initial, min, hi, hi),
            ]
        } else {
            vec![
                (rise_end, initial, self.max_lr, hi, lo),
                (last, self.max_lr, min, lo, hi),
            ]
        }
    }

    /// The (lr, momentum) at `step`, walking the phases as PyTorch's `get_lr`.
    fn at(&self, step: usize) -> (f64, f64) {
        let phases = self.phases();
        let step = step as f64;
        let mut start = 0.0;
        for (i, &(end, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if step <= end || i == phases.len() - 1 {
                let pct = (step - start) / (end - start);
                let a = self.anneal_strategy;
                return (a.anneal(lr0, lr1, pct), a.anneal(m0, m1, pct));
            }
            start = end;
        }
        unreachable!("the last phase always answers")
    }
}

impl LrSchedule for OneCycleLr {
    fn lr_at(&self, step: usize, _base_lr: f64) -> f64 {
        self.at(step).0
    }

    fn momentum_at(&self, step: usize) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(step).1)
    }

    fn total_steps(&self) -> Option<usize> {
        Some(self.total_steps)
    }

    fn check(&self) -> crate::Result<()> {
        let fail = |r: String| Err(invalid("OneCycleLr", r));
        if self.total_steps == 0 {
            return fail("total_steps must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            return fail(format!("pct_start {} must be in [0, 1]", self.pct_start));
        }
        // a phase ending where the previous one ended divides by zero
        let ends: Vec<f64> = self.phases().iter().map(|p| p.0).collect();
        let starts = std::iter::once(0.0).chain(ends.iter().copied());
        if starts.zip(&ends).any(|(start, &end)| end == start) {
            return fail(format!(
                "total_steps {} and pct_start {} leave a phase with no steps",
                self.total_steps, self.pct_start
            ));
        }
        if !(self.div_factor > 0.0 && self.final_div_factor > 0.0) {
            return fail("div_factor and final_div_factor must be positive".into());
        }
        Ok(())
    }
}

/// PyTorch's `CosineAnnealingWarmRestarts` (SGDR): a cosine from the base rate to
/// `eta_min` over `t_0` steps, restarting with a period `t_mult` times longer each time.
///
/// ```
/// use chainrule_nn::optim::{CosineAnnealingWarmRestarts, LrSchedule};
/// let s = CosineAnnealingWarmRestarts { t_0: 5, t_mult: 2, eta_min: 0.0 };
/// assert_eq!(s.lr_at(5, 1.0), 1.0); // the first restart
/// assert_eq!(s.lr_at(15, 1.0), 1.0); // the second, after 5 + 10 steps
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealingWarmRestarts {
    /// The first period.
    pub t_0: usize,
    /// Each period's growth factor.
    pub t_mult: usize,
    /// The minimum.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingWarmRestarts {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        let (mut t_cur, mut t_i) = (step, self.t_0.max(1));
        while t_cur >= t_i {
            t_cur -= t_i;
            t_i = t_i.saturating_mul(self.t_mult.max(1));
        }
        let t = t_cur as f64 / t_i as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }

    fn check(&self) -> crate::Result<()> {
        if self.t_0 == 0 || self.t_mult == 0 {
            return Err(invalid(
                "CosineAnnealingWarmRestarts",
                format!(
                    "t_0 {} and t_mult {} must be positive",
                    self.t_0, self.t_mult
                ),
            ));
        }
        Ok(())
    }
}

/// PyTorch's `SequentialLR`: `schedules[k]` runs from `milestones[k - 1]`, restarted
/// at its own step 0.
///
/// ```
/// use chainrule_nn::optim::{CosineAnnealingLr, LinearLr, LrSchedule, SequentialLr};
/// let s = SequentialLr {
///     schedules: vec![
///         Box::new(LinearLr { start_factor: 0.25, end_factor: 1.0, total_iters: 5 }),
///         Box::new(CosineAnnealingLr { t_max: 25, eta_min: 0.0 }),
///     ],
///     milestones: vec![5],
/// };
/// assert_eq!(s.lr_at(5, 0.1), 0.1);
/// ```
pub struct SequentialLr {
    /// The schedules in order.
    pub schedules: Vec<Box<dyn LrSchedule>>,
    /// The step at which each schedule after the first starts.
    pub milestones: Vec<usize>,
}

impl std::fmt::Debug for SequentialLr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialLr")
            .field("schedules", &self.schedules.len())
            .field("milestones", &self.milestones)
            .finish()
    }
}

impl LrSchedule for SequentialLr {
    fn lr_at(&self, step: usize, base_lr: f64) -> f64 {
        let k = self.milestones.iter().filter(|&&m| m <= step).count();
        let start = k.checked_sub(1).map_or(0, |i| self.milestones[i]);
        self.schedules[k].lr_at(step - start, base_lr)
    }

    fn check(&self) -> crate::Result<()> {
        if self.schedules.len() != self.milestones.len() + 1 {
            return Err(invalid(
                "SequentialLr",
                format!(
                    "{} schedules need {} milestones, got {}",
                    self.schedules.len(),
                    self.schedules.len().saturating_sub(1),
                    self.milestones.len()
                ),
            ));
        }
        if self.milestones.windows(2).any(|w| w[1] < w[0]) {
            return Err(invalid(
                "SequentialLr",
                format!("milestones {:?} must not decrease", self.milestones),
            ));
        }
        self.schedules.iter().try_for_each(|s| s.check())
    }
}
