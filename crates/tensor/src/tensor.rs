use std::fmt;
use std::sync::Arc;

use crate::pool::{self, Buffer};
use crate::{Element, Shape, TensorError, TensorResult};

/// A dense, row-major, immutable-by-default n-d array.
///
/// Cloning is cheap (the buffer is shared); [`Tensor::data_mut`] copies the buffer only
/// when another clone still holds it.
///
/// ```
/// use chainrule_tensor::Tensor;
/// let t = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3])?;
/// assert_eq!(t.dims(), &[3]);
/// # Ok::<(), chainrule_tensor::TensorError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Element> {
    shape: Shape,
    data: Arc<Buffer<T>>,
}

impl<T: Element> Tensor<T> {
    /// True when both tensors share one buffer and shape (a clone, not an equal copy).
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let a = Tensor::<f32>::ones(&[2])?;
    /// assert!(a.same_buffer(&a.clone()));
    /// assert!(!a.same_buffer(&Tensor::ones(&[2])?));
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn same_buffer(&self, other: &Tensor<T>) -> bool {
        Arc::ptr_eq(&self.data, &other.data) && self.shape == other.shape
    }

    /// A tensor from row-major data.
    ///
    /// # Errors
    /// [`TensorError::DataLength`] when `data.len()` is not the product of `dims`;
    /// [`TensorError::TooLarge`] when the dims' product overflows.
    pub fn from_vec(data: Vec<T>, dims: &[usize]) -> TensorResult<Self> {
        let shape = Shape::new(dims)?;
        if shape.numel() != data.len() {
            return Err(TensorError::DataLength {
                expected: shape.numel(),
                got: data.len(),
                shape,
            });
        }
        Ok(Tensor {
            shape,
            data: Arc::new(Buffer(data)),
        })
    }

    /// Internal constructor for kernels whose output length is right by construction.
    pub(crate) fn from_parts(shape: Shape, data: Vec<T>) -> Self {
        debug_assert_eq!(shape.numel(), data.len());
        Tensor {
            shape,
            data: Arc::new(Buffer(data)),
        }
    }

    /// A tensor filled with `value`.
    ///
    /// ```
    /// use chainrule_tensor::{Tensor, TensorError};
    /// let t = Tensor::full(&[2, 2], 3.0f32)?;
    /// assert_eq!(t.data(), &[3.0; 4]);
    /// // A terabyte is a typed error, not an abort.
    /// let e = Tensor::<f32>::full(&[1 << 38], 0.0).unwrap_err();
    /// assert!(matches!(e, TensorError::OutOfMemory { .. }));
    /// # Ok::<(), TensorError>(())
    /// ```
    ///
    /// # Errors
    /// [`TensorError::TooLarge`] when the dims' product overflows;
    /// [`TensorError::OutOfMemory`] when the buffer cannot be allocated.
    pub fn full(dims: &[usize], value: T) -> TensorResult<Self> {
        let shape = Shape::new(dims)?;
        let data = alloc_filled(&shape, value)?;
        Ok(Tensor::from_parts(shape, data))
    }

    /// A tensor of zeros.
    ///
    /// ```
    /// assert_eq!(chainrule_tensor::Tensor::<f32>::zeros(&[3])?.data(), &[0.0; 3]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::full`].
    pub fn zeros(dims: &[usize]) -> TensorResult<Self> {
        Self::full(dims, T::ZERO)
    }

    /// A tensor of ones.
    ///
    /// ```
    /// assert_eq!(chainrule_tensor::Tensor::<f32>::ones(&[2])?.data(), &[1.0; 2]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::full`].
    pub fn ones(dims: &[usize]) -> TensorResult<Self> {
        Self::full(dims, T::ONE)
    }

    /// A scalar (shape `[]`).
    ///
    /// ```
    /// assert_eq!(chainrule_tensor::Tensor::scalar(2.0f64).item(), Some(2.0));
    /// ```
    pub fn scalar(value: T) -> Self {
        Tensor::from_parts(Shape::scalar(), vec![value])
    }

