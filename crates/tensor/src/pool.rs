//! Big tensor buffers kept for reuse instead of handed back to the allocator.
//!
//! A training step frees and allocates the same large buffers every time (activations,
//! gradients). An allocator that returns them to the OS (glibc does, above its mmap
//! threshold) makes every step fault its pages in again and the kernel zero them; on
//! W2 that cost a third of the step. So a tensor's buffer of at least [`MIN_BYTES`]
//! comes back here when its last holder drops it, and the next buffer of about that
//! size is taken from here. At most [`limit`] bytes are held; [`release`] frees them.
//!
//! ```
//! use chainrule_tensor::{pool, Tensor};
//! let big = Tensor::<f32>::zeros(&[256, 1024])?; // 1 MiB
//! drop(big);
//! assert!(pool::held_bytes() >= 1 << 20);
//! pool::release();
//! # Ok::<(), chainrule_tensor::TensorError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::PoisonError;

use crate::Element;

/// Buffers below this size go straight to the allocator, which serves small sizes from
/// caches of its own without touching the OS.
pub const MIN_BYTES: usize = 16 * 1024;

/// How much larger than a request a pooled buffer may be and still serve it: a quarter,
/// so a slightly smaller last batch reuses the buffers of the full ones.
const SLACK_DIVISOR: usize = 4;

static LIMIT: AtomicUsize = AtomicUsize::new(1 << 30);

/// The free buffers of one element type by capacity.
pub(crate) struct Pool<T> {
    free: BTreeMap<usize, Vec<Vec<T>>>,
    bytes: usize,
}

impl<T> Pool<T> {
    pub(crate) const fn new() -> Self {
        Pool {
            free: BTreeMap::new(),
            bytes: 0,
        }
    }
}

fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity().saturating_mul(std::mem::size_of::<T>())
}

/// The smallest pooled vector with room for `len` elements, as it was given back (its
/// length and values those of the tensor it held); `None` sends the caller to the
/// allocator.
fn take_used<T: Element>(len: usize) -> Option<Vec<T>> {
    if len.saturating_mul(std::mem::size_of::<T>()) < MIN_BYTES {
        return None;
    }
    // capacity c serves len when c − len ≤ c / SLACK_DIVISOR
    let most = len.saturating_mul(SLACK_DIVISOR) / (SLACK_DIVISOR - 1);
    let mut pool = T::pool().lock().unwrap_or_else(PoisonError::into_inner);
    // no list is left empty, so the first capacity in range has a buffer
    let capacity = *pool.free.range(len..=most).next()?.0;
    let list = pool.free.get_mut(&capacity)?;
    let v = list.pop()?;
    if list.is_empty() {
        pool.free.remove(&capacity);
    }
    pool.bytes -= bytes_of(&v);
    Some(v)
}

/// An empty vector with room for `len` elements: a pooled one when one fits.
pub(crate) fn take<T: Element>(len: usize) -> Option<Vec<T>> {
    let mut v = take_used(len)?;
    v.clear();
    Some(v)
}

/// `len` elements whose values are unspecified (what a pooled buffer last held, zeros
/// past that), for a kernel that writes every one: no pass of zeros before its own.
pub(crate) fn overwritten<T: Element>(len: usize) -> Vec<T> {
    overwritten_if_pooled(len).unwrap_or_else(|| {
        let mut v = Vec::with_capacity(len);
        v.resize(len, T::ZERO);
        v
    })
}

/// [`overwritten`] when the pool holds a buffer that fits, `None` otherwise.
pub(crate) fn overwritten_if_pooled<T: Element>(len: usize) -> Option<Vec<T>> {
    let mut v = take_used(len)?;
    if v.len() >= len {
        v.truncate(len);
    } else {
        v.resize(len, T::ZERO); // within capacity: the pool's buffers hold `len`
    }
    Some(v)
}

/// Keeps `v` for a later [`take`] if it is big enough and fits under the limit;
/// otherwise frees it.
pub(crate) fn give<T: Element>(v: Vec<T>) {
    let bytes = bytes_of(&v);
    if bytes < MIN_BYTES {
        return;
    }
    let mut pool = T::pool().lock().unwrap_or_else(PoisonError::into_inner);
    if pool.bytes.saturating_add(bytes) > limit() {
        drop(pool);
        return; // `v` is freed outside the lock
    }
    pool.bytes += bytes;
    pool.free.entry(v.capacity()).or_default().push(v);
}

/// The most bytes the pool holds (per element type); 1 GiB unless [`set_limit`]
/// changed it.
///
/// ```
/// assert!(chainrule_tensor::pool::limit() > 0);
/// ```
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sets [`limit`]; 0 turns the pool off. Buffers already held stay until taken or
/// [`release`]d.
///
/// ```
/// use chainrule_tensor::pool;
/// let before = pool::limit();
/// pool::set_limit(256 << 20);
/// assert_eq!(pool::limit(), 256 << 20);
/// pool::set_limit(before);
/// ```
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// Bytes the pool holds now, f32 and f64 buffers together.
///
/// ```
/// chainrule_tensor::pool::release();
/// assert_eq!(chainrule_tensor::pool::held_bytes(), 0);
/// ```
pub fn held_bytes() -> usize {
    fn of<T: Element>() -> usize {
        T::pool()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
    of::<f32>() + of::<f64>()
}

/// Frees every buffer the pool holds (after training, say), as PyTorch's
/// `torch.cuda.empty_cache()` does for its caching allocator.
///
/// ```
/// chainrule_tensor::pool::release();
/// assert_eq!(chainrule_tensor::pool::held_bytes(), 0);
/// ```
pub fn release() {
    fn of<T: Element>() {
        let free = {
            let mut pool = T::pool().lock().unwrap_or_else(PoisonError::into_inner);
            pool.bytes = 0;
            std::mem::take(&mut pool.free)
        };
        drop(free);
    }
    of::<f32>();
    of::<f64>();
}

/// A tensor's buffer: back to the pool when its last holder drops it.
#[derive(PartialEq)]
pub(crate) struct Buffer<T: Element>(pub(crate) Vec<T>);

impl<T: Element> Buffer<T> {
    /// The vector, leaving nothing to pool.
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
    }
}

impl<T: Element> Drop for Buffer<T> {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

impl<T: Element> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        let mut v = take(self.0.len()).unwrap_or_else(|| Vec::with_capacity(self.0.len()));
        v.extend_from_slice(&self.0);
        Buffer(v)
    }
}

impl<T: Element> std::ops::Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}
