//! Cutting a value into pieces and reversing it: `split`, `split_sizes`, `chunk`,
//! `flip`. Composed from `narrow` and `index_select`, so their gradients (to any
//! order) are those ops' rules.

use chainrule_tensor::{Element, IntTensor};

use crate::error::InOp;
use crate::ops::attr_error;
use crate::{Result, Site, Var};

impl<T: Element> Var<T> {
    /// Pieces of `split_size` along `dim`, the last one smaller if the size does not
    /// divide (PyTorch's `split(int)`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::zeros(&[5, 2])?);
    /// let sizes: Vec<usize> = x.split(2, 0)?.iter().map(|p| p.dims()[0]).collect();
    /// assert_eq!(sizes, [2, 2, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range, or `split_size` 0 for a non-empty dim.
    #[track_caller]
    pub fn split(&self, split_size: usize, dim: isize) -> Result<Vec<Var<T>>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("split", site)?;
        let n = self.dims()[d];
        if split_size == 0 {
            if n == 0 {
                return Ok(vec![self.clone()]);
            }
            return Err(attr_error(
                "split",
                site,
                "split_size",
                format!("0 cannot split dim {d} of size {n}"),
            ));
        }
        let sizes: Vec<usize> = (0..n)
            .step_by(split_size)
            .map(|start| split_size.min(n - start))
            .collect();
        self.pieces(&sizes, d)
    }

    /// Pieces of the given sizes along `dim`, which must add up to its size (PyTorch's
    /// `split(list)`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::zeros(&[2, 6])?);
    /// let parts = x.split_sizes(&[1, 5], -1)?;
    /// assert_eq!((parts[0].dims(), parts[1].dims()), (&[2, 1][..], &[2, 5][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range, or sizes that do not add up to the dim's size.
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Var<T>>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("split", site)?;
        let n = self.dims()[d];
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(n) {
            return Err(attr_error(
                "split",
                site,
                "split_sizes",
                format!("{sizes:?} do not add up to the size {n} of dim {d}"),
            ));
        }
        self.pieces(sizes, d)
    }

    /// A loop, not a closure, so `narrow` reports the caller's line.
    #[track_caller]
    fn pieces(&self, sizes: &[usize], d: usize) -> Result<Vec<Var<T>>> {
        let mut out = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for &len in sizes {
            out.push(self.narrow(d as isize, start, len)?);
            start += len;
        }
        Ok(out)
    }

    /// At most `chunks` pieces of `ceil(size / chunks)` along `dim` (PyTorch's `chunk`:
    /// fewer pieces when the size runs out first).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::zeros(&[6])?);
    /// assert_eq!(x.chunk(4, 0)?.len(), 3); // pieces of 2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `chunks` 0 or `dim` out of range.
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Var<T>>> {
        let site = Site::caller();
        if chunks == 0 {
            return Err(attr_error(
                "chunk",
                site,
                "chunks",
                "must be at least 1".into(),
            ));
        }
        let d = self.shape().resolve_dim(dim).in_op("chunk", site)?;
        let n = self.dims()[d];
        self.split(n.div_ceil(chunks).max(1), d as isize)
    }

    /// The value reversed along each of `dims` (PyTorch's `flip`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// assert_eq!(x.flip(&[0, 1])?.value().data(), &[4.0, 3.0, 2.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A dim out of range or listed twice.
    #[track_caller]
    pub fn flip(&self, dims: &[isize]) -> Result<Var<T>> {
        let site = Site::caller();
        let mut resolved = Vec::with_capacity(dims.len());
        for &dim in dims {
            let d = self.shape().resolve_dim(dim).in_op("flip", site)?;
            if resolved.contains(&d) {
                return Err(attr_error(
                    "flip",
                    site,
                    "dims",
                    format!("dim {d} appears twice in {dims:?}"),
                ));
            }
            resolved.push(d);
        }
        let mut out = self.clone();
        for d in resolved {
            let n = self.dims()[d];
            let reversed: Vec<i64> = (0..n as i64).rev().collect();
            let index = IntTensor::from_vec(reversed, &[n]).in_op("flip", site)?;
            out = out.index_select(d as isize, &index)?;
        }
        Ok(out)
    }
}
