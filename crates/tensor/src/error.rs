use crate::Shape;

/// What went wrong inside a kernel. The autograd layer wraps it with the op's name and
/// the caller's source line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// The shapes of the operands do not fit together.
    #[error("{0}")]
    Shape(String),
    /// A dimension index outside `-ndim..ndim`.
    #[error("dim {dim} is out of range for a tensor of shape {shape} ({ndim} dims)")]
    DimOutOfRange {
        /// The dimension asked for.
        dim: isize,
        /// The tensor's number of dimensions.
        ndim: usize,
        /// The tensor's shape.
        shape: Shape,
    },
    /// An attribute (stride, kernel size, groups, ...) has a value the op cannot use.
    #[error("invalid {attr}: {reason}")]
    Attr {
        /// The attribute's name, as PyTorch spells it.
        attr: &'static str,
        /// Why its value is rejected.
        reason: String,
    },
    /// A class label outside `0..classes` (and not the ignored index).
    #[error("label {label} at index {index} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The offending label.
        label: i64,
        /// Its position in the label list.
        index: usize,
        /// The number of classes.
        classes: usize,
    },
    /// An index (of `gather`, `index_select`, `embedding`, ...) outside `0..bound`.
    #[error("index {index} at position {position:?} is outside 0..{bound} (dim {dim} of the indexed tensor)")]
    IndexOutOfRange {
        /// The offending value.
        index: i64,
        /// Its position in the index tensor.
        position: Vec<usize>,
        /// The extent of the indexed dim.
        bound: usize,
        /// The indexed dim.
        dim: usize,
    },
    /// A reduction over no elements, which has no value (mean, max, logsumexp).
    #[error("reduction over zero elements (shape {shape})")]
    EmptyReduction {
        /// The input's shape.
        shape: Shape,
    },
    /// A shape whose element count (the product of its non-zero dims) exceeds
    /// [`Shape::MAX_NUMEL`], so its byte size would not fit in `isize`.
    #[error("shape {dims:?} is too large: the product of its non-zero dims exceeds {max} elements", max = Shape::MAX_NUMEL)]
    TooLarge {
        /// The dims asked for.
        dims: Vec<usize>,
    },
    /// The allocator refused a buffer (the process keeps running; PyTorch raises here too).
    #[error("out of memory: cannot allocate {bytes} bytes for a tensor of shape {shape}")]
    OutOfMemory {
        /// Bytes requested.
        bytes: usize,
        /// The shape of the tensor being allocated.
        shape: Shape,
    },
    /// The data length does not match the shape.
    #[error("data has {got} elements but shape {shape} needs {expected}")]
    DataLength {
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        got: usize,
        /// The shape asked for.
        shape: Shape,
    },
}

/// Result of a tensor kernel.
pub type TensorResult<T> = Result<T, TensorError>;

/// Builds a [`TensorError::Shape`] from a format string.
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::TensorError::Shape(format!($($arg)*)) };
}
pub(crate) use shape_err;

/// Builds a [`TensorError::Attr`].
pub(crate) fn attr_err(attr: &'static str, reason: impl Into<String>) -> TensorError {
    TensorError::Attr {
        attr,
        reason: reason.into(),
    }
}
