//! The one place kernels decide whether to use threads.
//!
//! A kernel states its cost; [`split`] says whether to spread it over rayon's threads.
//! Splits never change values: every kernel that splits keeps each output's sum in one
//! order, so results are bitwise identical for 1 and N threads.

/// Work below this many elements (or the multiply-adds worth as much) stays on the
/// calling thread: waking a second thread costs tens of microseconds here (150 µs
/// after a millisecond's idleness, measured from the main thread), more than a
/// memory-bound loop over 256K floats takes (W3 at 2 threads: 4.25 -> 3.64 ms when
/// raised from 32K).
pub const PARALLEL_THRESHOLD: usize = 1 << 18;

/// Multiply-adds that cost about as much as one element of a memory-bound loop, so
/// that a product splits from 8M multiply-adds (below that, W7's 256² products at 2
/// threads went 1.39 -> 2.36 ms).
const MACS_PER_ELEMENT: usize = 32;

/// What a kernel is about to do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cost {
    /// Elements read or written by a memory-bound loop.
    Elements(usize),
    /// Multiply-adds of a product.
    MultiplyAdds(usize),
    /// Both (a convolution: its im2col columns, then its products).
    Both(usize, usize),
}

impl Cost {
    fn elements(self) -> usize {
        match self {
            Cost::Elements(e) => e,
            Cost::MultiplyAdds(m) => m / MACS_PER_ELEMENT,
            Cost::Both(e, m) => e.saturating_add(m / MACS_PER_ELEMENT),
        }
    }
}

/// Whether work of this cost should be split across threads: the pool has more than
/// one, the caller is not itself a rayon task (its siblings already keep the other
/// threads busy; splitting again only adds overhead), and the work pays for waking a
/// thread.
pub(crate) fn split(cost: Cost) -> bool {
    rayon::current_num_threads() > 1
        && rayon::current_thread_index().is_none()
        && cost.elements() >= PARALLEL_THRESHOLD
}

/// How many threads to plan for: the pool's size when [`split`] says so, else 1.
pub(crate) fn threads(cost: Cost) -> usize {
    if split(cost) {
        rayon::current_num_threads()
    } else {
        1
    }
}
