//! Elementwise maps, broadcasting binary ops and reducing a broadcast back (`sum_to`).

use rayon::prelude::*;

use super::parallel::{self, Cost};
use super::simd::{self, Map1, Map2, Map3, Update1, Update2};
use super::{broadcast_strides, for_each_offset, PARALLEL_THRESHOLD};
use crate::error::shape_err;
use crate::pool;
use crate::tensor::alloc_zeroed;
use crate::{Element, Shape, Tensor, TensorResult};

/// A new buffer of `len` elements, each block `fill(start, block)` writes in full; blocks run
/// in parallel when [`parallel::split`] says so.
pub(crate) fn filled<T: Element>(len: usize, fill: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
    let mut out = pool::overwritten(len); // `fill` writes every element
    if parallel::split(Cost::Elements(len)) {
        let block = PARALLEL_THRESHOLD / 4;
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(k, o)| fill(k * block, o));
    } else {
        fill(0, &mut out);
    }
    out
}

/// Rewrites `data` block by block, `fill(start, block)`, in parallel when
/// [`parallel::split`] says so (the blocks of [`filled`], so the results match it).
fn update<T: Element>(data: &mut [T], fill: impl Fn(usize, &mut [T]) + Sync) {
    if parallel::split(Cost::Elements(data.len())) {
        let block = PARALLEL_THRESHOLD / 4;
        data.par_chunks_mut(block)
            .enumerate()
            .for_each(|(k, o)| fill(k * block, o));
    } else {
        fill(0, data);
    }
}

