use chainrule_autograd::{Element, Param};

use super::{check_betas, check_range, decayed, flag, ParamState, RuleOptimizer, UpdateRule};

/// Adam, AMSGrad and AdamW with PyTorch's update rule:
///
/// ```text
/// g = g + wd·p              (Adam: L2)      p = p·(1 − lr·wd)   (AdamW: decoupled)
/// m = β₁·m + (1 − β₁)·g
/// v = β₂·v + (1 − β₂)·g²     v̂ = max(v̂, v) with AMSGrad
/// p = p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Adam, Optimizer};
/// let w = Param::new(Tensor::<f32>::zeros(&[3])?);
/// let opt = Adam::adamw(vec![w.clone()], 1e-3, 0.01)?;
/// assert!(Adam::new(vec![w], 1e-3)?.betas(1.0, 0.999).is_err()); // as PyTorch
/// assert_eq!(opt.lr(), 1e-3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Adam<T = f32> = RuleOptimizer<T, AdamRule>;

/// [`Adam`]'s hyperparameters; the default is PyTorch's Adam (lr 1e-3, betas (0.9,
/// 0.999), eps 1e-8, no weight decay).
///
/// ```
/// use chainrule_nn::optim::AdamOptions;
/// let adamw = AdamOptions { weight_decay: 0.01, decoupled: true, ..AdamOptions::default() };
/// assert_eq!(adamw.betas, (0.9, 0.999));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamOptions {
    /// Learning rate.
    pub lr: f64,
    /// Moment decay rates (β₁, β₂).
    pub betas: (f64, f64),
    /// The denominator's ε.
    pub eps: f64,
    /// Weight decay: L2 for Adam, decoupled when `decoupled`.
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// Use the running maximum of v (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamOptions {
    fn default() -> Self {
        AdamOptions {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
        }
    }
}

/// [`Adam`]'s update rule.
#[derive(Debug)]
pub struct AdamRule;

impl UpdateRule for AdamRule {
    const NAME: &'static str = "Adam";
    const SLOTS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    type Options = AdamOptions;

    fn check(o: &AdamOptions) -> crate::Result<()> {
        check_range("Adam", "learning rate", o.lr, 0.0, None)?;
        check_betas("Adam", o.betas)?;
        check_range("Adam", "epsilon", o.eps, 0.0, None)?;
        check_range("Adam", "weight_decay", o.weight_decay, 0.0, None)
    }

    fn lr(o: &AdamOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut AdamOptions, lr: f64) {
        o.lr = lr;
    }

    fn momentum(o: &AdamOptions) -> Option<f64> {
        Some(o.betas.0)
    }

    fn set_momentum(o: &mut AdamOptions, momentum: f64) {
        o.betas.0 = momentum;
    }

    fn hyper(o: &AdamOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("beta1", o.betas.0),
            ("beta2", o.betas.1),
            ("eps", o.eps),
            ("weight_decay", o.weight_decay),
            ("decoupled_weight_decay", f64::from(u8::from(o.decoupled))),
            ("amsgrad", f64::from(u8::from(o.amsgrad))),
        ]
    }

    fn set_hyper(o: &mut AdamOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "beta1" => o.betas.0 = v,
            "beta2" => o.betas.1 = v,
            "eps" => o.eps = v,
            "weight_decay" => o.weight_decay = v,
            "decoupled_weight_decay" => o.decoupled = flag(v),
            "amsgrad" => o.amsgrad = flag(v),
            _ => return false,
        }
        true
    }

    fn update<T: Element>(
        o: &AdamOptions,
        st: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    ) {
        let n = g.len();
        let (b1, b2) = o.betas;
        // Python's `beta ** step`: pow on the float step
        let t = st.step as f64;
        let c = T::from_f64;
        let bc2_sqrt = c((1.0 - b2.powf(t)).sqrt());
        let step_size = c(o.lr / (1.0 - b1.powf(t)));
        let (b1t, b2t, eps, wd) = (c(b1), c(b2), c(o.eps), c(o.weight_decay));
        let decay = c(1.0 - o.lr * o.weight_decay);
        let has_wd = o.weight_decay != 0.0;
        for (k, slot) in st.slots.iter_mut().enumerate() {
            if slot.is_empty() && (k < 2 || o.amsgrad) {
                slot.resize(n, T::ZERO);
            }
        }
        let [m, v, v_max] = &mut st.slots[..] else {
            unreachable!("Adam has three slots")
        };
        for (i, ((n, &w), &g)) in new.iter_mut().zip(w).zip(g).enumerate() {
            let (w, g) = decayed(w, g, has_wd, o.decoupled, decay, wd);
            m[i] = b1t * m[i] + (T::ONE - b1t) * g;
            v[i] = b2t * v[i] + (T::ONE - b2t) * g * g;
            let v = if o.amsgrad {
                v_max[i] = v_max[i].max(v[i]);
                v_max[i]
            } else {
                v[i]
            };
            let denom = v.sqrt() / bc2_sqrt + eps;
            *n = w - step_size * m[i] / denom;
        }
    }
}

impl<T: Element> Adam<T> {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    ///
    /// # Errors
    /// `lr` negative or not finite (PyTorch's rule).
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            AdamOptions {
                lr,
                ..AdamOptions::default()
            },
        )
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay is 0.01).
    ///
    /// # Errors
    /// `lr` or `weight_decay` negative or not finite.
    pub fn adamw(
        params: impl IntoIterator<Item = Param<T>>,
        lr: f64,
        weight_decay: f64,
    ) -> crate::Result<Self> {
        let options = AdamOptions {
            lr,
            weight_decay,
            decoupled: true,
            ..AdamOptions::default()
        };
        Self::with_options(params, options)
    }

    /// The moment decay rates (β₁, β₂), in every group.
    ///
    /// # Errors
    /// A beta outside `[0, 1)` (PyTorch's rule; β = 1 never forgets and divides by 0).
    pub fn betas(self, beta1: f64, beta2: f64) -> crate::Result<Self> {
        self.configure(|o| o.betas = (beta1, beta2))
    }

    /// The denominator's ε, in every group.
    ///
    /// # Errors
    /// `eps` negative or not finite.
    pub fn eps(self, eps: f64) -> crate::Result<Self> {
        self.configure(|o| o.eps = eps)
    }

    /// Weight decay (L2 for Adam, decoupled for AdamW), in every group.
    ///
    /// # Errors
    /// `weight_decay` negative or not finite.
    pub fn weight_decay(self, weight_decay: f64) -> crate::Result<Self> {
        self.configure(|o| o.weight_decay = weight_decay)
    }

    /// Use the running maximum of v (AMSGrad), in every group.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        self.configure(|o| o.amsgrad = amsgrad)
            .expect("amsgrad changes no checked hyperparameter")
    }
}
