//! Elementwise maps, broadcasting binary ops and reducing a broadcast back (`sum_to`).

use rayon::prelude::*;

use super::{broadcast_strides, for_each_offset, PARALLEL_THRESHOLD};
use crate::error::shape_err;
use crate::tensor::zeroed;
use crate::{Element, Shape, Tensor, TensorResult};

impl<T: Element> Tensor<T> {
    /// Applies `f` to every element.
    ///
    /// ```
    /// let t = chainrule_tensor::Tensor::<f32>::ones(&[3]).map(|v| v * 2.0);
    /// assert_eq!(t.data(), &[2.0; 3]);
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync) -> Tensor<T> {
        let src = self.data();
        let mut out = zeroed(src.len());
        if src.len() >= PARALLEL_THRESHOLD {
            out.par_chunks_mut(PARALLEL_THRESHOLD / 4)
                .zip(src.par_chunks(PARALLEL_THRESHOLD / 4))
                .for_each(|(o, s)| o.iter_mut().zip(s).for_each(|(o, &s)| *o = f(s)));
        } else {
            out.iter_mut().zip(src).for_each(|(o, &s)| *o = f(s));
        }
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
        let mut out = zeroed(a.len());
        if a.len() >= PARALLEL_THRESHOLD {
            let c = PARALLEL_THRESHOLD / 4;
            out.par_chunks_mut(c)
                .zip(a.par_chunks(c).zip(b.par_chunks(c)))
                .for_each(|(o, (a, b))| {
                    for i in 0..o.len() {
                        o[i] = f(a[i], b[i]);
                    }
                });
        } else {
            for i in 0..out.len() {
                out[i] = f(a[i], b[i]);
            }
        }
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }

    /// Combines three tensors of the same shape element by element (a backward rule's
    /// `g · f'(x, y)`), in parallel above [`PARALLEL_THRESHOLD`] elements.
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
        let mut out = zeroed(a.len());
        let run = |start: usize, o: &mut [T]| {
            for (i, o) in o.iter_mut().enumerate() {
                *o = f(a[start + i], b[start + i], c[start + i]);
            }
        };
        if a.len() >= PARALLEL_THRESHOLD {
            let chunk = PARALLEL_THRESHOLD / 4;
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(k, o)| run(k * chunk, o));
        } else {
            run(0, &mut out);
        }
        Ok(Tensor::from_parts(self.shape().clone(), out))
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
        let nd = shape.ndim();
        let (sa, sb) = (
            broadcast_strides(self.shape(), nd),
            broadcast_strides(other.shape(), nd),
        );
        let (a, b) = (self.data(), other.data());
        let mut out = zeroed(shape.numel());
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
    /// let g = Tensor::<f32>::ones(&[2, 3]);
    /// assert_eq!(g.sum_to(&Shape::new(&[3]))?.data(), &[2.0; 3]);
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
        let nd = self.ndim();
        let so = broadcast_strides(target, nd);
        let mut out = zeroed(target.numel());
        let src = self.data();
        for_each_offset(self.dims(), [&so], |i, [o]| out[o] += src[i]);
        Ok(Tensor::from_parts(target.clone(), out))
    }
}
