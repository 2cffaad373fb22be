use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chainrule_tensor::{Element, Tensor};

use crate::hooks::{GradHook, ParamHooks, PostHook};
use crate::Site;

/// Identity of a [`Param`]; gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

/// A trainable value that lives outside any tape and persists across steps.
///
/// Clones share the same value and identity: a module that holds a `Param` and is used
/// three times in a forward pass records three uses of one parameter, and backward
/// delivers their sum.
///
/// Values are immutable snapshots: [`Param::value`] hands out a cheap clone sharing
/// the buffer, and every change swaps a whole new value in. So holding a value while
/// an optimizer steps, reading a parameter inside [`Param::update`], or using one
/// model from several threads can neither panic nor see a half-updated tensor;
/// `Param` is `Send + Sync`.
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// let w = Param::new(Tensor::<f32>::zeros(&[2, 2])?);
/// let before = w.value();
/// w.update(|t| t.data_mut()[0] = 1.0);
/// assert_eq!(w.value().data()[0], 1.0);
/// assert_eq!(before.data()[0], 0.0); // a snapshot never changes
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Param<T: Element = f32> {
    id: ParamId,
    value: Arc<Mutex<Tensor<T>>>,
    hooks: Arc<HookSlot<T>>,
    requires_grad: Arc<AtomicBool>,
}

/// A parameter's hooks, with their count readable without the lock: backward checks
/// every parameter, and almost none has hooks.
struct HookSlot<T: Element> {
    count: AtomicUsize,
    list: Mutex<ParamHooks<T>>,
}

