//! Matrix products over the strided GEMM of [`super::gemm`], batched with broadcast batch
//! dims; transposed operands are passed as strides, never copied.

use rayon::prelude::*;

use super::gemm::{gemm, MatMut, MatRef};
use super::parallel::{self, Cost};
use super::{broadcast_strides, for_each_offset};
use crate::error::shape_err;
use crate::{Element, Shape, Tensor, TensorResult};

impl<T: Element> Tensor<T> {
    /// Matrix product with PyTorch's `matmul` semantics: 1-D operands are promoted to a
    /// row (left) or column (right) and the added dim removed; batch dims broadcast.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let a = Tensor::<f64>::ones(&[5, 2, 3])?;
    /// let b = Tensor::<f64>::ones(&[3, 4])?;
    /// assert_eq!(a.matmul(&b)?.dims(), &[5, 2, 4]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Inner dims differ, an operand is a scalar, or batch dims do not broadcast.
    pub fn matmul(&self, other: &Tensor<T>) -> TensorResult<Tensor<T>> {
        if self.ndim() == 0 || other.ndim() == 0 {
            return Err(shape_err!(
                "matmul needs at least 1-D operands, got {} and {}",
                self.shape(),
                other.shape()
            ));
        }
        let a = if self.ndim() == 1 {
            self.with_shape(Shape::new(&[1, self.numel()])?)
        } else {
            self.clone()
        };
        let b = if other.ndim() == 1 {
            other.with_shape(Shape::new(&[other.numel(), 1])?)
        } else {
            other.clone()
        };
        let out = a.matmul_t(false, &b, false).map_err(|e| match e {
            e @ (crate::TensorError::OutOfMemory { .. } | crate::TensorError::TooLarge { .. }) => e,
            _ => shape_err!(
                "cannot multiply {} by {}: inner dims differ or batch dims do not broadcast",
                self.shape(),
                other.shape()
            ),
        })?;
        let mut dims = out.dims().to_vec();
        if other.ndim() == 1 {
            dims.pop();
        }
        if self.ndim() == 1 {
            dims.remove(dims.len() - if other.ndim() == 1 { 1 } else { 2 });
        }
        Ok(out.with_shape(Shape::new(&dims)?))
    }

    /// Batched product of `op(self)` and `op(other)` for operands of at least 2 dims,
    /// where `op` transposes the last two dims when its flag is set.
    ///
    /// # Errors
    /// Inner dims differ or batch dims do not broadcast.
    pub fn matmul_t(&self, ta: bool, other: &Tensor<T>, tb: bool) -> TensorResult<Tensor<T>> {
        let (a, b) = (self, other);
        if a.ndim() < 2 || b.ndim() < 2 {
            return Err(shape_err!(
                "matmul_t needs 2-D or batched operands, got {} and {}",
                a.shape(),
                b.shape()
            ));
        }
        // (rows, cols) as stored, and of op(t)
        let mat = |t: &Tensor<T>, tr: bool| {
            let d = t.dims();
            let (r, c) = (d[d.len() - 2], d[d.len() - 1]);
            ((r, c), if tr { (c, r) } else { (r, c) })
        };
        let (a_stored, (m, k)) = mat(a, ta);
        let (b_stored, (k2, n)) = mat(b, tb);
        if k != k2 {
            return Err(shape_err!(
                "inner dims differ: {} · {} (k {k} vs {k2})",
                a.shape(),
                b.shape()
            ));
        }
        let batch_a = Shape::new(&a.dims()[..a.ndim() - 2])?;
        let batch_b = Shape::new(&b.dims()[..b.ndim() - 2])?;
        let batch = batch_a.broadcast(&batch_b)?;
        let mut dims = batch.dims().to_vec();
        dims.extend([m, n]);
        let out_shape = Shape::new(&dims)?;
        let nb = batch.ndim();
        let scale =
            |s: Vec<usize>, size: usize| s.into_iter().map(|v| v * size).collect::<Vec<_>>();
        let sa = scale(broadcast_strides(&batch_a, nb), m * k);
        let sb = scale(broadcast_strides(&batch_b, nb), k * n);
        if out_shape.numel() == 0 {
            return Ok(Tensor::from_parts(out_shape, Vec::new()));
        }
        // the output first: it is at least as large as the offsets table below
        let mut out = crate::tensor::alloc_overwritten(&out_shape)?;
        if k == 0 {
            out.fill(T::ZERO); // sums of nothing
            return Ok(Tensor::from_parts(out_shape, out));
        }
        // one entry per batch element, each of which owns m·n > 0 outputs
        let mut offsets = crate::tensor::alloc_empty::<[usize; 2]>(&batch)?;
        for_each_offset(batch.dims(), [&sa, &sb], |_, o| offsets.push(o));
        let run = |c: &mut [T], [oa, ob]: [usize; 2]| {
            gemm(
                MatRef::new(a.data(), oa, a_stored.0, a_stored.1, ta),
                MatRef::new(b.data(), ob, b_stored.0, b_stored.1, tb),
                MatMut::new(c, m, n),
                false,
            )
        };
        let macs = (m * n).saturating_mul(k).saturating_mul(offsets.len());
        if offsets.len() > 1 && parallel::split(Cost::MultiplyAdds(macs)) && m * n > 0 {
            out.par_chunks_mut(m * n)
                .zip(offsets.par_iter())
                .for_each(|(c, &o)| run(c, o));
        } else if m * n > 0 {
            out.chunks_mut(m * n)
                .zip(&offsets)
                .for_each(|(c, &o)| run(c, o));
        }
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// `x·wᵀ + b` for `x [.., in]`, `w [out, in]`, `b [out]`: PyTorch's `linear`, fused
    /// so `w` is read transposed in place and the bias is added in the same pass.
    ///
    /// # Errors
    /// `x`'s last dim differs from `w`'s, or `b` is not `[out]`.
    pub fn linear(&self, w: &Tensor<T>, b: Option<&Tensor<T>>) -> TensorResult<Tensor<T>> {
        if self.ndim() == 0 || w.ndim() != 2 || self.dims()[self.ndim() - 1] != w.dims()[1] {
            return Err(shape_err!(
                "input {} does not match weight {} (want [.., in] and [out, in])",
                self.shape(),
                w.shape()
            ));
        }
        let (out_f, in_f) = (w.dims()[0], w.dims()[1]);
        if let Some(b) = b {
            if b.dims() != [out_f] {
                return Err(shape_err!(
                    "bias {} should be [{out_f}] for weight {}",
                    b.shape(),
                    w.shape()
                ));
            }
        }
        let rows: usize = self.dims()[..self.ndim() - 1].iter().product();
        let mut dims = self.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_f;
        }
        let out_shape = Shape::new(&dims)?;
        let mut out = crate::tensor::alloc_overwritten(&out_shape)?;
        if let Some(b) = b {
            out.chunks_mut(out_f.max(1))
                .for_each(|r| r.copy_from_slice(b.data()));
        }
        gemm(
            MatRef::new(self.data(), 0, rows, in_f, false),
            MatRef::new(w.data(), 0, out_f, in_f, true),
            MatMut::new(&mut out, rows, out_f),
            b.is_some(),
        );
        Ok(Tensor::from_parts(out_shape, out))
    }
}
