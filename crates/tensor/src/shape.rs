use std::fmt;

use smallvec::SmallVec;

use crate::{TensorError, TensorResult};

/// The extents of a tensor, outermost first. Up to six dims live inline.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(SmallVec<[usize; 6]>);

impl Shape {
    /// A shape from its dims.
    ///
    /// ```
    /// let s = chainrule_tensor::Shape::new(&[2, 3]);
    /// assert_eq!(s.numel(), 6);
    /// ```
    pub fn new(dims: &[usize]) -> Self {
        Shape(SmallVec::from_slice(dims))
    }

    /// The dims as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dims.
    pub fn ndim(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar shape `[]`).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides, in elements.
    pub fn strides(&self) -> SmallVec<[usize; 6]> {
        let mut s = SmallVec::from_elem(1, self.0.len());
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }

    /// Resolves a possibly negative dim (`-1` is the last) against this shape.
    ///
    /// # Errors
    /// [`TensorError::DimOutOfRange`] when `dim` is outside `-ndim..ndim`.
    pub fn resolve_dim(&self, dim: isize) -> TensorResult<usize> {
        let n = self.ndim() as isize;
        let d = if dim < 0 { dim + n } else { dim };
        if d < 0 || d >= n {
            return Err(TensorError::DimOutOfRange {
                dim,
                ndim: self.ndim(),
                shape: self.clone(),
            });
        }
        Ok(d as usize)
    }

    /// The NumPy broadcast of two shapes: align from the right; each pair of extents
    /// must be equal or one of them 1.
    ///
    /// # Errors
    /// [`TensorError::Shape`] when some pair differs and neither is 1.
    pub fn broadcast(&self, other: &Shape) -> TensorResult<Shape> {
        let n = self.ndim().max(other.ndim());
        let mut out = SmallVec::from_elem(0, n);
        for i in 0..n {
            let a = self.dim_from_right(n - 1 - i);
            let b = other.dim_from_right(n - 1 - i);
            out[i] = match (a, b) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => {
                    return Err(crate::error::shape_err!(
                        "shapes {self} and {other} do not broadcast (dim {i} of the result: {a} vs {b})"
                    ))
                }
            };
        }
        Ok(Shape(out))
    }

    /// Extent of the dim `k` places from the right, 1 past the left end.
    fn dim_from_right(&self, k: usize) -> usize {
        if k < self.ndim() {
            self.0[self.ndim() - 1 - k]
        } else {
            1
        }
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(&d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_slice())
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
