use std::sync::{Arc, Mutex, PoisonError};

use chainrule_autograd::{Element, IntTensor, Tensor};

/// A buffer's value: floats (running statistics) or integers (`num_batches_tracked`).
#[derive(Clone, Debug, PartialEq)]
pub enum BufferValue<T: Element> {
    /// A float tensor of the model's element type.
    Float(Tensor<T>),
    /// An integer tensor (saved as `I64`, as PyTorch saves it).
    Int(IntTensor),
}

impl<T: Element> BufferValue<T> {
    /// The extents.
    pub fn dims(&self) -> &[usize] {
        match self {
            BufferValue::Float(t) => t.dims(),
            BufferValue::Int(t) => t.dims(),
        }
    }
}

/// Module state that is saved and loaded with the parameters but not trained (PyTorch's
/// `register_buffer`): BatchNorm's running statistics. Clones share one value; like
/// [`chainrule_autograd::Param`], every change swaps a whole new value in, so a module
/// used from several threads never sees a half-written buffer.
///
/// ```
/// use chainrule_autograd::Tensor;
/// use chainrule_nn::Buffer;
/// let b = Buffer::new(Tensor::<f32>::zeros(&[3])?);
/// let alias = b.clone();
/// b.set_float(Tensor::ones(&[3])?);
/// assert_eq!(alias.float().unwrap().data(), &[1.0; 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Buffer<T: Element = f32> {
    value: Arc<Mutex<BufferValue<T>>>,
}

impl<T: Element> Buffer<T> {
    /// A float buffer.
    pub fn new(value: Tensor<T>) -> Self {
        Buffer {
            value: Arc::new(Mutex::new(BufferValue::Float(value))),
        }
    }

    /// An integer buffer.
    ///
    /// ```
    /// use chainrule_autograd::IntTensor;
    /// let n = chainrule_nn::Buffer::<f32>::new_int(IntTensor::from(vec![0]));
    /// assert_eq!(n.int().unwrap().data(), &[0]);
    /// ```
    pub fn new_int(value: IntTensor) -> Self {
        Buffer {
            value: Arc::new(Mutex::new(BufferValue::Int(value))),
        }
    }

    /// A snapshot of the value.
    pub fn get(&self) -> BufferValue<T> {
        // the lock guards a whole value swapped in at once: never half-written
        self.value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The float value, or `None` for an integer buffer.
    pub fn float(&self) -> Option<Tensor<T>> {
        match self.get() {
            BufferValue::Float(t) => Some(t),
            BufferValue::Int(_) => None,
        }
    }

    /// The integer value, or `None` for a float buffer.
    pub fn int(&self) -> Option<IntTensor> {
        match self.get() {
            BufferValue::Int(t) => Some(t),
            BufferValue::Float(_) => None,
        }
    }

    /// Replaces the value.
    pub fn set(&self, value: BufferValue<T>) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }

    /// Replaces the value with a float tensor.
    pub fn set_float(&self, value: Tensor<T>) {
        self.set(BufferValue::Float(value));
    }

    /// Replaces the value with an integer tensor.
    pub fn set_int(&self, value: IntTensor) {
        self.set(BufferValue::Int(value));
    }
}