impl<T: Element> Param<T> {
    /// A new parameter with a fresh identity.
    pub fn new(value: Tensor<T>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Param {
            id: ParamId(NEXT.fetch_add(1, Ordering::Relaxed)),
            value: Arc::new(Mutex::new(value)),
            hooks: Arc::new(HookSlot {
                count: AtomicUsize::new(0),
                list: Mutex::new(ParamHooks::default()),
            }),
            requires_grad: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether tapes record this parameter (true unless frozen).
    pub fn requires_grad(&self) -> bool {
        self.requires_grad.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes the parameter for every clone: a frozen
    /// parameter enters tapes as a constant, so backward computes no gradient for it
    /// and nothing upstream of it only (PyTorch's `requires_grad_(False)`).
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let w = Param::new(Tensor::<f64>::ones(&[2])?);
    /// w.set_requires_grad(false);
    /// let tape = Tape::new();
    /// let x = tape.leaf(Tensor::ones(&[2])?);
    /// let grads = (&tape.param(&w) * &x)?.sum().backward()?;
    /// assert!(grads.get(&w).is_none());
    /// assert_eq!(grads.wrt(&x).unwrap().data(), &[1.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_requires_grad(&self, requires_grad: bool) {
        self.requires_grad.store(requires_grad, Ordering::Relaxed);
    }

    fn hooks(&self) -> MutexGuard<'_, ParamHooks<T>> {
        // as `slot`: the lock is held only to push or clone hook handles
        self.hooks
            .list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// True when a hook of either kind is registered.
    pub(crate) fn has_hooks(&self) -> bool {
        self.hooks.count.load(Ordering::Acquire) > 0
    }

    /// Registers a hook that every backward pass calls with this parameter's gradient
    /// (summed over its uses on that tape): `None` keeps it, `Some(g)` replaces it
    /// (PyTorch's `param.register_hook`). Hooks run in registration order and are
    /// shared by the parameter's clones. They apply on every tape the parameter is
    /// brought onto ([`crate::Tape::param`]) after registration: register them when the
    /// model is built, so the tape of each step need not look for hooks.
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0], &[1])?);
    /// w.register_hook(|g| Some(g.map(|v| v.clamp(-1.0, 1.0)))); // clip by value
    /// let tape = Tape::new();
    /// let grads = tape.param(&w).square().sum().backward()?;
    /// assert_eq!(grads.get(&w).unwrap().data(), &[1.0]); // 6 clipped to 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A replacement of another shape makes backward fail with
    /// [`crate::Error::HookShape`], naming the line that registered the hook.
    #[track_caller]
    pub fn register_hook(
        &self,
        hook: impl Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    ) {
        let site = Site::caller();
        self.hooks().grad.push((site, Arc::new(hook)));
        self.hooks.count.fetch_add(1, Ordering::Release);
    }

    /// Registers a hook that [`crate::Var::backward`] calls once this parameter's
    /// gradient is final in that pass — every use summed, every gradient hook applied —
    /// before backward goes on to earlier records (PyTorch's
    /// `register_post_accumulate_grad_hook`; where data-parallel training launches the
    /// all-reduce of a gradient bucket while backward continues). Like
    /// [`Param::register_hook`], it applies on tapes that bring the parameter in after
    /// registration.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0], &[1])?);
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// w.register_post_accumulate_grad_hook(move |g| log.lock().unwrap().push(g.data()[0]));
    /// let tape = Tape::new();
    /// let wv = tape.param(&w);
    /// (&wv * &wv)?.sum().backward()?; // two uses, one final gradient
    /// assert_eq!(*seen.lock().unwrap(), vec![6.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_post_accumulate_grad_hook(
        &self,
        hook: impl Fn(&Tensor<T>) + Send + Sync + 'static,
    ) {
        self.hooks().post.push(Arc::new(hook));
        self.hooks.count.fetch_add(1, Ordering::Release);
    }

    /// The gradient hooks, cloned out so none runs under the lock.
    pub(crate) fn grad_hooks(&self) -> Vec<(Site, GradHook<T>)> {
        self.hooks().grad.clone()
    }

    /// The post-accumulate hooks, cloned out so none runs under the lock.
    pub(crate) fn post_hooks(&self) -> Vec<PostHook<T>> {
        self.hooks().post.clone()
    }

    /// The lock is held only to clone or swap a `Tensor` (no user code runs under it),
    /// so it cannot be poisoned by a panic of ours; a poisoned lock still holds a whole
    /// tensor, so it is used as is rather than turned into a panic.
    fn slot(&self) -> MutexGuard<'_, Tensor<T>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This parameter's identity.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// The current value: a snapshot sharing the buffer, unaffected by later updates.
    pub fn value(&self) -> Tensor<T> {
        self.slot().clone()
    }

    /// Replaces the value.
    pub fn set(&self, value: Tensor<T>) {
        *self.slot() = value;
    }

    /// Stores `value` and returns the value it replaces. Optimizers write each new value
    /// into a buffer of their own and swap it in, then reuse the returned one next step,
    /// so an update never copies and never shows a half-written tensor.
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tensor};
    /// let w = Param::new(Tensor::<f32>::zeros(&[2])?);
    /// let old = w.replace(Tensor::ones(&[2])?);
    /// assert_eq!((old.data(), w.value().data()), (&[0.0; 2][..], &[1.0; 2][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace(&self, value: Tensor<T>) -> Tensor<T> {
        std::mem::replace(&mut *self.slot(), value)
    }

    /// Changes the value: `f` edits a snapshot (its first `data_mut` copies the buffer,
    /// which the parameter still shares), and the result is stored. The lock is not held
    /// while `f` runs, so `f` may read this parameter and sees the old value. Two
    /// threads updating one parameter at once each store a whole value (the later store
    /// wins). Optimizers use [`Param::replace`] instead, which never copies.
    pub fn update<R>(&self, f: impl FnOnce(&mut Tensor<T>) -> R) -> R {
        let mut value = self.value();
        let out = f(&mut value);
        self.set(value);
        out
    }

    /// The value's dims.
    pub fn dims(&self) -> Vec<usize> {
        self.slot().dims().to_vec()
    }

    /// The value's number of elements.
    pub fn numel(&self) -> usize {
        self.slot().numel()
    }
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, {:?})", self.id, self.value())
    }
}
