//! Elementwise losses composed of recorded ops (so every order of derivative comes from
//! the ops they are built of): L1, smooth L1, Huber, binary cross-entropy on
//! probabilities, KL divergence. Targets of `binary_cross_entropy` and `kl_div` are
//! data and get no gradient, as in the PyTorch fixtures.

use chainrule_tensor::{Element, IntTensor, Tensor};

use crate::error::InOp;
use crate::ops::loss::reduce_var;
use crate::{Reduction, Result, Site, Var};

impl<T: Element> Var<T> {
    /// `|x − target|`, reduced (PyTorch's `l1_loss`); the gradient at a zero difference
    /// is 0.
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, -2.0], &[2])?);
    /// let t = tape.constant(Tensor::zeros(&[2])?);
    /// assert_eq!(x.l1_loss(&t, Reduction::Mean)?.value().item(), Some(1.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that do not broadcast; different tapes.
    #[track_caller]
    pub fn l1_loss(&self, target: &Var<T>, reduction: Reduction) -> Result<Var<T>> {
        reduce_var(self.sub(target)?.abs(), reduction)
    }

    /// `0.5·d²/β` where `|d| < β`, `|d| − 0.5·β` elsewhere, `d = x − target` (PyTorch's
    /// `smooth_l1_loss`; `β = 0` is the L1 loss).
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![0.5, 3.0], &[2])?);
    /// let t = tape.constant(Tensor::zeros(&[2])?);
    /// assert_eq!(x.smooth_l1_loss(&t, Reduction::None, 1.0)?.value().data(), &[0.125, 2.5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::l1_loss`]; a negative or NaN `beta`.
    #[track_caller]
    pub fn smooth_l1_loss(
        &self,
        target: &Var<T>,
        reduction: Reduction,
        beta: f64,
    ) -> Result<Var<T>> {
        check_width("smooth_l1_loss", "beta", beta, Site::caller())?;
        if beta == 0.0 {
            return self.l1_loss(target, reduction);
        }
        self.piecewise_quadratic(target, reduction, beta, 0.5 / beta, 1.0)
    }

    /// `0.5·d²` where `|d| < δ`, `δ·(|d| − 0.5·δ)` elsewhere (PyTorch's `huber_loss`):
    /// δ times the smooth L1 loss with `β = δ`.
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![0.5, 3.0], &[2])?);
    /// let t = tape.constant(Tensor::zeros(&[2])?);
    /// assert_eq!(x.huber_loss(&t, Reduction::None, 2.0)?.value().data(), &[0.125, 4.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::l1_loss`]; a `delta` that is not positive.
    #[track_caller]
    pub fn huber_loss(&self, target: &Var<T>, reduction: Reduction, delta: f64) -> Result<Var<T>> {
        let site = Site::caller();
        check_width("huber_loss", "delta", delta, site)?;
        if delta == 0.0 {
            return Err(crate::Error::Op {
                op: "huber_loss",
                site,
                source: chainrule_tensor::TensorError::Attr {
                    attr: "delta",
                    reason: "must be positive".into(),
                },
            });
        }
        self.piecewise_quadratic(target, reduction, delta, 0.5, delta)
    }

    /// `a·d²` where `|d| < width`, `slope·(|d| − 0.5·width)` elsewhere.
    #[track_caller]
    fn piecewise_quadratic(
        &self,
        target: &Var<T>,
        reduction: Reduction,
        width: f64,
        a: f64,
        slope: f64,
    ) -> Result<Var<T>> {
        let d = self.sub(target)?;
        let inside = IntTensor::from_vec(
            d.value()
                .data()
                .iter()
                .map(|v| i64::from(v.abs().to_f64() < width))
                .collect(),
            d.dims(),
        )
        .in_op("smooth_l1_loss", Site::caller())?;
        let quadratic = d.square().mul_scalar(a);
        let linear = d.abs().add_scalar(-0.5 * width).mul_scalar(slope);
        reduce_var(Var::where_cond(&inside, &quadratic, &linear)?, reduction)
    }

    /// Binary cross-entropy of probabilities `self` in `[0, 1]` against `target`:
    /// `−(t·ln p + (1 − t)·ln(1 − p))`, each log clamped at −100 as PyTorch does so a
    /// probability of exactly 0 or 1 gives a finite loss.
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let p = tape.leaf(Tensor::from_vec(vec![0.5, 0.0], &[2])?);
    /// let t = tape.constant(Tensor::from_vec(vec![1.0, 1.0], &[2])?);
    /// assert_eq!(p.binary_cross_entropy(&t, Reduction::None)?.value().data(), &[0.5f64.ln().abs(), 100.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that differ; different tapes.
    #[track_caller]
    pub fn binary_cross_entropy(&self, target: &Var<T>, reduction: Reduction) -> Result<Var<T>> {
        let site = Site::caller();
        same_shape("binary_cross_entropy", site, self, target)?;
        let t = target.detach();
        let log_p = self.log().clamp_min(-100.0);
        let log_q = self.neg().add_scalar(1.0).log().clamp_min(-100.0);
        let one_minus_t = t.neg().add_scalar(1.0);
        let losses = t.mul(&log_p)?.add(&one_minus_t.mul(&log_q)?)?.neg();
        reduce_var(losses, reduction)
    }

    /// KL divergence `Σ t·(ln t − x)` of log-probabilities `self` from the target
    /// distribution (PyTorch's `kl_div(input, target)`; `t·ln t` is 0 where `t = 0`), or
    /// with `log_target` a target given as log-probabilities: `Σ eᵗ·(t − x)`. PyTorch's
    /// documentation asks for [`Reduction::BatchMean`].
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![0.5f64.ln(), 0.5f64.ln()], &[1, 2])?);
    /// let t = tape.constant(Tensor::from_vec(vec![0.5, 0.5], &[1, 2])?);
    /// assert!(x.kl_div(&t, Reduction::BatchMean, false)?.value().item().unwrap().abs() < 1e-15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that differ; different tapes.
    #[track_caller]
    pub fn kl_div(
        &self,
        target: &Var<T>,
        reduction: Reduction,
        log_target: bool,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        same_shape("kl_div", site, self, target)?;
        let t = target.value();
        let (entropy, weight): (Tensor<T>, Tensor<T>) = if log_target {
            (t.map(|v| v.exp() * v), t.map(|v| v.exp()))
        } else {
            (
                t.map(|v| if v == T::ZERO { T::ZERO } else { v * v.ln() }),
                t.clone(),
            )
        };
        let tape = self.tape();
        let losses = tape
            .constant(entropy)
            .sub(&tape.constant(weight).mul(self)?)?;
        reduce_var(losses, reduction)
    }
}

/// A loss's width attribute must be a non-negative number.
fn check_width(op: &'static str, attr: &'static str, v: f64, site: Site) -> Result<()> {
    if v >= 0.0 {
        return Ok(());
    }
    Err(crate::Error::Op {
        op,
        site,
        source: chainrule_tensor::TensorError::Attr {
            attr,
            reason: format!("{v} must be a non-negative number"),
        },
    })
}

/// Losses whose target is data of the input's own shape.
fn same_shape<T: Element>(op: &'static str, site: Site, x: &Var<T>, t: &Var<T>) -> Result<()> {
    x.tape().check_inputs(op, site, &[x, t])?;
    if x.shape() == t.shape() {
        return Ok(());
    }
    Err(crate::Error::Op {
        op,
        site,
        source: chainrule_tensor::TensorError::Shape(format!(
            "input {} and target {} differ",
            x.shape(),
            t.shape()
        )),
    })
}
