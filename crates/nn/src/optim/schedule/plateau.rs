use chainrule_autograd::Element;

use super::super::Optimizer;

/// Whether [`ReduceLrOnPlateau`] waits for the metric to fall or to rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// A loss: lower is better.
    Min,
    /// An accuracy: higher is better.
    Max,
}

/// Whether an improvement must beat the best by a fraction or by an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// By `threshold · |best|`.
    Rel,
    /// By `threshold`.
    Abs,
}

/// [`ReduceLrOnPlateau`]'s settings; the default is PyTorch's (min mode, factor 0.1,
/// patience 10, relative threshold 1e-4, no cooldown, min_lr 0, eps 1e-8).
///
/// ```
/// use chainrule_nn::optim::PlateauOptions;
/// let o = PlateauOptions { patience: 2, ..PlateauOptions::default() };
/// assert_eq!(o.factor, 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauOptions {
    /// Lower or higher is better.
    pub mode: PlateauMode,
    /// The rate's factor at each reduction.
    pub factor: f64,
    /// Steps without improvement tolerated.
    pub patience: usize,
    /// The least change that counts as an improvement.
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Steps after a reduction before counting bad steps again.
    pub cooldown: usize,
    /// The rate never goes below this.
    pub min_lr: f64,
    /// A reduction smaller than this is skipped.
    pub eps: f64,
}

impl Default for PlateauOptions {
    fn default() -> Self {
        PlateauOptions {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// PyTorch's `ReduceLROnPlateau`: multiply every group's rate by `factor` (not below
/// `min_lr`) once the metric has not improved for more than `patience` steps, then wait
/// `cooldown` steps before counting again.
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Optimizer, PlateauOptions, ReduceLrOnPlateau, Sgd};
/// let mut opt = Sgd::new(vec![Param::new(Tensor::<f32>::zeros(&[1])?)], 0.1)?;
/// let options = PlateauOptions { patience: 1, factor: 0.5, ..PlateauOptions::default() };
/// let mut plateau = ReduceLrOnPlateau::new(options)?;
/// for loss in [1.0, 0.9, 0.9, 0.9] {
///     plateau.step(loss, &mut opt);
/// }
/// assert_eq!(opt.lr(), 0.05);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    options: PlateauOptions,
    best: Option<f64>,
    bad_steps: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// Starts watching a metric.
    ///
    /// # Errors
    /// `factor` not in [0, 1) (PyTorch's rule), or a negative or NaN threshold, min_lr
    /// or eps.
    pub fn new(options: PlateauOptions) -> crate::Result<Self> {
        let o = &options;
        let ok = (0.0..1.0).contains(&o.factor)
            && [o.threshold, o.min_lr, o.eps].iter().all(|v| *v >= 0.0);
        if !ok {
            return Err(crate::Error::Invalid {
                what: "ReduceLrOnPlateau",
                reason: format!(
                    "factor {} must be in [0, 1); threshold {}, min_lr {} and eps {} must be >= 0",
                    o.factor, o.threshold, o.min_lr, o.eps
                ),
            });
        }
        Ok(ReduceLrOnPlateau {
            options,
            best: None,
            bad_steps: 0,
            cooldown_left: 0,
        })
    }

    /// The settings.
    pub fn options(&self) -> &PlateauOptions {
        &self.options
    }

    fn improves(&self, metric: f64, best: f64) -> bool {
        let t = self.options.threshold;
        match (self.options.mode, self.options.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => metric < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => metric < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => metric > best * (1.0 + t),
            (PlateauMode::Max, ThresholdMode::Abs) => metric > best + t,
        }
    }

    /// Records this step's `metric` and reduces the rates when it has stalled. A NaN
    /// metric never improves (as in PyTorch).
    pub fn step<T: Element>(&mut self, metric: f64, opt: &mut (impl Optimizer<T> + ?Sized)) {
        let o = self.options;
        let best = self.best.unwrap_or(match o.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        });
        if self.improves(metric, best) {
            self.best = Some(metric);
            self.bad_steps = 0;
        } else {
            self.best = Some(best);
            self.bad_steps += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_steps = 0;
        }
        if self.bad_steps > o.patience {
            for (g, old) in opt.lrs().into_iter().enumerate() {
                let new = (old * o.factor).max(o.min_lr);
                if old - new > o.eps {
                    opt.set_group_lr(g, new);
                }
            }
            self.cooldown_left = o.cooldown;
            self.bad_steps = 0;
        }
    }

    /// The best metric seen so far.
    pub fn best(&self) -> Option<f64> {
        self.best
    }
}
