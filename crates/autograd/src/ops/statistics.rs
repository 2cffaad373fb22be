//! Statistics over dims: variance, standard deviation and vector norms. Variance is
//! composed from recorded ops (mean, subtract, square, sum); norms have their own rule
//! so a zero norm gets a zero gradient (PyTorch's), not 0/0.

use chainrule_tensor::{Element, Tensor};

use crate::error::InOp;
use crate::ops::one;
use crate::ops::reduce::signed;
use crate::{Operand, Result, Saved, Site, Unary, Var};

impl<T: Element> Var<T> {
    /// Variance over `dims` (`None`: every dim) with Bessel's `correction` (PyTorch's
    /// `var(dim, correction, keepdim)`: divides by `N − correction`; NaN or ∞ when that
    /// is not positive, as in PyTorch).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[2, 2])?);
    /// assert!((x.var(None, 1, false)?.value().item().unwrap() - 14.0 / 3.0).abs() < 1e-15);
    /// assert_eq!(x.var(Some(&[1]), 0, false)?.value().data(), &[0.25, 2.25]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or repeated.
    #[track_caller]
    pub fn var(&self, dims: Option<&[isize]>, correction: usize, keepdim: bool) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.value().resolve_dims(dims).in_op("var", site)?;
        let count: usize = d.iter().map(|&k| self.dims()[k]).product();
        let d = signed(&d);
        let centered = self.sub(&self.mean_dims(&d, true)?)?;
        let squares = centered.square().sum_dims(&d, keepdim)?;
        let divisor = (count as f64 - correction as f64).max(0.0);
        Ok(squares.mul_scalar(1.0 / divisor))
    }

    /// Standard deviation: the square root of [`Var::var`].
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::from_vec(vec![1.0, 3.0], &[2])?);
    /// assert_eq!(x.std(None, 0, false)?.value().data(), &[1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::var`].
    #[track_caller]
    pub fn std(&self, dims: Option<&[isize]>, correction: usize, keepdim: bool) -> Result<Var<T>> {
        Ok(self.var(dims, correction, keepdim)?.sqrt())
    }

    /// The vector `p`-norm over `dims` (`None`: every dim), PyTorch's
    /// `linalg.vector_norm`: `(Σ|x|ᵖ)^(1/p)`; `p = ∞` is `max |x|` (ties share the
    /// gradient), `p = 0` counts the non-zeros (no gradient). A zero norm has a zero
    /// gradient.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![3.0, -4.0], &[2])?);
    /// assert_eq!(x.norm(2.0, None, false)?.value().data(), &[5.0]);
    /// assert_eq!(x.norm(1.0, None, false)?.value().data(), &[7.0]);
    /// assert_eq!(x.norm(f64::INFINITY, None, false)?.value().data(), &[4.0]);
    /// let g = x.norm(2.0, None, false)?.backward()?;
    /// assert_eq!(g.wrt(&x).unwrap().data(), &[0.6, -0.8]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or repeated; NaN or `−∞` for `p`.
    #[track_caller]
    pub fn norm(&self, p: f64, dims: Option<&[isize]>, keepdim: bool) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "norm";
        if p.is_nan() || p == f64::NEG_INFINITY {
            return Err(crate::Error::Op {
                op,
                site,
                source: chainrule_tensor::TensorError::Attr {
                    attr: "ord",
                    reason: format!("{p} is not a norm order chainrule supports (p ≥ 0 or ∞, or negative finite)"),
                },
            });
        }
        let d = self.value().resolve_dims(dims).in_op(op, site)?;
        if p == 1.0 {
            return self.abs().sum_dims(&signed(&d), keepdim);
        }
        let x = self.value();
        let kept = chainrule_tensor::kernels::reduce::reduced_shape(x.shape(), &d, true)
            .in_op(op, site)?;
        let full = self.shape().clone();
        if p == 0.0 {
            let nonzero = x.map(|v| if v != T::ZERO { T::ONE } else { T::ZERO });
            let y = nonzero.sum_dims(&d, keepdim).in_op(op, site)?;
            return Ok(self.tape().constant(y));
        }
        let y = if p == f64::INFINITY {
            x.map(|v| v.abs()).amax_dims(&d, keepdim)
        } else {
            let pt = T::from_f64(p);
            x.map(|v| v.abs().powf(pt))
                .sum_dims(&d, keepdim)
                .map(|s| s.map(|v| v.powf(T::from_f64(1.0 / p))))
        }
        .in_op(op, site)?;
        let (xs, ys) = (Saved::of(self), Saved::output(self.tape(), &y));
        let reduced = d;
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let spread = |t: &Operand<T>| t.reshape(kept.dims())?.broadcast_to(full.dims());
            let (g, yb) = (spread(g)?, spread(&g.load(&ys))?);
            Ok(one(if p == f64::INFINITY {
                g.mul(&g.constant(max_share(xs.value(), yb.value(), &reduced)?))?
            } else {
                p_norm_vjp(&g, &g.load(&xs), &yb, p)?
            }))
        };
        self.tape().record_at(op, site, y, &[self], rule)
    }
}

