use std::fmt;

use smallvec::SmallVec;

use crate::{TensorError, TensorResult};

/// The extents of a tensor, outermost first. Up to six dims live inline.
#[derive(Eq, Default)]
pub struct Shape(SmallVec<[usize; 6]>);

// Every tensor clone clones its shape, and backward compares shapes per contribution:
// both are hot on small-op workloads (W6), so they copy and compare the dims directly
// instead of going through smallvec's element-wise `extend` and a `memcmp` call.
impl Clone for Shape {
    #[inline]
    fn clone(&self) -> Self {
        Shape(SmallVec::from_slice(&self.0))
    }
}

impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl PartialEq for Shape {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }
}

impl Shape {
    /// The most elements a shape may describe: its byte size must fit in `isize` for
    /// the widest element type (8 bytes), as Rust's allocations require.
    pub const MAX_NUMEL: usize = isize::MAX as usize / 8;

    /// A shape from its dims.
    ///
    /// The product of the non-zero dims must be at most [`Shape::MAX_NUMEL`]; that bounds
    /// the element count, every stride and every partial product, so no size derived from
    /// a `Shape` can overflow (a zero dim does not hide a huge one: `[0, 2^63, 2]` is
    /// rejected too).
    ///
    /// ```
    /// use chainrule_tensor::Shape;
    /// let s = Shape::new(&[2, 3])?;
    /// assert_eq!(s.numel(), 6);
    /// assert!(Shape::new(&[1 << 63, 2]).is_err());
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::TooLarge`] when the product overflows the bound.
    pub fn new(dims: &[usize]) -> TensorResult<Self> {
        let mut total = 1usize;
        for &d in dims.iter().filter(|&&d| d != 0) {
            total = match total.checked_mul(d) {
                Some(t) if t <= Self::MAX_NUMEL => t,
                _ => {
                    return Err(TensorError::TooLarge {
                        dims: dims.to_vec(),
                    })
                }
            };
        }
        Ok(Shape(SmallVec::from_slice(dims)))
    }

    /// The shape `[]` of a scalar.
    ///
    /// ```
    /// assert_eq!(chainrule_tensor::Shape::scalar().numel(), 1);
    /// ```
    pub fn scalar() -> Self {
        Shape(SmallVec::new())
    }

    /// The dims as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dims.
    pub fn ndim(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar shape `[]`). Cannot overflow: construction
    /// bounded it by [`Shape::MAX_NUMEL`].
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides, in elements. Each is a product of non-zero dims of a valid
    /// shape, so none overflows.
    pub fn strides(&self) -> SmallVec<[usize; 6]> {
        let mut s = SmallVec::from_elem(1, self.0.len());
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1].max(1);
        }
        s
    }

    /// The multi-index of flat (row-major) position `k`.
    ///
    /// ```
    /// let s = chainrule_tensor::Shape::new(&[2, 3])?;
    /// assert_eq!(s.unravel(4), vec![1, 1]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn unravel(&self, mut k: usize) -> Vec<usize> {
        let mut index = vec![0; self.ndim()];
        for (slot, &d) in index.iter_mut().zip(self.0.iter()).rev() {
            if d > 0 {
                *slot = k % d;
                k /= d;
            }
        }
        index
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
        let mut out: SmallVec<[usize; 6]> = SmallVec::from_elem(0, n);
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
        // Each extent is one of the operands', but their combination may be larger.
        Shape::new(&out)
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

impl TryFrom<&[usize]> for Shape {
    type Error = TensorError;
    fn try_from(d: &[usize]) -> TensorResult<Self> {
        Shape::new(d)
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
