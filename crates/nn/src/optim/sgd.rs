use chainrule_autograd::{Element, Param};

use super::{check_range, flag, ParamState, RuleOptimizer, UpdateRule};

/// Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and
/// (L2) weight decay:
///
/// ```text
/// d = g + wd·p
/// b = d                          (first step)
/// b = μ·b + (1 − dampening)·d    (later steps)
/// d = d + μ·b  (Nesterov)   or   d = b
/// p = p − lr·d
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{Optimizer, Sgd};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0], &[1])?);
/// let mut opt = Sgd::new(vec![w.clone()], 0.1)?.momentum(0.9)?;
/// assert!(Sgd::new(vec![w.clone()], 0.1)?.momentum(-5.0).is_err()); // as PyTorch
/// let tape = Tape::new();
/// let grads = tape.param(&w).square().sum().backward()?;
/// opt.step(&grads)?;
/// assert!((w.value().data()[0] - 0.8).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Sgd<T = f32> = RuleOptimizer<T, SgdRule>;

/// [`Sgd`]'s hyperparameters; the default is PyTorch's (lr 1e-3, everything else off).
///
/// ```
/// use chainrule_nn::optim::SgdOptions;
/// let o = SgdOptions { momentum: 0.9, ..SgdOptions::default() };
/// assert_eq!(o.lr, 1e-3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdOptions {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor μ.
    pub momentum: f64,
    /// Dampening of the momentum's gradient term.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdOptions {
    fn default() -> Self {
        SgdOptions {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// [`Sgd`]'s update rule.
#[derive(Debug)]
pub struct SgdRule;

impl UpdateRule for SgdRule {
    const NAME: &'static str = "Sgd";
    const SLOTS: &'static [&'static str] = &["momentum_buffer"];
    type Options = SgdOptions;

    fn check(o: &SgdOptions) -> crate::Result<()> {
        check_range("Sgd", "learning rate", o.lr, 0.0, None)?;
        check_range("Sgd", "momentum", o.momentum, 0.0, None)?;
        check_range("Sgd", "dampening", o.dampening, f64::MIN, None)?;
        check_range("Sgd", "weight_decay", o.weight_decay, 0.0, None)?;
        if o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0) {
            return Err(crate::Error::Invalid {
                what: "Sgd",
                reason: format!(
                    "Nesterov momentum requires a momentum and zero dampening (momentum {}, dampening {})",
                    o.momentum, o.dampening
                ),
            });
        }
        Ok(())
    }

    fn lr(o: &SgdOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut SgdOptions, lr: f64) {
        o.lr = lr;
    }

    fn momentum(o: &SgdOptions) -> Option<f64> {
        Some(o.momentum)
    }

    fn set_momentum(o: &mut SgdOptions, momentum: f64) {
        o.momentum = momentum;
    }

    fn hyper(o: &SgdOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("momentum", o.momentum),
            ("dampening", o.dampening),
            ("nesterov", f64::from(u8::from(o.nesterov))),
            ("weight_decay", o.weight_decay),
        ]
    }

    fn set_hyper(o: &mut SgdOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "momentum" => o.momentum = v,
            "dampening" => o.dampening = v,
            "nesterov" => o.nesterov = flag(v),
            "weight_decay" => o.weight_decay = v,
            _ => return false,
        }
        true
    }

    fn update<T: Element>(o: &SgdOptions, st: &mut ParamState<T>, w: &[T], g: &[T], new: &mut [T]) {
        let c = T::from_f64;
        let (lr, mu, damp, wd) = (
            c(o.lr),
            c(o.momentum),
            c(1.0 - o.dampening),
            c(o.weight_decay),
        );
        let has_wd = o.weight_decay != 0.0;
        if o.momentum == 0.0 {
            for ((n, &w), &g) in new.iter_mut().zip(w).zip(g) {
                let d = if has_wd { g + wd * w } else { g };
                *n = w - lr * d;
            }
            return;
        }
        let buf = &mut st.slots[0];
        // PyTorch's buffer starts as the first step's d, not as μ·0 + (1 − dampening)·d
        let first = buf.is_empty();
        if first {
            buf.resize(g.len(), T::ZERO);
        }
        for (((n, &w), &g), b) in new.iter_mut().zip(w).zip(g).zip(buf.iter_mut()) {
            let d = if has_wd { g + wd * w } else { g };
            *b = if first { d } else { mu * *b + damp * d };
            let step = if o.nesterov { d + mu * *b } else { *b };
            *n = w - lr * step;
        }
    }
}

impl<T: Element> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite (PyTorch's rule).
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            SgdOptions {
                lr,
                ..SgdOptions::default()
            },
        )
    }

    /// Momentum factor μ, in every group.
    ///
    /// # Errors
    /// `momentum` negative or not finite, or 0 with Nesterov on.
    pub fn momentum(self, momentum: f64) -> crate::Result<Self> {
        self.configure(|o| o.momentum = momentum)
    }

    /// Dampening of the momentum's gradient term, in every group.
    ///
    /// # Errors
    /// `dampening` not finite, or non-zero with Nesterov on.
    pub fn dampening(self, dampening: f64) -> crate::Result<Self> {
        self.configure(|o| o.dampening = dampening)
    }

    /// Nesterov momentum, in every group; set the momentum first.
    ///
    /// # Errors
    /// Nesterov without a positive momentum and zero dampening (PyTorch's rule).
    pub fn nesterov(self, nesterov: bool) -> crate::Result<Self> {
        self.configure(|o| o.nesterov = nesterov)
    }

    /// L2 penalty added to the gradient, in every group.
    ///
    /// # Errors
    /// `weight_decay` negative or not finite.
    pub fn weight_decay(self, weight_decay: f64) -> crate::Result<Self> {
        self.configure(|o| o.weight_decay = weight_decay)
    }
}
