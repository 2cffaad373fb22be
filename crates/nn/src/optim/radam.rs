use chainrule_autograd::{Element, Param};

use super::{check_betas, check_range, decayed, flag, ParamState, RuleOptimizer, UpdateRule};

/// RAdam (Adam with a rectified adaptive learning rate) with PyTorch's update rule:
///
/// ```text
/// m = β₁·m + (1 − β₁)·g,  v = β₂·v + (1 − β₂)·g²
/// ρ∞ = 2/(1 − β₂) − 1,  ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
/// ρₜ > 5:  r = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)),
///          p = p − lr · m/(1 − β₁ᵗ) · r·√(1 − β₂ᵗ)/(√v + ε)
/// else:    p = p − lr · m/(1 − β₁ᵗ)
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{Optimizer, RAdam};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0], &[1])?);
/// let mut opt = RAdam::new(vec![w.clone()], 0.01)?;
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// assert!((w.value().data()[0] - 0.98).abs() < 1e-12); // first step: p − lr·g
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type RAdam<T = f32> = RuleOptimizer<T, RAdamRule>;

/// [`RAdam`]'s hyperparameters; the default is PyTorch's (lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8).
///
/// ```
/// use chainrule_nn::optim::RAdamOptions;
/// assert_eq!(RAdamOptions::default().lr, 1e-3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RAdamOptions {
    /// Learning rate.
    pub lr: f64,
    /// Moment decay rates (β₁, β₂).
    pub betas: (f64, f64),
    /// The denominator's ε.
    pub eps: f64,
    /// Weight decay: L2, or decoupled when `decoupled`.
    pub weight_decay: f64,
    /// Decoupled weight decay (as AdamW).
    pub decoupled: bool,
}

impl Default for RAdamOptions {
    fn default() -> Self {
        RAdamOptions {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

/// [`RAdam`]'s update rule.
#[derive(Debug)]
pub struct RAdamRule;

impl UpdateRule for RAdamRule {
    const NAME: &'static str = "RAdam";
    const SLOTS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    type Options = RAdamOptions;

    fn check(o: &RAdamOptions) -> crate::Result<()> {
        check_range("RAdam", "learning rate", o.lr, 0.0, None)?;
        check_betas("RAdam", o.betas)?;
        check_range("RAdam", "epsilon", o.eps, 0.0, None)?;
        check_range("RAdam", "weight_decay", o.weight_decay, 0.0, None)
    }

    fn lr(o: &RAdamOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut RAdamOptions, lr: f64) {
        o.lr = lr;
    }

    fn momentum(o: &RAdamOptions) -> Option<f64> {
        Some(o.betas.0)
    }

    fn set_momentum(o: &mut RAdamOptions, momentum: f64) {
        o.betas.0 = momentum;
    }

    fn hyper(o: &RAdamOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("beta1", o.betas.0),
            ("beta2", o.betas.1),
            ("eps", o.eps),
            ("weight_decay", o.weight_decay),
            ("decoupled_weight_decay", f64::from(u8::from(o.decoupled))),
        ]
    }

    fn set_hyper(o: &mut RAdamOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "beta1" => o.betas.0 = v,
            "beta2" => o.betas.1 = v,
            "eps" => o.eps = v,
            "weight_decay" => o.weight_decay = v,
            "decoupled_weight_decay" => o.decoupled = flag(v),
            _ => return false,
        }
        true
    }

    fn update<T: Element>(
        o: &RAdamOptions,
        st: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    ) {
        let (b1, b2) = o.betas;
        let t = st.step as f64;
        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
        // the variance of the adaptive rate is tractable only once ρₜ > 5
        let rect = (rho_t > 5.0).then(|| {
            ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt()
        });
        let c = T::from_f64;
        let (b1t, b2t, eps, wd, lr) = (c(b1), c(b2), c(o.eps), c(o.weight_decay), c(o.lr));
        let (bc1, bc2_sqrt) = (c(bc1), c(bc2.sqrt()));
        let decay = c(1.0 - o.lr * o.weight_decay);
        let has_wd = o.weight_decay != 0.0;
        for slot in st.slots.iter_mut().filter(|s| s.is_empty()) {
            slot.resize(g.len(), T::ZERO);
        }
        let [m, v] = &mut st.slots[..] else {
            unreachable!("RAdam has two slots")
        };
        for (i, ((n, &w), &g)) in new.iter_mut().zip(w).zip(g).enumerate() {
            let (w, g) = decayed(w, g, has_wd, o.decoupled, decay, wd);
            m[i] = m[i] + (T::ONE - b1t) * (g - m[i]);
            v[i] = b2t * v[i] + (T::ONE - b2t) * g * g;
            let corrected = m[i] / bc1;
            *n = match rect {
                Some(r) => w - corrected * lr * (bc2_sqrt / (v[i].sqrt() + eps)) * c(r),
                None => w - corrected * lr,
            };
        }
    }
}

impl<T: Element> RAdam<T> {
    /// RAdam with PyTorch's defaults and learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite.
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            RAdamOptions {
                lr,
                ..RAdamOptions::default()
            },
        )
    }
}