impl<T: Element> Var<T> {
    /// Cosine similarity along `dim` of two tensors that broadcast together (PyTorch's
    /// `F.cosine_similarity(a, b, dim, eps)`): `Σ (a/‖a‖)·(b/‖b‖)`, each norm at least
    /// `eps`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.leaf(Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0], &[2, 2])?);
    /// let b = tape.leaf(Tensor::from_vec(vec![0.0, 2.0], &[1, 2])?);
    /// let c = a.cosine_similarity(&b, 1, 1e-8)?;
    /// assert!(c.value().data()[0].abs() < 1e-15 && (c.value().data()[1] - 0.5f64.sqrt()).abs() < 1e-15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that do not broadcast; `dim` out of range; different tapes.
    #[track_caller]
    pub fn cosine_similarity(&self, other: &Var<T>, dim: isize, eps: f64) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "cosine_similarity";
        self.tape().check_inputs(op, site, &[self, other])?;
        let shape = self.shape().broadcast(other.shape()).in_op(op, site)?;
        let d = [shape.resolve_dim(dim).in_op(op, site)? as isize];
        let unit = |v: &Var<T>| -> Result<Var<T>> {
            let v = if v.shape() == &shape {
                v.clone()
            } else {
                v.broadcast_to(shape.dims())?
            };
            v.div(&v.norm(2.0, Some(&d), true)?.clamp_min(eps))
        };
        unit(self)?.mul(&unit(other)?)?.sum_dims(&d, false)
    }
}

/// `g · sign(x)·|x|^(p−1) / y^(p−1)` for a finite `p ≠ 0, 1` (`y` broadcast to `x`'s
/// shape); where `y = 0` (then `x = 0` too) the divisor is 1, so the gradient is 0.
fn p_norm_vjp<T: Element>(
    g: &Operand<T>,
    x: &Operand<T>,
    y: &Operand<T>,
    p: f64,
) -> Result<Operand<T>> {
    let zero_norm = y
        .value()
        .map(|v| if v == T::ZERO { T::ONE } else { T::ZERO });
    let y = y.add(&y.constant(zero_norm))?;
    let along = if p == 2.0 {
        x.clone()
    } else {
        let sign = x.value().map(|v| {
            if v > T::ZERO {
                T::ONE
            } else if v < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        });
        x.unary(Unary::Abs)
            .unary(Unary::Powf(p - 1.0))
            .mul(&x.constant(sign))?
    };
    let scale = if p == 2.0 {
        y
    } else {
        y.unary(Unary::Powf(p - 1.0))
    };
    g.mul(&along)?.div(&scale)
}

/// `sign(x) / ties` where `|x|` equals its max `y` (broadcast) over `reduced`, 0
/// elsewhere: the share of the gradient of `max |x|` each element gets.
fn max_share<T: Element>(x: &Tensor<T>, y: &Tensor<T>, reduced: &[usize]) -> Result<Tensor<T>> {
    let hit = x.zip_map(y, |x, y| if x.abs() == y { T::ONE } else { T::ZERO })?;
    let ties = hit.sum_dims(reduced, true)?.broadcast_to(x.dims())?;
    let share = hit.zip3_map(&ties, x, |h, n, x| {
        let s = if x > T::ZERO {
            T::ONE
        } else if x < T::ZERO {
            -T::ONE
        } else {
            T::ZERO
        };
        if h == T::ZERO {
            T::ZERO
        } else {
            s / n
        }
    })?;
    Ok(share)
}
