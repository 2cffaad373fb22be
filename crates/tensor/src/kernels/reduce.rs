//! Reductions: sum, mean and max over any dims, max and logsumexp along one dim.

use super::{broadcast_strides, for_each_offset};
use crate::tensor::{alloc_empty, alloc_values, alloc_zeroed};
use crate::{Element, IntTensor, Shape, Tensor, TensorError, TensorResult};

/// Sums `values` with an `f64` accumulator, rounding once at the end: an `f32` sum of
/// 10⁷ terms then stays within one rounding of the exact value (a sequential `f32` sum
/// drifts by percents), and the order is fixed, so threads never change the bits.
pub(crate) fn accurate_sum<T: Element>(values: impl IntoIterator<Item = T>) -> T {
    T::from_f64(values.into_iter().map(T::to_f64).sum())
}

/// `Σ run` in `f64` over eight interleaved partial sums (lane `k` adds elements `k`,
/// `k + 8`, …) combined pairwise: as accurate as one `f64` accumulator, without one
/// long chain of dependent additions (a 2·10⁶-element sum took 2.7 ms as a chain).
/// The order depends on the length alone, never on threads.
#[inline(always)]
pub(crate) fn sum_run<T: Element>(run: &[T]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = run.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v.to_f64();
        }
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    let head = ((a + e) + (c + g)) + ((b + f) + (d + h));
    tail.iter().fold(head, |s, &v| s + v.to_f64())
}

/// The maximum of `run` (NaN if any is NaN; −inf for none) over eight interleaved
/// lanes: the same value as a sequential fold, as `max` is associative, without its
/// chain of dependent steps.
#[inline(always)]
pub(crate) fn max_run<T: Element>(run: &[T]) -> T {
    let mut lanes = [T::NEG_INFINITY; 8];
    let chunks = run.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    tail.iter()
        .fold(lanes.into_iter().fold(T::NEG_INFINITY, T::max), |m, &v| {
            m.max(v)
        })
}

/// A tensor seen as `[outer, len, inner]` around one dim, the layout every
/// single-dim reduction and softmax walks.
#[derive(Clone, Copy, Debug)]
pub struct DimSplit {
    /// Product of the dims before `dim`.
    pub outer: usize,
    /// Extent of `dim`.
    pub len: usize,
    /// Product of the dims after `dim`.
    pub inner: usize,
}

