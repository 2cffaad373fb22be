//! Reductions: sum and mean over any dims, max and logsumexp along one dim.

use chainrule_tensor::kernels::reduce::{reduced_shape, DimSplit};
use chainrule_tensor::{Element, Shape, Tensor};

use crate::error::InOp;
use crate::ops::one;
use std::sync::Arc;

use crate::{Operand, Result, Saved, Site, Unary, Var};

impl<T: Element> Var<T> {
    /// Sum of every element (shape `[]`).
    #[track_caller]
    pub fn sum(&self) -> Var<T> {
        let site = Site::caller();
        self.sum_impl(None, false, site, false)
            .expect("summing every dim cannot fail")
    }

    /// Sum over `dims` (negative counts from the end), keeping them as 1s when `keepdim`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.leaf(Tensor::ones(&[2, 3, 4])?);
    /// assert_eq!(x.sum_dims(&[0, -1], true)?.dims(), &[1, 3, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or repeated.
    #[track_caller]
    pub fn sum_dims(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>> {
        self.sum_impl(Some(dims), keepdim, Site::caller(), false)
    }

    /// Mean of every element; NaN for an empty tensor, as in PyTorch.
    ///
    /// # Errors
    /// None today; kept fallible like the other reductions.
    #[track_caller]
    pub fn mean(&self) -> Result<Var<T>> {
        self.sum_impl(None, false, Site::caller(), true)
    }

    /// Mean over `dims`.
    ///
    /// # Errors
    /// A dim out of range or repeated. A mean over no elements is NaN.
    #[track_caller]
    pub fn mean_dims(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>> {
        self.sum_impl(Some(dims), keepdim, Site::caller(), true)
    }

    fn sum_impl(
        &self,
        dims: Option<&[isize]>,
        keepdim: bool,
        site: Site,
        mean: bool,
    ) -> Result<Var<T>> {
        let op = if mean { "mean" } else { "sum" };
        let x = self.value();
        let dims = x.resolve_dims(dims).in_op(op, site)?;
        // 1/0 = inf for a mean over nothing, so its value is 0·inf = NaN, as PyTorch's
        let count: usize = dims.iter().map(|&d| x.dims()[d]).product();
        let scale = if mean {
            T::ONE / T::from_f64(count as f64)
        } else {
            T::ONE
        };
        let mut y = x.sum_dims(&dims, keepdim).in_op(op, site)?;
        if mean {
            y = y.scale(scale);
        }
        let kept = reduced_shape(x.shape(), &dims, true).in_op(op, site)?;
        let full = x.dims().to_vec();
        // dx = g broadcast back over the reduced dims (· 1/count for mean)
        let scale = scale.to_f64();
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let g = g.reshape(kept.dims())?.broadcast_to(&full)?;
            Ok(one(if mean { g.scale(scale) } else { g }))
        };
        self.tape().record_at(op, site, y, &[self], rule)
    }

    /// The index of the first maximum along `dim`, as an integer tensor (PyTorch's
    /// `argmax`); no gradient flows through an index.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::from_vec(vec![1.0, 3.0, 3.0, 5.0, 0.0, 2.0], &[2, 3])?);
    /// assert_eq!(x.argmax(-1, false)?.data(), &[1, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range, or an empty dim.
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<chainrule_tensor::IntTensor> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("argmax", site)?;
        self.value().argmax(d, keepdim).in_op("argmax", site)
    }

    /// Maximum along `dim`; the gradient goes to the first maximal element only.
    ///
    /// # Errors
    /// `dim` out of range, or an empty dim.
    #[track_caller]
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<Var<T>> {
        let site = Site::caller();
        let x = self.value();
        let d = x.shape().resolve_dim(dim).in_op("max", site)?;
        let (y, arg) = x.max_dim(d, keepdim).in_op("max", site)?;
        let split = DimSplit::new(x.shape(), d).in_op("max", site)?;
        let full = x.shape().clone();
        // dx[o, argmax, i] = g[o, i]
        let position = move |k: usize, a: usize| {
            let (o, i) = (k / split.inner.max(1), k % split.inner.max(1));
            (o * split.len + a) * split.inner + i
        };
        let rule = move |g: &Operand<T>, _: &[bool]| match g {
            Operand::Tensor(g) => {
                let mut out = Tensor::zeros(full.dims())?;
                let dx = out.data_mut();
                for (k, (&gv, &a)) in g.data().iter().zip(&arg).enumerate() {
                    dx[position(k, a)] += gv;
                }
                Ok(one(Operand::Tensor(out)))
            }
            Operand::Var(_) => {
                let index: Arc<[usize]> = arg
                    .iter()
                    .enumerate()
                    .map(|(k, &a)| position(k, a))
                    .collect();
                Ok(one(g.scatter_add_flat(index, full.clone())?))
            }
        };
        self.tape().record_at("max", site, y, &[self], rule)
    }

    /// `log Σ exp(x)` along `dim`, computed stably; −∞ over an empty dim.
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn logsumexp(&self, dim: isize, keepdim: bool) -> Result<Var<T>> {
        let site = Site::caller();
        let x = self.value();
        let d = x.shape().resolve_dim(dim).in_op("logsumexp", site)?;
        let y = x.logsumexp_dim(d, keepdim).in_op("logsumexp", site)?;
        let kept: Shape = reduced_shape(x.shape(), &[d], true).in_op("logsumexp", site)?;
        let (xs, ys) = (Saved::of(self), Saved::output(self.tape(), &y));
        // dx = g · exp(x − y)
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let gk = g.reshape(kept.dims())?;
            Ok(one(match g {
                Operand::Tensor(_) => {
                    let yk = ys.value().reshape(&signed(kept.dims()))?;
                    let p = xs.value().broadcast_zip(&yk, |x, y| (x - y).exp())?;
                    Operand::Tensor(p.broadcast_zip(gk.value(), |p, g| p * g)?)
                }
                Operand::Var(_) => {
                    let yk = g.load(&ys).reshape(kept.dims())?;
                    g.load(&xs).sub(&yk)?.unary(Unary::Exp).mul(&gk)?
                }
            }))
        };
        self.tape().record_at("logsumexp", site, y, &[self], rule)
    }
}

/// Dims as the `isize` list `reshape` takes.
pub(crate) fn signed(dims: &[usize]) -> Vec<isize> {
    dims.iter().map(|&d| d as isize).collect()
}
