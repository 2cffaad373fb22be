//! Gathering and scattering by flat element positions: the arg-max routing of `max`
//! and max pooling, and the label picking of `nll_loss`, in a form whose adjoint is the
//! other kernel (so their gradients can be differentiated again).

use crate::error::shape_err;
use crate::tensor::{alloc_values, alloc_zeroed};
use crate::{Element, IntTensor, Shape, Tensor, TensorResult};

impl<T: Element> Tensor<T> {
    /// `out[k] = self[index[k]]`, shaped `dims` (whose size must be `index.len()`).
    ///
    /// ```
    /// use chainrule_tensor::{Shape, Tensor};
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3])?;
    /// let y = x.take_flat(&[2, 0], &Shape::new(&[2])?)?;
    /// assert_eq!(y.data(), &[3.0, 1.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `dims` does not hold `index.len()` elements, or an index is out of range.
    pub fn take_flat(&self, index: &[usize], dims: &Shape) -> TensorResult<Tensor<T>> {
        if dims.numel() != index.len() {
            return Err(shape_err!(
                "{} positions for an output {}",
                index.len(),
                dims
            ));
        }
        let mut out = alloc_values(dims)?;
        for &i in index {
            out.push(*self.data().get(i).ok_or_else(|| {
                shape_err!("position {i} outside a tensor of {} elements", self.numel())
            })?);
        }
        Ok(Tensor::from_parts(dims.clone(), out))
    }

    /// Zeros of shape `full` with `self[k]` added at `index[k]`: the adjoint of
    /// [`Tensor::take_flat`].
    ///
    /// ```
    /// use chainrule_tensor::{Shape, Tensor};
    /// let g = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2])?;
    /// let y = g.scatter_add_flat(&[2, 2], &Shape::new(&[3])?)?;
    /// assert_eq!(y.data(), &[0.0, 0.0, 3.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `self` does not hold `index.len()` elements, or an index is out of range.
    pub fn scatter_add_flat(&self, index: &[usize], full: &Shape) -> TensorResult<Tensor<T>> {
        if self.numel() != index.len() {
            return Err(shape_err!(
                "{} positions for {} values",
                index.len(),
                self.numel()
            ));
        }
        let mut out = alloc_zeroed(full)?;
        for (&i, &v) in index.iter().zip(self.data()) {
            *out.get_mut(i)
                .ok_or_else(|| shape_err!("position {i} outside {full}"))? += v;
        }
        Ok(Tensor::from_parts(full.clone(), out))
    }
}

/// The flat positions in a tensor of shape `shape` that `gather(dim, index)` reads:
/// `out[p] = x[p with p[dim] replaced by index[p]]`. PyTorch's rules: `index` has the
/// same rank as `x`, and extents no larger than `x`'s except along `dim`.
///
/// ```
/// use chainrule_tensor::{kernels::index::gather_positions, IntTensor, Shape};
/// let index = IntTensor::from_vec(vec![2, 0], &[2, 1])?;
/// assert_eq!(gather_positions(&Shape::new(&[2, 3])?, 1, &index)?, vec![2, 3]);
/// # Ok::<(), chainrule_tensor::TensorError>(())
/// ```
///
/// # Errors
/// A rank or extent mismatch, or an index outside `0..shape[dim]`.
pub fn gather_positions(shape: &Shape, dim: usize, index: &IntTensor) -> TensorResult<Vec<usize>> {
    let (xd, id) = (shape.dims(), index.dims());
    if id.len() != xd.len() || dim >= xd.len() {
        return Err(shape_err!(
            "index of shape {} for a tensor of shape {shape} along dim {dim}: the ranks must match",
            index.shape()
        ));
    }
    if let Some(d) = (0..xd.len()).find(|&d| d != dim && id[d] > xd[d]) {
        return Err(shape_err!(
            "index of shape {} is larger than the tensor's {shape} in dim {d}",
            index.shape()
        ));
    }
    let along = index.indices(xd[dim], dim)?;
    let strides = shape.strides();
    let mut at = vec![0usize; id.len()];
    let mut out = Vec::with_capacity(along.len());
    for &i in &along {
        let base: usize = (0..id.len())
            .filter(|&d| d != dim)
            .map(|d| at[d] * strides[d])
            .sum();
        out.push(base + i * strides[dim]);
        // advance the odometer over the index's shape
        for d in (0..id.len()).rev() {
            at[d] += 1;
            if at[d] < id[d] {
                break;
            }
            at[d] = 0;
        }
    }
    Ok(out)
}