impl<T: Element> Tensor<T> {
    /// Applies `f` to every element.
    ///
    /// ```
    /// let t = chainrule_tensor::Tensor::<f32>::ones(&[3])?.map(|v| v * 2.0);
    /// assert_eq!(t.data(), &[2.0; 3]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync) -> Tensor<T> {
        let a = self.data();
        let out = filled(a.len(), |start, out: &mut [T]| {
            let a = &a[start..start + out.len()];
            simd::dispatch(Map1 { out, a, f: &f });
        });
        Tensor::from_parts(self.shape().clone(), out)
    }

    /// Combines two tensors of the same shape element by element.
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when the shapes differ.
    pub fn zip_map(
        &self,
        other: &Tensor<T>,
        f: impl Fn(T, T) -> T + Sync,
    ) -> TensorResult<Tensor<T>> {
        if self.shape() != other.shape() {
            return Err(shape_err!(
                "shapes {} and {} differ",
                self.shape(),
                other.shape()
            ));
        }
        let (a, b) = (self.data(), other.data());
        let out = filled(a.len(), |start, out: &mut [T]| {
            let r = start..start + out.len();
            let (a, b) = (&a[r.clone()], &b[r]);
            simd::dispatch(Map2 { out, a, b, f: &f });
        });
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }

    /// Combines three tensors of the same shape element by element (a backward rule's
    /// `g · f'(x, y)`).
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when the shapes differ.
    pub fn zip3_map(
        &self,
        b: &Tensor<T>,
        c: &Tensor<T>,
        f: impl Fn(T, T, T) -> T + Sync,
    ) -> TensorResult<Tensor<T>> {
        if self.shape() != b.shape() || self.shape() != c.shape() {
            return Err(shape_err!(
                "shapes {}, {} and {} differ",
                self.shape(),
                b.shape(),
                c.shape()
            ));
        }
        let (a, b, c) = (self.data(), b.data(), c.data());
        let out = filled(a.len(), |start, out: &mut [T]| {
            let r = start..start + out.len();
            let (a, b, c) = (&a[r.clone()], &b[r.clone()], &c[r]);
            simd::dispatch(Map3 {
                out,
                a,
                b,
                c,
                f: &f,
            });
        });
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }

    /// [`Tensor::map`] that writes into this tensor's own buffer when nothing else
    /// holds it (a gradient the backward pass owns), and into a new one otherwise.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let t = Tensor::<f32>::ones(&[3])?;
    /// let kept = t.clone();
    /// let doubled = t.into_map(|v| v * 2.0); // `kept` shares the buffer: a new one
    /// assert_eq!((doubled.data(), kept.data()), (&[2.0; 3][..], &[1.0; 3][..]));
    /// let ptr = doubled.data().as_ptr();
    /// assert_eq!(doubled.into_map(|v| v + 1.0).data().as_ptr(), ptr); // unique: in place
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn into_map(mut self, f: impl Fn(T) -> T + Sync) -> Tensor<T> {
        let Some(out) = self.unique_data() else {
            return self.map(f);
        };
        update(out, |_, out: &mut [T]| {
            simd::dispatch(Update1 { out, f: &f })
        });
        self
    }

    /// [`Tensor::zip_map`] that writes `f(self[i], other[i])` into this tensor's own
    /// buffer when nothing else holds it, and into a new one otherwise.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let g = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2])?;
    /// let y = Tensor::from_vec(vec![0.0, 3.0], &[2])?;
    /// assert_eq!(g.into_zip_map(&y, |g, y| if y > 0.0 { g } else { 0.0 })?.data(), &[0.0, 2.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when the shapes differ.
    pub fn into_zip_map(
        mut self,
        other: &Tensor<T>,
        f: impl Fn(T, T) -> T + Sync,
    ) -> TensorResult<Tensor<T>> {
        if self.shape() != other.shape() {
            return self.zip_map(other, f); // its error
        }
        let Some(out) = self.unique_data() else {
            return self.zip_map(other, f);
        };
        // `out` is unique, so `other` cannot share its buffer
        let b = other.data();
        update(out, |start, out: &mut [T]| {
            let b = &b[start..start + out.len()];
            simd::dispatch(Update2 { out, b, f: &f });
        });
        Ok(self)
    }

    /// Combines two tensors under NumPy broadcasting.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2, 1])?;
    /// let b = Tensor::<f32>::from_vec(vec![10.0, 20.0, 30.0], &[3])?;
    /// assert_eq!(a.broadcast_zip(&b, |x, y| x + y)?.dims(), &[2, 3]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when the shapes do not broadcast.
    pub fn broadcast_zip(
        &self,
        other: &Tensor<T>,
        f: impl Fn(T, T) -> T + Sync,
    ) -> TensorResult<Tensor<T>> {
        if self.shape() == other.shape() {
            return self.zip_map(other, f);
        }
        let shape = self.shape().broadcast(other.shape())?;
        let (a, b) = (self.data(), other.data());
        let mut out = alloc_zeroed(&shape)?;
        // A bias `[k]` against `[…, k]` (either side): whole rows through the vector loop.
        if !out.is_empty() {
            if self.shape() == &shape && is_suffix(other.shape(), &shape) {
                for (out, a) in out.chunks_exact_mut(b.len()).zip(a.chunks_exact(b.len())) {
                    simd::dispatch(Map2 { out, a, b, f: &f });
                }
                return Ok(Tensor::from_parts(shape, out));
            }
            if other.shape() == &shape && is_suffix(self.shape(), &shape) {
                for (out, b) in out.chunks_exact_mut(a.len()).zip(b.chunks_exact(a.len())) {
                    simd::dispatch(Map2 { out, a, b, f: &f });
                }
                return Ok(Tensor::from_parts(shape, out));
            }
        }
        let nd = shape.ndim();
        let (sa, sb) = (
            broadcast_strides(self.shape(), nd),
            broadcast_strides(other.shape(), nd),
        );
        for_each_offset(shape.dims(), [&sa, &sb], |i, [oa, ob]| {
            out[i] = f(a[oa], b[ob])
        });
        Ok(Tensor::from_parts(shape, out))
    }

    /// Adds `other` into `self` in place; shapes must be equal.
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when the shapes differ.
    pub fn add_assign(&mut self, other: &Tensor<T>) -> TensorResult<()> {
        if self.shape() != other.shape() {
            return Err(shape_err!(
                "cannot add {} into {}",
                other.shape(),
                self.shape()
            ));
        }
        self.data_mut()
            .iter_mut()
            .zip(other.data())
            .for_each(|(a, &b)| *a += b);
        Ok(())
    }

    /// Multiplies every element by `c`.
    pub fn scale(&self, c: T) -> Tensor<T> {
        self.map(|v| v * c)
    }

    /// Sums a broadcast result back to `target`, the shape of the operand that was
    /// broadcast: the inverse bookkeeping of broadcasting, used by every backward rule.
    ///
    /// ```
    /// use chainrule_tensor::{Shape, Tensor};
    /// let g = Tensor::<f32>::ones(&[2, 3])?;
    /// assert_eq!(g.sum_to(&Shape::new(&[3])?)?.data(), &[2.0; 3]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::TensorError::Shape`] when `target` does not broadcast to `self`'s shape.
    pub fn sum_to(&self, target: &Shape) -> TensorResult<Tensor<T>> {
        if self.shape() == target {
            return Ok(self.clone());
        }
        if target.ndim() > self.ndim() || &target.broadcast(self.shape())? != self.shape() {
            return Err(shape_err!("cannot sum {} down to {}", self.shape(), target));
        }
        // `target` padded with leading 1s to `self`'s rank has the same element order
        let mut kept = vec![1; self.ndim() - target.ndim()];
        kept.extend_from_slice(target.dims());
        Ok(Tensor::from_parts(
            target.clone(),
            self.sum_into(&Shape::new(&kept)?)?,
        ))
    }
}

/// True when `part`'s dims, without leading 1s, are the last dims of `full`: the
/// broadcast repeats `part` whole, row after row.
fn is_suffix(part: &Shape, full: &Shape) -> bool {
    let dims = part.dims();
    let lead = dims.iter().take_while(|&&d| d == 1).count();
    let dims = &dims[lead..];
    full.dims().ends_with(dims) && !dims.is_empty()
}
