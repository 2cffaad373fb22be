use std::collections::HashMap;

use chainrule_autograd::{Element, Gradients, Param, ParamId, Tensor};

use super::{check_range, check_shape, Optimizer, Spares};

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
pub struct Sgd<T: Element = f32> {
    params: Vec<Param<T>>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    buffers: HashMap<ParamId, Tensor<T>>,
    spares: Spares<T>,
}

impl<T: Element> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Errors
    /// `lr` negative or not finite (PyTorch's rule).
    pub fn new(params: impl IntoIterator<Item = Param<T>>, lr: f64) -> crate::Result<Self> {
        check_range("Sgd", "learning rate", lr, 0.0, None)?;
        Ok(Sgd {
            params: params.into_iter().collect(),
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            buffers: HashMap::new(),
            spares: Spares::new(),
        })
    }

    /// Momentum factor μ.
    ///
    /// # Errors
    /// `momentum` negative or not finite, or 0 with Nesterov on.
    pub fn momentum(mut self, momentum: f64) -> crate::Result<Self> {
        check_range("Sgd", "momentum", momentum, 0.0, None)?;
        self.momentum = momentum;
        self.check_nesterov()?;
        Ok(self)
    }

    /// Dampening of the momentum's gradient term.
    ///
    /// # Errors
    /// `dampening` not finite, or non-zero with Nesterov on.
    pub fn dampening(mut self, dampening: f64) -> crate::Result<Self> {
        check_range("Sgd", "dampening", dampening, f64::MIN, None)?;
        self.dampening = dampening;
        self.check_nesterov()?;
        Ok(self)
    }

    /// Nesterov momentum; set the momentum first.
    ///
    /// # Errors
    /// Nesterov without a positive momentum and zero dampening (PyTorch's rule).
    pub fn nesterov(mut self, nesterov: bool) -> crate::Result<Self> {
        self.nesterov = nesterov;
        self.check_nesterov()?;
        Ok(self)
    }

    /// L2 penalty added to the gradient.
    ///
    /// # Errors
    /// `weight_decay` negative or not finite.
    pub fn weight_decay(mut self, weight_decay: f64) -> crate::Result<Self> {
        check_range("Sgd", "weight_decay", weight_decay, 0.0, None)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }

    fn check_nesterov(&self) -> crate::Result<()> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(crate::Error::Invalid {
                what: "Sgd",
                reason: format!(
                    "Nesterov momentum requires a momentum and zero dampening (momentum {}, dampening {})",
                    self.momentum, self.dampening
                ),
            });
        }
        Ok(())
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn step(&mut self, grads: &Gradients<T>) -> crate::Result<()> {
        let c = T::from_f64;
        let (lr, mu, damp, wd) = (
            c(self.lr),
            c(self.momentum),
            c(1.0 - self.dampening),
            c(self.weight_decay),
        );
        for (index, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let w = p.value();
            check_shape("Sgd", &w, g)?;
            let mut d = g.clone();
            if self.weight_decay != 0.0 {
                d.data_mut()
                    .iter_mut()
                    .zip(w.data())
                    .for_each(|(d, &w)| *d += wd * w);
            }
            if self.momentum != 0.0 {
                let buf = match self.buffers.get_mut(&p.id()) {
                    Some(b) => {
                        b.data_mut()
                            .iter_mut()
                            .zip(d.data())
                            .for_each(|(b, &d)| *b = mu * *b + damp * d);
                        b
                    }
                    None => self.buffers.entry(p.id()).or_insert_with(|| d.clone()),
                };
                if self.nesterov {
                    d.data_mut()
                        .iter_mut()
                        .zip(buf.data())
                        .for_each(|(d, &b)| *d += mu * b);
                } else {
                    d = buf.clone();
                }
            }
            self.spares.swap_update(index, p, w, |old, new| {
                for ((n, &w), &d) in new.iter_mut().zip(old).zip(d.data()) {
                    *n = w - lr * d;
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