/// `(outer, n, inner)`: the shape seen as a 3-D block around `dim`.
fn around(shape: &Shape, dim: usize) -> (usize, usize, usize) {
    let d = shape.dims();
    (
        d[..dim].iter().product(),
        d[dim],
        d[dim + 1..].iter().product(),
    )
}

/// `shape` with dim `dim` of extent `len`.
fn with_extent(shape: &Shape, dim: usize, len: usize) -> TensorResult<Shape> {
    let mut dims = shape.dims().to_vec();
    dims[dim] = len;
    Shape::new(&dims)
}

impl<T: Element> Tensor<T> {
    /// Rows `rows` along `dim` (PyTorch's `index_select`, and an embedding lookup along
    /// dim 0): `out[.., k, ..] = self[.., rows[k], ..]`; rows equal to `skip` read as
    /// zeros (the adjoint of [`Tensor::scatter_add_rows`] skipping them).
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let w = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2])?;
    /// assert_eq!(w.take_rows(0, &[2, 0], None)?.data(), &[5.0, 6.0, 1.0, 2.0]);
    /// assert_eq!(w.take_rows(0, &[2, 0], Some(0))?.data(), &[5.0, 6.0, 0.0, 0.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range, a row outside `0..self.dims()[dim]`, or an output too large.
    pub fn take_rows(
        &self,
        dim: usize,
        rows: &[usize],
        skip: Option<usize>,
    ) -> TensorResult<Tensor<T>> {
        let shape = self.shape().clone();
        if dim >= shape.ndim() {
            return Err(shape_err!(
                "take_rows: dim {dim} of a tensor of shape {shape}"
            ));
        }
        let (outer, n, inner) = around(&shape, dim);
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(shape_err!("row {r} outside 0..{n} of dim {dim}"));
        }
        let out_shape = with_extent(&shape, dim, rows.len())?;
        let mut out = alloc_values(&out_shape)?;
        let x = self.data();
        for o in 0..outer {
            for &r in rows {
                if Some(r) == skip {
                    out.extend(std::iter::repeat_n(T::ZERO, inner));
                } else {
                    let start = (o * n + r) * inner;
                    out.extend_from_slice(&x[start..start + inner]);
                }
            }
        }
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// Zeros of shape `full` with `self[.., k, ..]` added at `[.., rows[k], ..]` along
    /// `dim`, rows equal to `skip` left out: the adjoint of [`Tensor::take_rows`] (an
    /// embedding's weight gradient).
    ///
    /// ```
    /// use chainrule_tensor::{Shape, Tensor};
    /// let g = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let w = g.scatter_add_rows(0, &[1, 1], None, &Shape::new(&[3, 2])?)?;
    /// assert_eq!(w.data(), &[0.0, 0.0, 4.0, 6.0, 0.0, 0.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `self` is not `full` with `rows.len()` along `dim`, or a row is out of range.
    pub fn scatter_add_rows(
        &self,
        dim: usize,
        rows: &[usize],
        skip: Option<usize>,
        full: &Shape,
    ) -> TensorResult<Tensor<T>> {
        if dim >= full.ndim() || with_extent(full, dim, rows.len())? != *self.shape() {
            return Err(shape_err!(
                "scatter_add_rows: {} rows of shape {} into {full} along dim {dim}",
                rows.len(),
                self.shape()
            ));
        }
        let (outer, n, inner) = around(full, dim);
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(shape_err!("row {r} outside 0..{n} of dim {dim}"));
        }
        let mut out = alloc_zeroed(full)?;
        let g = self.data();
        for o in 0..outer {
            for (k, &r) in rows.iter().enumerate() {
                if Some(r) == skip {
                    continue;
                }
                let src = (o * rows.len() + k) * inner;
                let dst = (o * n + r) * inner;
                for (d, &v) in out[dst..dst + inner].iter_mut().zip(&g[src..src + inner]) {
                    *d += v;
                }
            }
        }
        Ok(Tensor::from_parts(full.clone(), out))
    }
}
