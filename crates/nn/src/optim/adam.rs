use std::collections::HashMap;

use chainrule_autograd::{Element, Gradients, Param, ParamId};

use super::{check_range, check_shape, Optimizer, Spares};

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
pub struct Adam<T: Element = f32> {
    params: Vec<Param<T>>,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    amsgrad: bool,
    state: HashMap<ParamId, State<T>>,
    spares: Spares<T>,
}

struct State<T> {
    step: i32,
    m: Vec<T>,
    v: Vec<T>,
    v_max: Vec<T>,
}

impl<T: Element> Adam<T> {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    ///
    /// # Errors
    /// `lr` negative or not finite (PyTorch's rule).
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        check_range("Adam", "learning rate", lr, 0.0, None)?;
        Ok(Adam {
            params: params.into_iter().collect(),
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            state: HashMap::new(),
            spares: Spares::new(),
        })
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
        let mut adam = Self::new(params, lr)?.weight_decay(weight_decay)?;
        adam.decoupled = true;
        Ok(adam)
    }

    /// The moment decay rates (β₁, β₂).
    ///
    /// # Errors
    /// A beta outside `[0, 1)` (PyTorch's rule; β = 1 never forgets and divides by 0).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> crate::Result<Self> {
        check_range("Adam", "beta1", beta1, 0.0, Some(1.0))?;
        check_range("Adam", "beta2", beta2, 0.0, Some(1.0))?;
        self.betas = (beta1, beta2);
        Ok(self)
    }

    /// The denominator's ε.
    ///
    /// # Errors
    /// `eps` negative or not finite.
    pub fn eps(mut self, eps: f64) -> crate::Result<Self> {
        check_range("Adam", "epsilon", eps, 0.0, None)?;
        self.eps = eps;
        Ok(self)
    }

    /// Weight decay: L2 for Adam, decoupled for AdamW.
    ///
    /// # Errors
    /// `weight_decay` negative or not finite.
    pub fn weight_decay(mut self, weight_decay: f64) -> crate::Result<Self> {
        check_range("Adam", "weight_decay", weight_decay, 0.0, None)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }

    /// Use the running maximum of v (AMSGrad).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn step(&mut self, grads: &Gradients<T>) -> crate::Result<()> {
        let (b1, b2) = self.betas;
        for (index, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let n = g.numel();
            let st = self.state.entry(p.id()).or_insert_with(|| State {
                step: 0,
                m: vec![T::ZERO; n],
                v: vec![T::ZERO; n],
                v_max: vec![T::ZERO; n],
            });
            st.step += 1;
            let c = T::from_f64;
            let bc1 = 1.0 - b1.powi(st.step);
            let bc2_sqrt = c((1.0 - b2.powi(st.step)).sqrt());
            let step_size = c(self.lr / bc1);
            let (b1t, b2t, eps, wd) = (c(b1), c(b2), c(self.eps), c(self.weight_decay));
            let decay = c(1.0 - self.lr * self.weight_decay);
            let w = p.value();
            check_shape("Adam", &w, g)?;
            let (decoupled, amsgrad, has_wd) =
                (self.decoupled, self.amsgrad, self.weight_decay != 0.0);
            self.spares.swap_update(index, p, w, |old, new| {
                for (i, ((n, &w), &g)) in new.iter_mut().zip(old).zip(g.data()).enumerate() {
                    let (mut w, mut g) = (w, g);
                    if has_wd {
                        if decoupled {
                            w *= decay;
                        } else {
                            g += wd * w;
                        }
                    }
                    st.m[i] = b1t * st.m[i] + (T::ONE - b1t) * g;
                    st.v[i] = b2t * st.v[i] + (T::ONE - b2t) * g * g;
                    let v = if amsgrad {
                        st.v_max[i] = st.v_max[i].max(st.v[i]);
                        st.v_max[i]
                    } else {
                        st.v[i]
                    };
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *n = w - step_size * st.m[i] / denom;
                }
            });
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}