    /// Zeros with the shape of `self` (an allocation as large as one already live).
    ///
    /// ```
    /// let t = chainrule_tensor::Tensor::<f32>::scalar(1.0).zeros_like();
    /// assert_eq!(t.item(), Some(0.0));
    /// ```
    pub fn zeros_like(&self) -> Self {
        Tensor::from_parts(self.shape.clone(), zeroed(self.numel()))
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dims as a slice.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of dims.
    pub fn ndim(&self) -> usize {
        self.shape.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The row-major data.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Mutable data; copies the buffer first if it is shared with another clone.
    ///
    /// ```
    /// let mut t = chainrule_tensor::Tensor::<f32>::zeros(&[2])?;
    /// t.data_mut()[1] = 5.0;
    /// assert_eq!(t.data(), &[0.0, 5.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn data_mut(&mut self) -> &mut [T] {
        Arc::make_mut(&mut self.data).0.as_mut_slice()
    }

    /// The data, writable, when no other tensor shares the buffer; `None` otherwise
    /// (where [`Tensor::data_mut`] would copy).
    pub(crate) fn unique_data(&mut self) -> Option<&mut [T]> {
        Arc::get_mut(&mut self.data).map(|b| b.0.as_mut_slice())
    }

    /// The data as an owned vector (no copy when not shared).
    pub fn into_vec(self) -> Vec<T> {
        match Arc::try_unwrap(self.data) {
            Ok(buffer) => buffer.into_vec(),
            Err(shared) => (*shared).clone().into_vec(),
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Option<T> {
        (self.data.len() == 1).then(|| self.data[0])
    }

    /// Converts every element to another element type.
    ///
    /// ```
    /// let t = chainrule_tensor::Tensor::<f64>::ones(&[2])?.cast::<f32>();
    /// assert_eq!(t.data(), &[1.0f32, 1.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor::from_parts(
            self.shape.clone(),
            collect(
                self.data.len(),
                self.data.iter().map(|v| U::from_f64(v.to_f64())),
            ),
        )
    }

    /// Same data, new shape of equal size (internal: callers check the size).
    pub(crate) fn with_shape(&self, shape: Shape) -> Self {
        debug_assert_eq!(shape.numel(), self.numel());
        Tensor {
            shape,
            data: Arc::clone(&self.data),
        }
    }
}

/// The buffer of a new tensor of `shape`, every element `value`: the one place kernels
/// allocate outputs whose size comes from shapes or attributes, reserving fallibly so
/// an impossible size is [`TensorError::OutOfMemory`] rather than an abort. Like
/// [`zeroed`], it writes every element (no lazily mapped zero pages).
pub(crate) fn alloc_filled<T: Element>(shape: &Shape, value: T) -> TensorResult<Vec<T>> {
    let mut v = alloc_values(shape)?;
    v.resize(shape.numel(), value);
    Ok(v)
}

/// The buffer of a kernel that writes every element itself (a GEMM with `beta = 0`):
/// a pooled buffer as its last tensor left it, else fresh pages the OS zeroes lazily,
/// allocated fallibly. Either way no pass of zeros comes first (that pass cost W3 a
/// third of a step).
pub(crate) fn alloc_overwritten<T: Element>(shape: &Shape) -> TensorResult<Vec<T>> {
    let n = shape.numel();
    if n == 0 {
        return Ok(Vec::new());
    }
    if n.saturating_mul(std::mem::size_of::<T>()) >= pool::MIN_BYTES {
        if let Some(v) = pool::overwritten_if_pooled(n) {
            return Ok(v);
        }
    }
    let oom = || out_of_memory::<T>(shape);
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| oom())?;
    // SAFETY: `layout` has a non-zero size (n > 0 and T is f32 or f64, Element being
    // sealed). The pointer is checked for null. It was allocated by the global
    // allocator with exactly the layout of `[T; n]`, which is what `Vec` with capacity
    // `n` deallocates with, and its `n` elements are initialized: the all-zero bit
    // pattern is `0.0` for f32 and f64.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            return Err(oom());
        }
        Ok(Vec::from_raw_parts(ptr, n, n))
    }
}

/// The error for a refused buffer of `shape`'s elements of type `T` (saturating: an
/// index pair is 16 bytes, past the 8 that `Shape`'s bound assumes).
pub(crate) fn out_of_memory<T>(shape: &Shape) -> TensorError {
    TensorError::OutOfMemory {
        bytes: shape.numel().saturating_mul(std::mem::size_of::<T>()),
        shape: shape.clone(),
    }
}

/// An empty vector with room for `shape`'s elements (values or indices), for kernels
/// that append them.
pub(crate) fn alloc_empty<T>(shape: &Shape) -> TensorResult<Vec<T>> {
    let n = shape.numel();
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory::<T>(shape))?;
    Ok(v)
}

/// An empty vector with room for `shape`'s values: a pooled buffer when one fits
/// ([`crate::pool`]), else a fallible reservation.
pub(crate) fn alloc_values<T: Element>(shape: &Shape) -> TensorResult<Vec<T>> {
    match pool::take(shape.numel()) {
        Some(v) => Ok(v),
        None => alloc_empty(shape),
    }
}

/// The `n` values of `values` in a buffer from [`alloc_values`]'s source, for outputs
/// the size of a live tensor.
pub(crate) fn collect<T: Element>(n: usize, values: impl Iterator<Item = T>) -> Vec<T> {
    let mut v = pool::take(n).unwrap_or_else(|| Vec::with_capacity(n));
    v.extend(values);
    v
}

/// [`alloc_filled`] with zeros.
pub(crate) fn alloc_zeroed<T: Element>(shape: &Shape) -> TensorResult<Vec<T>> {
    alloc_filled(shape, T::ZERO)
}

/// A vector of zeros written element by element, for outputs the size of a live
/// tensor. `vec![0.0; n]` maps the kernel's
/// shared zero page instead, and the first `+=` into each page then faults twice and
/// interrupts every other core to flush its TLB; writing the zeros up front avoids that.
pub(crate) fn zeroed<T: Element>(n: usize) -> Vec<T> {
    let mut v = pool::take(n).unwrap_or_else(|| Vec::with_capacity(n));
    v.resize(n, T::ZERO);
    v
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(
            f,
            "Tensor{} {:?}",
            self.shape,
            &self.data[..self.data.len().min(SHOWN)]
        )?;
        if self.data.len() > SHOWN {
            write!(f, "…")?;
        }
        Ok(())
    }
}