impl DimSplit {
    /// Splits `shape` around `dim` (already resolved).
    ///
    /// ```
    /// use chainrule_tensor::{kernels::reduce::DimSplit, Shape};
    /// let s = DimSplit::new(&Shape::new(&[2, 3, 4])?, 1)?;
    /// assert_eq!((s.outer, s.len, s.inner), (2, 3, 4));
    /// assert!(DimSplit::new(&Shape::new(&[2, 3])?, 5).is_err());
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::DimOutOfRange`] when `dim >= ndim`.
    pub fn new(shape: &Shape, dim: usize) -> TensorResult<Self> {
        let d = shape.dims();
        if dim >= d.len() {
            return Err(TensorError::DimOutOfRange {
                dim: isize::try_from(dim).unwrap_or(isize::MAX),
                ndim: d.len(),
                shape: shape.clone(),
            });
        }
        Ok(DimSplit {
            outer: d[..dim].iter().product(),
            len: d[dim],
            inner: d[dim + 1..].iter().product(),
        })
    }
}

/// Checks resolved `dims` against `shape`: each in range, none twice.
fn check_dims(shape: &Shape, dims: &[usize]) -> TensorResult<()> {
    for (i, &d) in dims.iter().enumerate() {
        if d >= shape.ndim() {
            return Err(TensorError::DimOutOfRange {
                dim: isize::try_from(d).unwrap_or(isize::MAX),
                ndim: shape.ndim(),
                shape: shape.clone(),
            });
        }
        if dims[..i].contains(&d) {
            return Err(crate::error::attr_err(
                "dims",
                format!("dim {d} appears twice in {dims:?}"),
            ));
        }
    }
    Ok(())
}

/// The output shape of reducing `dims` of `shape`, with or without the kept 1s.
///
/// # Errors
/// A dim out of range or repeated.
pub fn reduced_shape(shape: &Shape, dims: &[usize], keepdim: bool) -> TensorResult<Shape> {
    check_dims(shape, dims)?;
    let out: Vec<usize> = shape
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &e)| match (dims.contains(&i), keepdim) {
            (false, _) => Some(e),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Shape::new(&out)
}

impl<T: Element> Tensor<T> {
    /// Resolves a list of possibly negative dims; `None` means every dim.
    ///
    /// # Errors
    /// A dim out of range, or the same dim twice.
    pub fn resolve_dims(&self, dims: Option<&[isize]>) -> TensorResult<Vec<usize>> {
        let Some(dims) = dims else {
            return Ok((0..self.ndim()).collect());
        };
        let mut out = Vec::with_capacity(dims.len());
        for &d in dims {
            let r = self.shape().resolve_dim(d)?;
            if out.contains(&r) {
                return Err(crate::error::attr_err(
                    "dims",
                    format!("dim {d} appears twice in {dims:?}"),
                ));
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Sums over `dims` (resolved), keeping them as 1s when `keepdim`.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let t = Tensor::<f32>::ones(&[2, 3])?;
    /// assert_eq!(t.sum_dims(&[1], false)?.data(), &[3.0, 3.0]);
    /// assert!(t.sum_dims(&[7], false).is_err());
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or repeated.
    pub fn sum_dims(&self, dims: &[usize], keepdim: bool) -> TensorResult<Tensor<T>> {
        let kept = reduced_shape(self.shape(), dims, true)?;
        let out_shape = reduced_shape(self.shape(), dims, keepdim)?;
        Ok(Tensor::from_parts(out_shape, self.sum_into(&kept)?))
    }

    /// Sums every element into its slot of `kept` (a shape that broadcasts to `self`'s
    /// with as many dims), accumulating in `f64` (see [`accurate_sum`]).
    ///
    /// The output can be far larger than `self` (summing `[2^40, 0]` over its last dim
    /// gives 2^40 zeros), so both buffers are allocated fallibly.
    pub(crate) fn sum_into(&self, kept: &Shape) -> TensorResult<Vec<T>> {
        let mut acc = alloc_zeroed::<f64>(kept)?;
        let src = self.data();
        // The two common layouts (a bias gradient summing rows, a per-row or whole sum)
        // walk contiguous runs instead of the general odometer; every path's order is
        // fixed by the shapes alone.
        let dims = self.dims();
        let reduced = |d: usize| kept.dims()[d] != dims[d];
        let lead = (0..dims.len()).take_while(|&d| reduced(d)).count();
        let trail = (lead..dims.len()).rev().take_while(|&d| reduced(d)).count();
        let kept_mid = (lead..dims.len() - trail).all(|d| !reduced(d));
        if src.is_empty() {
            // nothing to add (and no row length to split by): the sums are zeros
        } else if acc.len() == 1 || (kept_mid && lead == 0) {
            // trailing dims (or all) summed away: each slot sums one contiguous run
            let run = src.len() / acc.len();
            for (a, run) in acc.iter_mut().zip(src.chunks_exact(run)) {
                *a = sum_run(run);
            }
        } else if kept_mid && trail == 0 {
            // leading dims summed away: add each row of `acc`'s length into `acc`
            for row in src.chunks_exact(acc.len()) {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v.to_f64());
            }
        } else {
            let so = broadcast_strides(kept, self.ndim());
            for_each_offset(self.dims(), [&so], |i, [o]| acc[o] += src[i].to_f64());
        }
        let mut out = alloc_values(kept)?;
        out.extend(acc.into_iter().map(T::from_f64));
        Ok(out)
    }

    /// Maximum over `dims` (resolved), keeping them as 1s when `keepdim`; NaN wins, as
    /// in PyTorch's `amax`.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(vec![1.0, 5.0, -2.0, 3.0], &[2, 2])?;
    /// assert_eq!(t.amax_dims(&[0, 1], false)?.data(), &[5.0]);
    /// assert_eq!(t.amax_dims(&[1], true)?.data(), &[5.0, 3.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or repeated, or a reduction over no elements.
    pub fn amax_dims(&self, dims: &[usize], keepdim: bool) -> TensorResult<Tensor<T>> {
        self.reduced_count(dims)?;
        let kept = reduced_shape(self.shape(), dims, true)?;
        let out_shape = reduced_shape(self.shape(), dims, keepdim)?;
        let so = broadcast_strides(&kept, self.ndim());
        let mut out = alloc_values(&kept)?;
        out.resize(kept.numel(), T::NEG_INFINITY);
        let src = self.data();
        for_each_offset(self.dims(), [&so], |i, [o]| out[o] = out[o].max(src[i]));
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// Mean over `dims` (resolved). A mean over no elements is NaN, as in PyTorch.
    ///
    /// # Errors
    /// A dim out of range or repeated.
    pub fn mean_dims(&self, dims: &[usize], keepdim: bool) -> TensorResult<Tensor<T>> {
        check_dims(self.shape(), dims)?;
        let count: usize = dims.iter().map(|&d| self.dims()[d]).product();
        Ok(self
            .sum_dims(dims, keepdim)?
            .scale(T::ONE / T::from_f64(count as f64)))
    }

    /// Number of elements each output of a reduction over `dims` sums.
    ///
    /// # Errors
    /// [`TensorError::EmptyReduction`] when it is zero.
    pub fn reduced_count(&self, dims: &[usize]) -> TensorResult<usize> {
        check_dims(self.shape(), dims)?;
        let count: usize = dims.iter().map(|&d| self.dims()[d]).product();
        if count == 0 {
            return Err(TensorError::EmptyReduction {
                shape: self.shape().clone(),
            });
        }
        Ok(count)
    }

    /// Maximum along `dim` and the index of the first maximum (PyTorch's tie rule picks
    /// one element; the gradient goes to it alone).
    ///
    /// # Errors
    /// [`TensorError::EmptyReduction`] when `dim` has extent 0.
    pub fn max_dim(&self, dim: usize, keepdim: bool) -> TensorResult<(Tensor<T>, Vec<usize>)> {
        let s = DimSplit::new(self.shape(), dim)?;
        self.reduced_count(&[dim])?;
        let out_shape = reduced_shape(self.shape(), &[dim], keepdim)?;
        let x = self.data();
        let mut vals = alloc_zeroed(&out_shape)?;
        let mut arg = alloc_empty::<usize>(&out_shape)?;
        arg.resize(vals.len(), 0);
        // `outer` can be huge when the output is empty (`[2^40, 3, 0]`): no loop over it
        let outer = if s.inner == 0 { 0 } else { s.outer };
        for o in 0..outer {
            for i in 0..s.inner {
                let base = o * s.len * s.inner + i;
                let (mut best, mut at) = (x[base], 0);
                for r in 1..s.len {
                    let v = x[base + r * s.inner];
                    if v > best || (v.is_nan() && !best.is_nan()) {
                        best = v;
                        at = r;
                    }
                }
                vals[o * s.inner + i] = best;
                arg[o * s.inner + i] = at;
            }
        }
        Ok((Tensor::from_parts(out_shape, vals), arg))
    }

    /// The index of the first maximum along `dim` (PyTorch's `argmax`; NaN counts as
    /// the maximum).
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 3.0, 3.0, 5.0, 0.0, 2.0], &[2, 3])?;
    /// assert_eq!(x.argmax(1, false)?.data(), &[1, 0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range or of extent 0.
    pub fn argmax(&self, dim: usize, keepdim: bool) -> TensorResult<IntTensor> {
        let (vals, arg) = self.max_dim(dim, keepdim)?;
        // an index along one dim is below its extent, which a shape keeps under i64::MAX
        IntTensor::from_vec(arg.into_iter().map(|a| a as i64).collect(), vals.dims())
    }

    /// `log Σ exp` along `dim`, shifted by the maximum so it stays finite; −∞ over an
    /// empty dim (the log of an empty sum), as in PyTorch.
    ///
    /// # Errors
    /// `dim` out of range.
    pub fn logsumexp_dim(&self, dim: usize, keepdim: bool) -> TensorResult<Tensor<T>> {
        let s = DimSplit::new(self.shape(), dim)?;
        let out_shape = reduced_shape(self.shape(), &[dim], keepdim)?;
        let x = self.data();
        let mut out = alloc_zeroed(&out_shape)?;
        // `outer` can be huge when the output is empty (`[2^40, 3, 0]`): no loop over it
        let outer = if s.inner == 0 { 0 } else { s.outer };
        for o in 0..outer {
            for i in 0..s.inner {
                let base = o * s.len * s.inner + i;
                let at = |r: usize| x[base + r * s.inner];
                let m = (0..s.len).map(at).fold(T::NEG_INFINITY, T::max);
                // PyTorch: an infinite maximum is the result itself (inf stays inf, not
                // inf − inf = NaN); all −inf gives −inf; a NaN propagates.
                out[o * s.inner + i] = if m.is_infinite() {
                    m
                } else {
                    accurate_sum((0..s.len).map(|r| (at(r) - m).exp())).ln() + m
                };
            }
        }
        Ok(Tensor::from_parts(out_shape, out))
    }
}
