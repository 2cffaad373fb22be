//! Reshapes and data movement: reshape, permute/transpose, broadcast_to, concat, narrow.

use super::{broadcast_strides, for_each_offset};
use crate::error::{attr_err, shape_err};
use crate::pool;
use crate::tensor::{alloc_filled, alloc_values, alloc_zeroed};
use crate::{Element, Shape, Tensor, TensorResult};

impl<T: Element> Tensor<T> {
    /// Same data, new shape; one entry may be `-1` (inferred).
    ///
    /// ```
    /// let t = chainrule_tensor::Tensor::<f32>::zeros(&[2, 6])?.reshape(&[3, -1])?;
    /// assert_eq!(t.dims(), &[3, 4]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// More than one `-1`, a negative extent, or a size that differs from the input's.
    pub fn reshape(&self, dims: &[isize]) -> TensorResult<Tensor<T>> {
        let shape = self.infer_shape(dims)?;
        Ok(self.with_shape(shape))
    }

    fn infer_shape(&self, dims: &[isize]) -> TensorResult<Shape> {
        let mut infer = None;
        let mut known = 1usize;
        for (i, &d) in dims.iter().enumerate() {
            match d {
                -1 if infer.is_none() => infer = Some(i),
                -1 => return Err(attr_err("shape", format!("{dims:?} has more than one -1"))),
                d if d < 0 => {
                    return Err(attr_err("shape", format!("{dims:?} has a negative extent")))
                }
                d => {
                    known = known.checked_mul(d as usize).ok_or_else(|| {
                        shape_err!("cannot reshape {} to {dims:?}: too large", self.shape())
                    })?
                }
            }
        }
        let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(shape_err!(
                    "cannot reshape {} ({} elements) to {dims:?}",
                    self.shape(),
                    self.numel()
                ));
            }
            out[i] = self.numel() / known;
        }
        let shape = Shape::new(&out)?;
        if shape.numel() != self.numel() {
            return Err(shape_err!(
                "cannot reshape {} ({} elements) to {dims:?}",
                self.shape(),
                self.numel()
            ));
        }
        Ok(shape)
    }

    /// Reorders the dims: output dim `i` is input dim `perm[i]` (perm resolved).
    ///
    /// # Errors
    /// `perm` is not a permutation of `0..ndim`.
    pub fn permute(&self, perm: &[usize]) -> TensorResult<Tensor<T>> {
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        if perm.len() != nd
            || perm
                .iter()
                .any(|&p| p >= nd || std::mem::replace(&mut seen[p], true))
        {
            return Err(attr_err(
                "dims",
                format!(
                    "{perm:?} is not a permutation of the {nd} dims of {}",
                    self.shape()
                ),
            ));
        }
        let strides = self.shape().strides();
        let out_dims: Vec<usize> = perm.iter().map(|&p| self.dims()[p]).collect();
        let src_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
        let src = self.data();
        let mut out = pool::overwritten(self.numel()); // every element written
        for_each_offset(&out_dims, [&src_strides], |i, [o]| out[i] = src[o]);
        Ok(Tensor::from_parts(Shape::new(&out_dims)?, out))
    }

    /// Swaps two (resolved) dims.
    ///
    /// # Errors
    /// A dim out of range.
    pub fn transpose(&self, d0: usize, d1: usize) -> TensorResult<Tensor<T>> {
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        if d0 >= perm.len() || d1 >= perm.len() {
            return Err(attr_err(
                "dim",
                format!("({d0}, {d1}) out of range for {}", self.shape()),
            ));
        }
        perm.swap(d0, d1);
        self.permute(&perm)
    }

    /// Repeats the data to fill a larger shape under NumPy broadcasting rules.
    ///
    /// # Errors
    /// `self`'s shape does not broadcast to `dims`.
    pub fn broadcast_to(&self, dims: &[usize]) -> TensorResult<Tensor<T>> {
        let target = Shape::new(dims)?;
        if target.ndim() < self.ndim() || self.shape().broadcast(&target)? != target {
            return Err(shape_err!(
                "cannot broadcast {} to {}",
                self.shape(),
                target
            ));
        }
        if &target == self.shape() {
            return Ok(self.clone());
        }
        if let Some(v) = self.item() {
            // the backward of every full reduction lands here: a fill, not a strided walk
            return Ok(Tensor::from_parts(
                target.clone(),
                alloc_filled(&target, v)?,
            ));
        }
        let ss = broadcast_strides(self.shape(), target.ndim());
        let src = self.data();
        let mut out = alloc_zeroed(&target)?;
        for_each_offset(dims, [&ss], |i, [o]| out[i] = src[o]);
        Ok(Tensor::from_parts(target, out))
    }

    /// Joins tensors along a (resolved) dim; all other dims must agree.
    ///
    /// # Errors
    /// No tensors, differing ranks, or differing extents off `dim`.
    pub fn concat(parts: &[&Tensor<T>], dim: usize) -> TensorResult<Tensor<T>> {
        let first = parts
            .first()
            .ok_or_else(|| attr_err("tensors", "concat needs at least one tensor"))?;
        if dim >= first.ndim() {
            return Err(attr_err(
                "dim",
                format!("{dim} out of range for {}", first.shape()),
            ));
        }
        let mut dims = first.dims().to_vec();
        dims[dim] = 0;
        for p in parts {
            let ok = p.ndim() == first.ndim()
                && (0..p.ndim()).all(|d| d == dim || p.dims()[d] == first.dims()[d]);
            if !ok {
                let shapes: Vec<String> = parts.iter().map(|p| p.shape().to_string()).collect();
                return Err(shape_err!(
                    "shapes {} differ off dim {dim}",
                    shapes.join(", ")
                ));
            }
            dims[dim] = dims[dim]
                .checked_add(p.dims()[dim])
                .ok_or_else(|| shape_err!("concatenated extent along dim {dim} overflows"))?;
        }
        let shape = Shape::new(&dims)?;
        let outer: usize = dims[..dim].iter().product();
        let mut out = alloc_values(&shape)?;
        // an empty result can still have a huge `outer` (`[2^40, 0]`): no loop over it
        let outer = if shape.numel() == 0 { 0 } else { outer };
        for o in 0..outer {
            for p in parts {
                let row = p.numel() / outer.max(1);
                out.extend_from_slice(&p.data()[o * row..(o + 1) * row]);
            }
        }
        Ok(Tensor::from_parts(shape, out))
    }

    /// The slice `start..start+length` of a (resolved) dim.
    ///
    /// # Errors
    /// `dim` out of range, or the range runs past the dim's extent.
    pub fn narrow(&self, dim: usize, start: usize, length: usize) -> TensorResult<Tensor<T>> {
        let extent = *self
            .dims()
            .get(dim)
            .ok_or_else(|| crate::TensorError::DimOutOfRange {
                dim: isize::try_from(dim).unwrap_or(isize::MAX),
                ndim: self.ndim(),
                shape: self.shape().clone(),
            })?;
        if start.checked_add(length).is_none_or(|end| end > extent) {
            return Err(attr_err(
                "start",
                format!(
                    "range {start}..{} exceeds dim {dim} of extent {extent} in {}",
                    start.saturating_add(length),
                    self.shape()
                ),
            ));
        }
        let outer: usize = self.dims()[..dim].iter().product();
        let inner: usize = self.dims()[dim + 1..].iter().product();
        let mut dims = self.dims().to_vec();
        dims[dim] = length;
        let shape = Shape::new(&dims)?;
        let mut out = alloc_values(&shape)?;
        let outer = if shape.numel() == 0 { 0 } else { outer };
        for o in 0..outer {
            let base = (o * extent + start) * inner;
            out.extend_from_slice(&self.data()[base..base + length * inner]);
        }
        Ok(Tensor::from_parts(shape, out))
    }

    /// The inverse of [`Tensor::narrow`]: places `self` at `start` along `dim` inside zeros
    /// of `full` shape.
    ///
    /// # Errors
    /// `self` does not fit inside `full` at `start`.
    pub fn unnarrow(&self, full: &Shape, dim: usize, start: usize) -> TensorResult<Tensor<T>> {
        self.check_fits(full, dim, start)?;
        let mut out = Tensor::from_parts(full.clone(), alloc_zeroed(full)?);
        out.for_each_narrowed(self, dim, start, |dst, src| dst.copy_from_slice(src));
        Ok(out)
    }

    /// Adds `part` into the slice of `dim` at `start` of `self`, in place: what
    /// `self += part.unnarrow(self.shape(), dim, start)` gives, without the zeros.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let mut t = Tensor::<f32>::ones(&[2, 3])?;
    /// t.add_narrowed(&Tensor::ones(&[2, 1])?, 1, 2)?;
    /// assert_eq!(t.data(), &[1.0, 1.0, 2.0, 1.0, 1.0, 2.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `part` does not fit inside `self` at `start`.
    pub fn add_narrowed(&mut self, part: &Tensor<T>, dim: usize, start: usize) -> TensorResult<()> {
        part.check_fits(self.shape(), dim, start)?;
        self.for_each_narrowed(part, dim, start, |dst, src| {
            dst.iter_mut().zip(src).for_each(|(a, &b)| *a += b)
        });
        Ok(())
    }

    /// Calls `f(region of self, matching run of part)` for each contiguous run of the
    /// slice `start..` of `dim`; `part` must fit (checked by the callers).
    fn for_each_narrowed(
        &mut self,
        part: &Tensor<T>,
        dim: usize,
        start: usize,
        mut f: impl FnMut(&mut [T], &[T]),
    ) {
        let length = part.dims()[dim];
        let extent = self.dims()[dim];
        let outer: usize = self.dims()[..dim].iter().product();
        let inner: usize = self.dims()[dim + 1..].iter().product();
        let run = length * inner;
        // an empty part can still have a huge `outer` (`[2^40, 0]`): no loop over it
        let outer = if part.numel() == 0 { 0 } else { outer };
        let out = self.data_mut();
        for o in 0..outer {
            let dst = (o * extent + start) * inner;
            f(
                &mut out[dst..dst + run],
                &part.data()[o * run..(o + 1) * run],
            );
        }
    }

    /// Fails unless `self` fits inside `full` at `start` of `dim`.
    fn check_fits(&self, full: &Shape, dim: usize, start: usize) -> TensorResult<()> {
        let length = self.dims().get(dim).copied().unwrap_or(0);
        let fits = full.ndim() == self.ndim()
            && dim < full.ndim()
            && (0..full.ndim()).all(|d| {
                if d == dim {
                    start
                        .checked_add(length)
                        .is_some_and(|end| end <= full.dims()[d])
                } else {
                    full.dims()[d] == self.dims()[d]
                }
            });
        if !fits {
            return Err(shape_err!(
                "{} does not fit in {} at {start} along dim {dim}",
                self.shape(),
                full
            ));
        }
        Ok(())
    }
}
