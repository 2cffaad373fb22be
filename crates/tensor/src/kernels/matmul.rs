//! Matrix products over a strided GEMM (matrixmultiply), batched with broadcast batch
//! dims; transposed operands are passed as strides, never copied.

use rayon::prelude::*;

use super::{broadcast_strides, for_each_offset};
use crate::error::shape_err;
use crate::{Element, Shape, Tensor, TensorResult};

/// Below this many multiply-adds a product stays on one thread.
// Waking a second thread costs tens of microseconds on a VM; below ~8M multiply-adds
// (a few hundred microseconds of work) it does not pay.
const PARALLEL_MACS: usize = 1 << 23;

/// A read-only strided matrix: element `(i, j)` is `data[offset + i·rs + j·cs]`.
/// Crate-internal: [`gemm`] checks that a view covers its dims before any raw access.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    /// The backing slice.
    pub(crate) data: &'a [T],
    /// Offset of element (0, 0).
    pub(crate) offset: usize,
    /// Row stride.
    pub(crate) rs: usize,
    /// Column stride.
    pub(crate) cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix starting at `offset`, optionally transposed.
    pub(crate) fn new(data: &'a [T], offset: usize, cols: usize, transposed: bool) -> Self {
        if transposed {
            MatRef {
                data,
                offset,
                rs: 1,
                cs: cols,
            }
        } else {
            MatRef {
                data,
                offset,
                rs: cols,
                cs: 1,
            }
        }
    }

    /// True when every element of an `r × c` view lies inside `data`, with every step
    /// of the address arithmetic checked (a wrapped product must not pass) and the
    /// strides small enough to pass to the raw GEMM as `isize`.
    fn covers(&self, r: usize, c: usize) -> bool {
        if r == 0 || c == 0 {
            return true;
        }
        let last = (r - 1)
            .checked_mul(self.rs)
            .zip((c - 1).checked_mul(self.cs))
            .and_then(|(a, b)| a.checked_add(b))
            .and_then(|v| v.checked_add(self.offset));
        let strides_fit = isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok();
        strides_fit && last.is_some_and(|last| last < self.data.len())
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`) for an `m×k` `a`, `k×n` `b` and a
/// row-major contiguous `m×n` `c`. Splits the rows or the columns of `c` across rayon
/// threads when the product is large; each element's sum runs in the same order either
/// way, so the bits do not depend on the thread count.
///
/// # Panics
/// When an operand view runs past its slice (a bug in the calling kernel, not user input:
/// every caller derives its views from checked shapes).
pub(crate) fn gemm<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [T],
    accumulate: bool,
) {
    assert!(
        a.covers(m, k) && b.covers(k, n) && m.checked_mul(n).is_some_and(|mn| c.len() >= mn),
        "gemm operands out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    if m <= SMALL_M && (b.cs == 1 || (b.rs == 1 && a.cs == 1)) {
        return gemm_few_rows(m, k, n, a, b, c, accumulate);
    }
    let threads = rayon::current_num_threads();
    // Inside a rayon task (conv's per-image loop) the caller already keeps every thread
    // busy; splitting again would only repack the operands once per thread.
    let nested = rayon::current_thread_index().is_some();
    // saturating: m·n and k are each bounded, but their product need not be
    let macs = m.saturating_mul(k).saturating_mul(n);
    if threads == 1 || nested || macs < PARALLEL_MACS {
        return gemm_serial(m, k, n, a, b, c, accumulate);
    }
    // Each thread packs its own block of one operand and all of the other: split the
    // side whose operand is larger, so the smaller one is what gets packed twice.
    if m * k <= k * n && n >= 32 {
        gemm_column_blocks(m, k, n, a, b, c, accumulate, threads);
    } else if m >= 16 {
        let rows = m.div_ceil(threads).next_multiple_of(8);
        c.par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(i, chunk)| {
                let sub = MatRef {
                    offset: a.offset + i * rows * a.rs,
                    ..a
                };
                gemm_serial(chunk.len() / n, k, n, sub, b, chunk, accumulate);
            });
    } else {
        gemm_serial(m, k, n, a, b, c, accumulate);
    }
}

/// A raw pointer that may cross threads; see the SAFETY note where it is used.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used by `gemm_column_blocks`, whose threads write disjoint elements.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied, never dereferenced concurrently
// at the same element.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

/// `c = a·b` with the columns of `c` split into one block per thread.
#[allow(clippy::too_many_arguments)]
fn gemm_column_blocks<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let cols = n.div_ceil(threads).next_multiple_of(16);
    let beta = if accumulate { T::ONE } else { T::ZERO };
    let c_ptr = SendPtr(c.as_mut_ptr());
    (0..n.div_ceil(cols)).into_par_iter().for_each(|blk| {
        let (j0, nc) = (blk * cols, cols.min(n - blk * cols));
        // SAFETY: `gemm` asserted that a covers m×k and b covers k×n inside their slices,
        // so b's columns j0..j0+nc (offset j0·cs) are inside too; c has m·n elements and
        // this block writes only elements i·n + j for j in j0..j0+nc, which no other
        // block touches. `c` is exclusively borrowed for this whole call, and
        // `for_each` returns only after every block finished, so no write outlives it.
        unsafe {
            T::gemm_raw(
                m,
                k,
                nc,
                T::ONE,
                a.data.as_ptr().add(a.offset),
                a.rs as isize,
                a.cs as isize,
                b.data.as_ptr().add(b.offset + j0 * b.cs),
                b.rs as isize,
                b.cs as isize,
                beta,
                c_ptr.get().add(j0),
                n as isize,
                1,
            );
        }
    });
}

/// Up to this many rows of `c`, a direct loop beats packing the operands (the GEMM's
/// micro-kernel is 16 rows tall, so a 3-row product would waste most of it).
const SMALL_M: usize = 4;

/// `c = a·b` for few rows of `c`, when `b`'s rows or (with `a`'s rows) columns are
/// contiguous: row updates `c_i += a_ip·b_p` or dot products `a_i·b_j`.
fn gemm_few_rows<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [T],
    accumulate: bool,
) {
    for (i, c_row) in c.chunks_exact_mut(n).take(m).enumerate() {
        if !accumulate {
            c_row.fill(T::ZERO);
        }
        let a_at = |p: usize| a.data[a.offset + i * a.rs + p * a.cs];
        if b.cs == 1 {
            for p in 0..k {
                let (aip, row) = (
                    a_at(p),
                    &b.data[b.offset + p * b.rs..b.offset + p * b.rs + n],
                );
                c_row.iter_mut().zip(row).for_each(|(c, &b)| *c += aip * b);
            }
        } else {
            let a_row = &a.data[a.offset + i * a.rs..a.offset + i * a.rs + k];
            for (j, c) in c_row.iter_mut().enumerate() {
                *c += dot(a_row, &b.data[b.offset + j * b.cs..b.offset + j * b.cs + k]);
            }
        }
    }
}

/// A dot product with eight independent partial sums, so it vectorises; the order is
/// fixed, so the result does not depend on threads.
fn dot<T: Element>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: T = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(&a, &b)| a * b)
        .sum();
    for (xs, ys) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += xs[l] * ys[l];
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

fn gemm_serial<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [T],
    accumulate: bool,
) {
    debug_assert!(a.covers(m, k) && b.covers(k, n) && c.len() >= m.saturating_mul(n));
    let beta = if accumulate { T::ONE } else { T::ZERO };
    // SAFETY: `gemm` asserted that every address a[offset + i·rs + p·cs] (i<m, p<k) and
    // b[..] (p<k, j<n) lies inside its slice (`covers`; sub-views only shrink m), and c
    // has m·n contiguous elements (row stride n, column stride 1). `c` is a `&mut` borrow,
    // so it aliases neither `a` nor `b`. Strides fit in isize because they index slices.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            T::ONE,
            a.data.as_ptr().add(a.offset),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.offset),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

impl<T: Element> Tensor<T> {
    /// Matrix product with PyTorch's `matmul` semantics: 1-D operands are promoted to a
    /// row (left) or column (right) and the added dim removed; batch dims broadcast.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let a = Tensor::<f64>::ones(&[5, 2, 3])?;
    /// let b = Tensor::<f64>::ones(&[3, 4])?;
    /// assert_eq!(a.matmul(&b)?.dims(), &[5, 2, 4]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Inner dims differ, an operand is a scalar, or batch dims do not broadcast.
    pub fn matmul(&self, other: &Tensor<T>) -> TensorResult<Tensor<T>> {
        if self.ndim() == 0 || other.ndim() == 0 {
            return Err(shape_err!(
                "matmul needs at least 1-D operands, got {} and {}",
                self.shape(),
                other.shape()
            ));
        }
        let a = if self.ndim() == 1 {
            self.with_shape(Shape::new(&[1, self.numel()])?)
        } else {
            self.clone()
        };
        let b = if other.ndim() == 1 {
            other.with_shape(Shape::new(&[other.numel(), 1])?)
        } else {
            other.clone()
        };
        let out = a.matmul_t(false, &b, false).map_err(|e| match e {
            e @ (crate::TensorError::OutOfMemory { .. } | crate::TensorError::TooLarge { .. }) => e,
            _ => shape_err!(
                "cannot multiply {} by {}: inner dims differ or batch dims do not broadcast",
                self.shape(),
                other.shape()
            ),
        })?;
        let mut dims = out.dims().to_vec();
        if other.ndim() == 1 {
            dims.pop();
        }
        if self.ndim() == 1 {
            dims.remove(dims.len() - if other.ndim() == 1 { 1 } else { 2 });
        }
        Ok(out.with_shape(Shape::new(&dims)?))
    }

    /// Batched product of `op(self)` and `op(other)` for operands of at least 2 dims,
    /// where `op` transposes the last two dims when its flag is set.
    ///
    /// # Errors
    /// Inner dims differ or batch dims do not broadcast.
    pub fn matmul_t(&self, ta: bool, other: &Tensor<T>, tb: bool) -> TensorResult<Tensor<T>> {
        let (a, b) = (self, other);
        if a.ndim() < 2 || b.ndim() < 2 {
            return Err(shape_err!(
                "matmul_t needs 2-D or batched operands, got {} and {}",
                a.shape(),
                b.shape()
            ));
        }
        let mat = |t: &Tensor<T>, tr: bool| {
            let d = t.dims();
            let (r, c) = (d[d.len() - 2], d[d.len() - 1]);
            // (rows, cols) of op(t), and the stored row length
            if tr {
                (c, r, c)
            } else {
                (r, c, c)
            }
        };
        let (m, k, a_cols) = mat(a, ta);
        let (k2, n, b_cols) = mat(b, tb);
        if k != k2 {
            return Err(shape_err!(
                "inner dims differ: {} · {} (k {k} vs {k2})",
                a.shape(),
                b.shape()
            ));
        }
        let batch_a = Shape::new(&a.dims()[..a.ndim() - 2])?;
        let batch_b = Shape::new(&b.dims()[..b.ndim() - 2])?;
        let batch = batch_a.broadcast(&batch_b)?;
        let mut dims = batch.dims().to_vec();
        dims.extend([m, n]);
        let out_shape = Shape::new(&dims)?;
        let nb = batch.ndim();
        let scale =
            |s: Vec<usize>, size: usize| s.into_iter().map(|v| v * size).collect::<Vec<_>>();
        let sa = scale(broadcast_strides(&batch_a, nb), m * k);
        let sb = scale(broadcast_strides(&batch_b, nb), k * n);
        if out_shape.numel() == 0 {
            return Ok(Tensor::from_parts(out_shape, Vec::new()));
        }
        // the output first: it is at least as large as the offsets table below
        let mut out = crate::tensor::alloc_zeroed_lazy(&out_shape)?;
        if k == 0 {
            return Ok(Tensor::from_parts(out_shape, out)); // sums of nothing
        }
        // one entry per batch element, each of which owns m·n > 0 outputs
        let mut offsets = crate::tensor::alloc_empty::<[usize; 2]>(&batch)?;
        for_each_offset(batch.dims(), [&sa, &sb], |_, o| offsets.push(o));
        let run = |c: &mut [T], [oa, ob]: [usize; 2]| {
            gemm(
                m,
                k,
                n,
                MatRef::new(a.data(), oa, a_cols, ta),
                MatRef::new(b.data(), ob, b_cols, tb),
                c,
                false,
            )
        };
        let macs = (m * n).saturating_mul(k).saturating_mul(offsets.len());
        if offsets.len() > 1 && macs >= PARALLEL_MACS && m * n > 0 {
            out.par_chunks_mut(m * n)
                .zip(offsets.par_iter())
                .for_each(|(c, &o)| run(c, o));
        } else if m * n > 0 {
            out.chunks_mut(m * n)
                .zip(&offsets)
                .for_each(|(c, &o)| run(c, o));
        }
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// `x·wᵀ + b` for `x [.., in]`, `w [out, in]`, `b [out]`: PyTorch's `linear`, fused
    /// so `w` is read transposed in place and the bias is added in the same pass.
    ///
    /// # Errors
    /// `x`'s last dim differs from `w`'s, or `b` is not `[out]`.
    pub fn linear(&self, w: &Tensor<T>, b: Option<&Tensor<T>>) -> TensorResult<Tensor<T>> {
        if self.ndim() == 0 || w.ndim() != 2 || self.dims()[self.ndim() - 1] != w.dims()[1] {
            return Err(shape_err!(
                "input {} does not match weight {} (want [.., in] and [out, in])",
                self.shape(),
                w.shape()
            ));
        }
        let (out_f, in_f) = (w.dims()[0], w.dims()[1]);
        if let Some(b) = b {
            if b.dims() != [out_f] {
                return Err(shape_err!(
                    "bias {} should be [{out_f}] for weight {}",
                    b.shape(),
                    w.shape()
                ));
            }
        }
        let rows: usize = self.dims()[..self.ndim() - 1].iter().product();
        let mut dims = self.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_f;
        }
        let out_shape = Shape::new(&dims)?;
        let mut out = crate::tensor::alloc_zeroed_lazy(&out_shape)?;
        if let Some(b) = b {
            out.chunks_mut(out_f.max(1))
                .for_each(|r| r.copy_from_slice(b.data()));
        }
        let x = MatRef::new(self.data(), 0, in_f, false);
        gemm(
            rows,
            in_f,
            out_f,
            x,
            MatRef::new(w.data(), 0, in_f, true),
            &mut out,
            b.is_some(),
        );
        Ok(Tensor::from_parts(out_shape, out))
    }
}
