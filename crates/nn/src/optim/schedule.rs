use std::f64::consts::PI;

/// A learning rate as a function of the epoch (or step) count.
pub trait LrSchedule {
    /// The learning rate for `epoch` (0-based).
    fn lr_at(&self, epoch: usize) -> f64;
}

/// PyTorch's `StepLR`: multiply by `gamma` every `step_size` epochs.
///
/// ```
/// use chainrule_nn::optim::{LrSchedule, StepLr};
/// let s = StepLr { base_lr: 0.1, step_size: 2, gamma: 0.5 };
/// assert_eq!(s.lr_at(3), 0.05);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StepLr {
    /// Starting rate.
    pub base_lr: f64,
    /// Epochs between decays.
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32)
    }
}

/// PyTorch's `CosineAnnealingLR`: from `base_lr` down to `eta_min` over `t_max` epochs.
///
/// ```
/// use chainrule_nn::optim::{CosineAnnealingLr, LrSchedule};
/// let s = CosineAnnealingLr { base_lr: 1.0, t_max: 10, eta_min: 0.0 };
/// assert!((s.lr_at(5) - 0.5).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealingLr {
    /// Starting rate.
    pub base_lr: f64,
    /// Epochs to reach the minimum.
    pub t_max: usize,
    /// The minimum.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr_at(&self, epoch: usize) -> f64 {
        let t = epoch.min(self.t_max) as f64 / self.t_max.max(1) as f64;
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }
}
