use chainrule_autograd::{Element, Param};

use super::{check_range, flag, ParamState, RuleOptimizer, UpdateRule};

/// RMSprop with PyTorch's update rule (momentum and centered variants):
///
/// ```text
/// g = g + wd·p
/// s = α·s + (1 − α)·g²
/// a = s − ḡ², ḡ = ḡ + (1 − α)·(g − ḡ)   (centered)     a = s   (otherwise)
/// b = μ·b + g/(√a + ε),  p = p − lr·b     (momentum)     p = p − lr·g/(√a + ε)
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{Optimizer, RmsProp};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0], &[1])?);
/// let mut opt = RmsProp::new(vec![w.clone()], 0.01)?.momentum(0.5)?.centered(true);
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// assert!(w.value().data()[0] < 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type RmsProp<T = f32> = RuleOptimizer<T, RmsPropRule>;

/// [`RmsProp`]'s hyperparameters; the default is PyTorch's (lr 1e-2, α 0.99, eps 1e-8).
///
/// ```
/// use chainrule_nn::optim::RmsPropOptions;
/// assert_eq!(RmsPropOptions::default().alpha, 0.99);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropOptions {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// The denominator's ε.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Normalise by the gradient's estimated variance instead of its second moment.
    pub centered: bool,
}

impl Default for RmsPropOptions {
    fn default() -> Self {
        RmsPropOptions {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// [`RmsProp`]'s update rule.
#[derive(Debug)]
pub struct RmsPropRule;

impl UpdateRule for RmsPropRule {
    const NAME: &'static str = "RmsProp";
    const SLOTS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    type Options = RmsPropOptions;

    fn check(o: &RmsPropOptions) -> crate::Result<()> {
        check_range("RmsProp", "learning rate", o.lr, 0.0, None)?;
        check_range("RmsProp", "alpha", o.alpha, 0.0, None)?;
        check_range("RmsProp", "epsilon", o.eps, 0.0, None)?;
        check_range("RmsProp", "momentum", o.momentum, 0.0, None)?;
        check_range("RmsProp", "weight_decay", o.weight_decay, 0.0, None)
    }

    fn lr(o: &RmsPropOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut RmsPropOptions, lr: f64) {
        o.lr = lr;
    }

    fn momentum(o: &RmsPropOptions) -> Option<f64> {
        Some(o.momentum)
    }

    fn set_momentum(o: &mut RmsPropOptions, momentum: f64) {
        o.momentum = momentum;
    }

    fn hyper(o: &RmsPropOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("alpha", o.alpha),
            ("eps", o.eps),
            ("weight_decay", o.weight_decay),
            ("momentum", o.momentum),
            ("centered", f64::from(u8::from(o.centered))),
        ]
    }

    fn set_hyper(o: &mut RmsPropOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "alpha" => o.alpha = v,
            "eps" => o.eps = v,
            "weight_decay" => o.weight_decay = v,
            "momentum" => o.momentum = v,
            "centered" => o.centered = flag(v),
            _ => return false,
        }
        true
    }

    fn update<T: Element>(
        o: &RmsPropOptions,
        st: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    ) {
        let n = g.len();
        let c = T::from_f64;
        let (lr, alpha, eps, wd, mu) = (
            c(o.lr),
            c(o.alpha),
            c(o.eps),
            c(o.weight_decay),
            c(o.momentum),
        );
        let (has_wd, has_momentum) = (o.weight_decay != 0.0, o.momentum > 0.0);
        let wanted = [true, has_momentum, o.centered];
        for (slot, want) in st.slots.iter_mut().zip(wanted) {
            if want && slot.is_empty() {
                slot.resize(n, T::ZERO);
            }
        }
        let [sq, buf, avg] = &mut st.slots[..] else {
            unreachable!("RmsProp has three slots")
        };
        for (i, ((n, &w), &g)) in new.iter_mut().zip(w).zip(g).enumerate() {
            let g = if has_wd { g + wd * w } else { g };
            sq[i] = alpha * sq[i] + (T::ONE - alpha) * g * g;
            let a = if o.centered {
                avg[i] = avg[i] + (T::ONE - alpha) * (g - avg[i]);
                sq[i] - avg[i] * avg[i]
            } else {
                sq[i]
            };
            let denom = a.sqrt() + eps;
            *n = if has_momentum {
                buf[i] = mu * buf[i] + g / denom;
                w - lr * buf[i]
            } else {
                w - lr * g / denom
            };
        }
    }
}

impl<T: Element> RmsProp<T> {
    /// RMSprop with PyTorch's defaults and learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite.
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            RmsPropOptions {
                lr,
                ..RmsPropOptions::default()
            },
        )
    }

    /// Smoothing constant α, in every group.
    ///
    /// # Errors
    /// `alpha` negative or not finite.
    pub fn alpha(self, alpha: f64) -> crate::Result<Self> {
        self.configure(|o| o.alpha = alpha)
    }

    /// Momentum factor, in every group.
    ///
    /// # Errors
    /// `momentum` negative or not finite.
    pub fn momentum(self, momentum: f64) -> crate::Result<Self> {
        self.configure(|o| o.momentum = momentum)
    }

    /// The centered variant, in every group.
    pub fn centered(self, centered: bool) -> Self {
        self.configure(|o| o.centered = centered)
            .expect("centered changes no checked hyperparameter")
    }

    /// L2 penalty added to the gradient, in every group.
    ///
    /// # Errors
    /// `weight_decay` negative or not finite.
    pub fn weight_decay(self, weight_decay: f64) -> crate::Result<Self> {
        self.configure(|o| o.weight_decay = weight_decay)
    }

    /// The denominator's ε, in every group.
    ///
    /// # Errors
    /// `eps` negative or not finite.
    pub fn eps(self, eps: f64) -> crate::Result<Self> {
        self.configure(|o| o.eps = eps)
    }
}
