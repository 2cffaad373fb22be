//! Softmax, log-softmax and the fused softmax-cross-entropy, all shifted by the row
//! maximum so logits in the thousands stay finite.

use super::reduce::{accurate_sum, max_run, sum_run, DimSplit};
use super::simd::{self, Vectorized};
use crate::pool;
use crate::{Element, Tensor, TensorError, TensorResult};

impl<T: Element> Tensor<T> {
    /// Softmax along a (resolved) dim.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1000.0, 1000.0], &[2])?;
    /// assert_eq!(x.softmax(0)?.data(), &[0.5, 0.5]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::DimOutOfRange`] when `dim >= ndim`.
    pub fn softmax(&self, dim: usize) -> TensorResult<Tensor<T>> {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax along a (resolved) dim.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![0.0, 0.0], &[2])?;
    /// assert_eq!(x.log_softmax(0)?.data(), &[-(2f64.ln()); 2]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::DimOutOfRange`] when `dim >= ndim`.
    pub fn log_softmax(&self, dim: usize) -> TensorResult<Tensor<T>> {
        self.softmax_impl(dim, true)
    }

    fn softmax_impl(&self, dim: usize, log: bool) -> TensorResult<Tensor<T>> {
        let s = DimSplit::new(self.shape(), dim)?;
        let x = self.data();
        let mut out = pool::overwritten(x.len()); // every element written below
        if s.inner == 1 && s.len > 0 {
            // the last dim: contiguous rows through the vector loop
            for (x, out) in x.chunks_exact(s.len).zip(out.chunks_exact_mut(s.len)) {
                simd::dispatch(SoftmaxRow { x, out, log });
            }
            return Ok(Tensor::from_parts(self.shape().clone(), out));
        }
        // an empty tensor can have a huge `outer · inner` (`[2^59, 0]`): no loop over it
        let outer = if x.is_empty() { 0 } else { s.outer };
        for o in 0..outer {
            for i in 0..s.inner {
                let base = o * s.len * s.inner + i;
                let idx = |r: usize| base + r * s.inner;
                let m = (0..s.len).map(|r| x[idx(r)]).fold(T::NEG_INFINITY, T::max);
                let mut sum = 0f64;
                for r in 0..s.len {
                    let e = (x[idx(r)] - m).exp();
                    out[idx(r)] = e;
                    sum += e.to_f64();
                }
                let sum = T::from_f64(sum);
                if log {
                    let lse = sum.ln();
                    (0..s.len).for_each(|r| out[idx(r)] = x[idx(r)] - m - lse);
                } else {
                    let inv = T::ONE / sum;
                    (0..s.len).for_each(|r| out[idx(r)] *= inv);
                }
            }
        }
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }

    /// Per-row `logsumexp(x) − x[label]` for logits `[n, c]`, and the row softmax the
    /// backward needs (`softmax − one_hot`).
    ///
    /// # Errors
    /// A label outside `0..c`, or a label count other than `n`.
    pub fn cross_entropy_rows(&self, labels: &[usize]) -> TensorResult<(Vec<T>, Tensor<T>)> {
        let (n, c) = check_labels(self, labels)?;
        let probs = self.softmax(1)?;
        let x = self.data();
        let losses = (0..n)
            .map(|r| {
                let row = &x[r * c..(r + 1) * c];
                let m = row.iter().copied().fold(T::NEG_INFINITY, T::max);
                let lse = accurate_sum(row.iter().map(|&v| (v - m).exp())).ln() + m;
                lse - row[labels[r]]
            })
            .collect();
        Ok((losses, probs))
    }
}

/// Softmax or log-softmax of one contiguous row.
struct SoftmaxRow<'a, T> {
    x: &'a [T],
    out: &'a mut [T],
    log: bool,
}

impl<T: Element> Vectorized for SoftmaxRow<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (x, out) = (self.x, &mut self.out[..self.x.len()]);
        let m = max_run(x);
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - m).exp());
        let sum = T::from_f64(sum_run(out));
        if self.log {
            let lse = sum.ln();
            out.iter_mut().zip(x).for_each(|(o, &v)| *o = v - m - lse);
        } else {
            let inv = T::ONE / sum;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
}

/// Checks `[n, c]` scores against `n` labels in `0..c`; returns `(n, c)`.
///
/// # Errors
/// Wrong rank, a count mismatch, or a label out of range.
pub fn check_labels<T: Element>(
    scores: &Tensor<T>,
    labels: &[usize],
) -> TensorResult<(usize, usize)> {
    let &[n, c] = scores.dims() else {
        return Err(crate::error::shape_err!(
            "scores {} must be 2-D [n, classes]",
            scores.shape()
        ));
    };
    if labels.len() != n {
        return Err(crate::error::shape_err!(
            "{} labels for scores {} (want {n})",
            labels.len(),
            scores.shape()
        ));
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= c) {
        return Err(TensorError::LabelOutOfRange {
            label: i64::try_from(label).unwrap_or(i64::MAX),
            index,
            classes: c,
        });
    }
    Ok((n, c))
}
