use std::collections::HashMap;

use chainrule_autograd::{Element, Gradients, Param, ParamId, Tensor};

use super::{check_shape, Optimizer};

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
/// let opt = Adam::adamw(vec![w], 1e-3, 0.01);
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
}

struct State<T> {
    step: i32,
    m: Vec<T>,
    v: Vec<T>,
    v_max: Vec<T>,
}

impl<T: Element> Adam<T> {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> Self {
        Adam {
            params: params.into_iter().collect(),
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            state: HashMap::new(),
        }
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay is 0.01).
    pub fn adamw(params: impl IntoIterator<Item = Param<T>>, lr: f64, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            decoupled: true,
            ..Self::new(params, lr)
        }
    }

    /// The moment decay rates (β₁, β₂).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// The denominator's ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay: L2 for Adam, decoupled for AdamW.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
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
        for p in &self.params {
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
            p.update(|w: &mut Tensor<T>| -> crate::Result<()> {
                check_shape("Adam", w, g)?;
                for (i, (w, &g)) in w.data_mut().iter_mut().zip(g.data()).enumerate() {
                    let mut g = g;
                    if self.weight_decay != 0.0 {
                        if self.decoupled {
                            *w *= decay;
                        } else {
                            g += wd * *w;
                        }
                    }
                    st.m[i] = b1t * st.m[i] + (T::ONE - b1t) * g;
                    st.v[i] = b2t * st.v[i] + (T::ONE - b2t) * g * g;
                    let v = if self.amsgrad {
                        st.v_max[i] = st.v_max[i].max(st.v[i]);
                        st.v_max[i]
                    } else {
                        st.v[i]
                    };
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *w -= step_size * st.m[i] / denom;
                }
                Ok(())
            })?;
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
