//! Gathering and scattering by flat element positions: the arg-max routing of `max`
//! and max pooling, and the label picking of `nll_loss`, in a form whose adjoint is the
//! other kernel (so their gradients can be differentiated again).

use crate::error::shape_err;
use crate::tensor::{alloc_empty, alloc_zeroed};
use crate::{Element, Shape, Tensor, TensorResult};

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
        let mut out = alloc_empty(dims)?;
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
