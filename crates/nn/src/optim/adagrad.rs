use chainrule_autograd::{Element, Param};

use super::{check_range, ParamState, RuleOptimizer, UpdateRule};

/// Adagrad with PyTorch's update rule:
///
/// ```text
/// g = g + wd·p
/// lrₜ = lr / (1 + (t − 1)·lr_decay)
/// s = s + g²                       (s starts at initial_accumulator_value)
/// p = p − lrₜ · g / (√s + ε)
/// ```
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{Adagrad, Optimizer};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0], &[1])?);
/// let mut opt = Adagrad::new(vec![w.clone()], 0.1)?;
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// assert!((w.value().data()[0] - 0.9).abs() < 1e-9); // g/√(g²) = 1
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Adagrad<T = f32> = RuleOptimizer<T, AdagradRule>;

/// [`Adagrad`]'s hyperparameters; the default is PyTorch's (lr 1e-2, eps 1e-10).
///
/// ```
/// use chainrule_nn::optim::AdagradOptions;
/// assert_eq!(AdagradOptions::default().eps, 1e-10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradOptions {
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The sum of squares' starting value.
    pub initial_accumulator_value: f64,
    /// The denominator's ε.
    pub eps: f64,
}

impl Default for AdagradOptions {
    fn default() -> Self {
        AdagradOptions {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// [`Adagrad`]'s update rule.
#[derive(Debug)]
pub struct AdagradRule;

impl UpdateRule for AdagradRule {
    const NAME: &'static str = "Adagrad";
    const SLOTS: &'static [&'static str] = &["sum"];
    type Options = AdagradOptions;

    fn check(o: &AdagradOptions) -> crate::Result<()> {
        check_range("Adagrad", "learning rate", o.lr, 0.0, None)?;
        check_range("Adagrad", "lr_decay", o.lr_decay, 0.0, None)?;
        check_range("Adagrad", "weight_decay", o.weight_decay, 0.0, None)?;
        check_range(
            "Adagrad",
            "initial_accumulator_value",
            o.initial_accumulator_value,
            0.0,
            None,
        )?;
        check_range("Adagrad", "epsilon", o.eps, 0.0, None)
    }

    fn lr(o: &AdagradOptions) -> f64 {
        o.lr
    }

    fn set_lr(o: &mut AdagradOptions, lr: f64) {
        o.lr = lr;
    }

    fn hyper(o: &AdagradOptions) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", o.lr),
            ("lr_decay", o.lr_decay),
            ("weight_decay", o.weight_decay),
            ("initial_accumulator_value", o.initial_accumulator_value),
            ("eps", o.eps),
        ]
    }

    fn set_hyper(o: &mut AdagradOptions, name: &str, v: f64) -> bool {
        match name {
            "lr" => o.lr = v,
            "lr_decay" => o.lr_decay = v,
            "weight_decay" => o.weight_decay = v,
            "initial_accumulator_value" => o.initial_accumulator_value = v,
            "eps" => o.eps = v,
            _ => return false,
        }
        true
    }

    fn update<T: Element>(
        o: &AdagradOptions,
        st: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    ) {
        let c = T::from_f64;
        let clr = c(o.lr / (1.0 + (st.step - 1) as f64 * o.lr_decay));
        let (wd, eps) = (c(o.weight_decay), c(o.eps));
        let has_wd = o.weight_decay != 0.0;
        let sum = &mut st.slots[0];
        if sum.is_empty() {
            sum.resize(g.len(), c(o.initial_accumulator_value));
        }
        for (((n, &w), &g), s) in new.iter_mut().zip(w).zip(g).zip(sum.iter_mut()) {
            let g = if has_wd { g + wd * w } else { g };
            *s += g * g;
            *n = w - clr * g / (s.sqrt() + eps);
        }
    }
}

impl<T: Element> Adagrad<T> {
    /// Adagrad with PyTorch's defaults and learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite.
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        Self::with_options(
            params,
            AdagradOptions {
                lr,
                ..AdagradOptions::default()
            },
        )
    }
}
