use std::cell::{Ref, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use chainrule_tensor::{Element, Tensor};

/// Identity of a [`Param`]; gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

/// A trainable value that lives outside any tape and persists across steps.
///
/// Clones share the same value and identity: a module that holds a `Param` and is used
/// three times in a forward pass records three uses of one parameter, and backward
/// delivers their sum.
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// let w = Param::new(Tensor::<f32>::zeros(&[2, 2])?);
/// w.update(|t| t.data_mut()[0] = 1.0);
/// assert_eq!(w.value().data()[0], 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Param<T: Element = f32> {
    id: ParamId,
    value: Rc<RefCell<Tensor<T>>>,
}

impl<T: Element> Param<T> {
    /// A new parameter with a fresh identity.
    pub fn new(value: Tensor<T>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Param {
            id: ParamId(NEXT.fetch_add(1, Ordering::Relaxed)),
            value: Rc::new(RefCell::new(value)),
        }
    }

    /// This parameter's identity.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// The current value (a cheap clone sharing the buffer).
    pub fn value(&self) -> Tensor<T> {
        self.value.borrow().clone()
    }

    /// Borrows the current value without cloning.
    pub fn borrow(&self) -> Ref<'_, Tensor<T>> {
        self.value.borrow()
    }

    /// Replaces the value.
    pub fn set(&self, value: Tensor<T>) {
        *self.value.borrow_mut() = value;
    }

    /// Changes the value in place (optimizers use this).
    pub fn update<R>(&self, f: impl FnOnce(&mut Tensor<T>) -> R) -> R {
        f(&mut self.value.borrow_mut())
    }

    /// The value's dims.
    pub fn dims(&self) -> Vec<usize> {
        self.value.borrow().dims().to_vec()
    }
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, {:?})", self.id, self.value.borrow())
    }
}
