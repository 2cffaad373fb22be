//! Scans: running sums along one dim.

use super::reduce::DimSplit;
use crate::tensor::alloc_zeroed;
use crate::{Element, Tensor, TensorResult};

impl<T: Element> Tensor<T> {
    /// Running sum along `dim` (resolved): `out[.., k, ..] = Σ_{j ≤ k} self[.., j, ..]`,
    /// or with `reverse` `Σ_{j ≥ k}` (the adjoint of the forward scan). The running sum
    /// is kept in `f64`, so a long `f32` scan does not drift.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(t.cumsum(1, false)?.data(), &[1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
    /// assert_eq!(t.cumsum(0, true)?.data(), &[5.0, 7.0, 9.0, 4.0, 5.0, 6.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range.
    pub fn cumsum(&self, dim: usize, reverse: bool) -> TensorResult<Tensor<T>> {
        let s = DimSplit::new(self.shape(), dim)?;
        let mut out = alloc_zeroed(self.shape())?;
        let x = self.data();
        // `outer` can be huge when the tensor is empty: no loop over it
        let outer = if s.inner == 0 || s.len == 0 {
            0
        } else {
            s.outer
        };
        for o in 0..outer {
            for i in 0..s.inner {
                let at = |r: usize| (o * s.len + r) * s.inner + i;
                let mut acc = 0.0f64;
                let mut step = |r: usize| {
                    acc += x[at(r)].to_f64();
                    out[at(r)] = T::from_f64(acc);
                };
                if reverse {
                    (0..s.len).rev().for_each(&mut step);
                } else {
                    (0..s.len).for_each(&mut step);
                }
            }
        }
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }
}
