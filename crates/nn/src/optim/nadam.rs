use chainrule_autograd::{Element, Param};

use super::{check_betas, check_range, decayed, flag, ParamState, RuleOptimizer, UpdateRule};

/// NAdam (Adam with Nesterov momentum and momentum decay) with PyTorch's update rule:
///
/// ```text
/// μₜ = β₁·(1 − ½·0.96^(t·ψ)),  Πₜ = μ₁⋯μₜ            (ψ: momentum_decay)
/// m = β₁·m + (1 − β₁)·g,  v = β₂·v + (1 − β₂)·g²,  d = √(v/(1 − β₂ᵗ)) + ε
/// p = p − lr·(1 − μₜ)/(1 − Πₜ) · g/d − lr·μₜ₊₁/(1 − Πₜμₜ₊₁) · m/d
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{NAdam, Optimizer};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0], &[1])?);
/// let mut opt = NAdam::new(vec![w.clone()], 0.01)?;
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// assert!(w.value().data()[0] < 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type NAdam<T = f32> = RuleOptimizer<T, NAdamRule>;

/// [`NAdam`]'s hyperparameters; the default is PyTorch's (lr 2e-3, betas (0.9,
/// 0.999), eps 1e-8, momentum_decay 4e-3).
///
/// ```
/// use chainrule_nn::optim::NAdamOptions;
/// assert_eq!(NAdamOptions::default().lr, 2e-3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdamOptions {
    /// Learning rate.
    pub lr: f64,
    /// Moment decay rates (β₁, β₂).
    pub betas: (f64, f64),
    /// The denominator's ε.
    pub eps: f64,
    /// Weight decay: L2, or decoupled when `decoupled`.
    pub weight_decay: f64,
    /// Momentum decay ψ.
    pub momentum_decay: f64,
    /// Decoupled weight decay (as AdamW).
    pub decoupled: bool,
}

impl Default for NAdamOptions {
    fn default() -> Self {
        NAdamOptions {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled: false,
        }
    }
}

/// [`NAdam`]'s update rule.
#[derive(Debug)]
pub struct NAdamRule;

impl UpdateRule for NAdamRule {
    const NAME: &'static str = "NAdam";
    const SLOTS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] = &[("mu_product", 1.0)];
    type Options = NAdamOptions;

    fn check(o: &NAdamOptions) -> crate::Result<()> {
        check_range("NAdam", "learning rate", o.lr, 0.0, None)?;
        check_betas("NAdam", o.betas)?;
        check_range("NAdam", "epsilon", o.eps, 0.0, None)?;
        check_range("NAdam", "weight_decay", o.weight_decay, 0.0, None)?;
        check_range("NAdam", "momentum_decay", o.momentum_decay, 0.0, None)
    }

    fn lr(o: &NAdamOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut NAdamOptions, lr: f64) {
        o.lr = lr;
    }

    fn momentum(o: &NAdamOptions) -> Option<f64> {
        Some(o.betas.0)
    }

    fn set_momentum(o: &mut NAdamOptions, momentum: f64) {
        o.betas.0 = momentum;
    }

    fn hyper(o: &NAdamOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("beta1", o.betas.0),
            ("beta2", o.betas.1),
            ("eps", o.eps),
            ("weight_decay", o.weight_decay),
            ("momentum_decay", o.momentum_decay),
            ("decoupled_weight_decay", f64::from(u8::from(o.decoupled))),
        ]
    }

    fn set_hyper(o: &mut NAdamOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "beta1" => o.betas.0 = v,
            "beta2" => o.betas.1 = v,
            "eps" => o.eps = v,
            "weight_decay" => o.weight_decay = v,
            "momentum_decay" => o.momentum_decay = v,
            "decoupled_weight_decay" => o.decoupled = flag(v),
            _ => return false,
        }
        true
    }

    fn update<T: Element>(
        o: &NAdamOptions,
        st: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    ) {
        let (b1, b2) = o.betas;
        let t = st.step as f64;
        let bc2 = 1.0 - b2.powf(t);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * o.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * o.momentum_decay));
        st.scalars[0] *= mu;
        let mu_product = st.scalars[0];
        let c = T::from_f64;
        let grad_coef = c(-o.lr * (1.0 - mu) / (1.0 - mu_product));
        let avg_coef = c(-o.lr * mu_next / (1.0 - mu_product * mu_next));
        let (b1t, b2t, eps, wd, bc2) = (c(b1), c(b2), c(o.eps), c(o.weight_decay), c(bc2));
        let decay = c(1.0 - o.lr * o.weight_decay);
        let has_wd = o.weight_decay != 0.0;
        for slot in st.slots.iter_mut().filter(|s| s.is_empty()) {
            slot.resize(g.len(), T::ZERO);
        }
        let [m, v] = &mut st.slots[..] else {
            unreachable!("NAdam has two slots")
        };
        for (i, ((n, &w), &g)) in new.iter_mut().zip(w).zip(g).enumerate() {
            let (w, g) = decayed(w, g, has_wd, o.decoupled, decay, wd);
            // PyTorch's lerp: m + (1 − β₁)·(g − m)
            m[i] = m[i] + (T::ONE - b1t) * (g - m[i]);
            v[i] = b2t * v[i] + (T::ONE - b2t) * g * g;
            let denom = (v[i] / bc2).sqrt() + eps;
            let w = w + grad_coef * (g / denom);
            *n = w + avg_coef * (m[i] / denom);
        }
    }
}

impl<T: Element> NAdam<T> {
    /// NAdam with PyTorch's defaults and learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite.
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            NAdamOptions {
                lr,
                ..NAdamOptions::default()
            },
        )
    }
}
