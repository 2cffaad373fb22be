use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::{Element, Shape, Tensor, TensorError, TensorResult};

/// A dense, row-major array of `i64` (PyTorch's `LongTensor`): class labels, the
/// indices of `gather` and `index_select`, embedding ids, the result of `argmax`, and
/// the condition of `where` (non-zero is true). Cloning is cheap (the buffer is shared).
///
/// ```
/// use chainrule_tensor::IntTensor;
/// let ids = IntTensor::from_vec(vec![3, 0, 2, 2], &[2, 2])?;
/// assert_eq!(ids.dims(), &[2, 2]);
/// assert_eq!(ids.data(), &[3, 0, 2, 2]);
/// let labels = IntTensor::from_labels(&[1, 7]);
/// assert_eq!(labels.dims(), &[2]);
/// # Ok::<(), chainrule_tensor::TensorError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IntTensor {
    shape: Shape,
    data: Arc<Vec<i64>>,
}

impl IntTensor {
    /// An integer tensor from row-major data.
    ///
    /// # Errors
    /// [`TensorError::DataLength`] when `data.len()` is not the product of `dims`;
    /// [`TensorError::TooLarge`] when the dims' product overflows.
    pub fn from_vec(data: Vec<i64>, dims: &[usize]) -> TensorResult<Self> {
        let shape = Shape::new(dims)?;
        if shape.numel() != data.len() {
            return Err(TensorError::DataLength {
                expected: shape.numel(),
                got: data.len(),
                shape,
            });
        }
        Ok(IntTensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// A 1-D tensor of class labels (or any non-negative indices).
    ///
    /// ```
    /// let l = chainrule_tensor::IntTensor::from_labels(&[4, 2]);
    /// assert_eq!(l.data(), &[4, 2]);
    /// ```
    pub fn from_labels(labels: &[usize]) -> Self {
        // a slice holds at most isize::MAX bytes, so every length fits a 1-D shape, and
        // saturating keeps an impossible label > i64::MAX out of range rather than wrapped
        let data: Vec<i64> = labels
            .iter()
            .map(|&l| i64::try_from(l).unwrap_or(i64::MAX))
            .collect();
        let n = data.len();
        IntTensor {
            shape: Shape::new(&[n]).expect("a slice's length is a valid 1-D shape"),
            data: Arc::new(data),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The extents.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The values, row-major.
    pub fn data(&self) -> &[i64] {
        &self.data
    }

    /// The same values under another shape of the same size.
    ///
    /// ```
    /// let t = chainrule_tensor::IntTensor::from_vec(vec![1, 2, 3, 4], &[4])?;
    /// assert_eq!(t.reshape(&[2, 2])?.dims(), &[2, 2]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::DataLength`] when the sizes differ.
    pub fn reshape(&self, dims: &[usize]) -> TensorResult<Self> {
        let shape = Shape::new(dims)?;
        if shape.numel() != self.numel() {
            return Err(TensorError::DataLength {
                expected: shape.numel(),
                got: self.numel(),
                shape,
            });
        }
        Ok(IntTensor {
            shape,
            data: self.data.clone(),
        })
    }

    /// The values as floats (0/1 masks from conditions, labels as numbers).
    ///
    /// ```
    /// let m = chainrule_tensor::IntTensor::from_vec(vec![0, 3], &[2])?.to_float::<f32>();
    /// assert_eq!(m.data(), &[0.0, 3.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn to_float<T: Element>(&self) -> Tensor<T> {
        Tensor::from_parts(
            self.shape.clone(),
            self.data.iter().map(|&v| T::from_f64(v as f64)).collect(),
        )
    }

    /// Every value as an index into `0..bound` along dim `dim` of the indexed tensor.
    ///
    /// ```
    /// let t = chainrule_tensor::IntTensor::from_vec(vec![1, 5], &[2])?;
    /// assert_eq!(t.indices(6, 0)?, vec![1, 5]);
    /// assert!(t.indices(5, 0).unwrap_err().to_string().contains("index 5 at position [1]"));
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::IndexOutOfRange`] naming the first value outside `0..bound`, its
    /// position and the bound.
    pub fn indices(&self, bound: usize, dim: usize) -> TensorResult<Vec<usize>> {
        self.data
            .iter()
            .enumerate()
            .map(|(k, &v)| match usize::try_from(v) {
                Ok(i) if i < bound => Ok(i),
                _ => Err(TensorError::IndexOutOfRange {
                    index: v,
                    position: self.shape.unravel(k),
                    bound,
                    dim,
                }),
            })
            .collect()
    }
}

impl From<Vec<i64>> for IntTensor {
    /// A 1-D tensor.
    fn from(data: Vec<i64>) -> Self {
        let n = data.len();
        IntTensor {
            shape: Shape::new(&[n]).expect("a Vec's length is a valid 1-D shape"),
            data: Arc::new(data),
        }
    }
}

impl fmt::Debug for IntTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<i64> = self.data.iter().take(8).copied().collect();
        write!(f, "IntTensor{} {:?}", self.shape, shown)?;
        if self.numel() > 8 {
            write!(f, " …")?;
        }
        Ok(())
    }
}

/// Anything that can serve as integer labels or indices: an [`IntTensor`], or `usize`
/// values in a slice, array or `Vec` (1-D), so `x.cross_entropy(&[0, 3], r)` and
/// `x.cross_entropy(&labels_tensor, r)` both read naturally.
///
/// ```
/// use chainrule_tensor::{AsIntTensor, IntTensor};
/// assert_eq!(vec![2usize, 1].as_int_tensor().data(), &[2, 1]);
/// let t = IntTensor::from(vec![-100, 4]);
/// assert_eq!(t.as_int_tensor().data(), &[-100, 4]);
/// ```
pub trait AsIntTensor {
    /// The values as an integer tensor (borrowed when they already are one).
    fn as_int_tensor(&self) -> Cow<'_, IntTensor>;
}

impl AsIntTensor for IntTensor {
    fn as_int_tensor(&self) -> Cow<'_, IntTensor> {
        Cow::Borrowed(self)
    }
}

impl AsIntTensor for [usize] {
    fn as_int_tensor(&self) -> Cow<'_, IntTensor> {
        Cow::Owned(IntTensor::from_labels(self))
    }
}

impl<const N: usize> AsIntTensor for [usize; N] {
    fn as_int_tensor(&self) -> Cow<'_, IntTensor> {
        Cow::Owned(IntTensor::from_labels(self))
    }
}

impl AsIntTensor for Vec<usize> {
    fn as_int_tensor(&self) -> Cow<'_, IntTensor> {
        Cow::Owned(IntTensor::from_labels(self))
    }
}
