//! The GEMM driver: `c = a·b` or `c += a·b` on strided matrix views.
//!
//! With a SIMD micro-kernel for the CPU (AVX-512 or AVX2+FMA, chosen at run time), the
//! operands are packed into cache-sized panels and `c` is computed tile by tile: `b` is
//! packed once per call and shared by every thread, and each thread packs only its own
//! rows of `a`. Without one, matrixmultiply does the work. `CHAINRULE_GEMM=avx2` or
//! `=portable` picks a slower path, to measure or test it.
//!
//! Every element of `c` is summed over k in blocks of equal depth (at most [`KC`]), in order, each block one
//! chain of fused multiply-adds, whatever the thread count or the split: results are
//! bitwise identical for 1 and N threads.

mod pack;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::Element;

/// Depth of one packed block: `kc·nr` values of `b` (32 KiB for either kernel) stay in
/// the L1 cache while the tiles of a row block stream past.
const KC: usize = 256;

/// Most rows of `a` one task packs at a time (256 × 256 f32 = 256 KiB, in L2).
const MC_MAX: usize = 256;

/// Budget for one packed block of `b` (`k × nc` values, shared by all threads).
const PACK_B_BYTES: usize = 4 << 20;

/// The largest tile any micro-kernel computes (`mr·nr`), for the edge-tile buffer.
const MAX_TILE: usize = 448;

/// A read-only strided matrix view: element `(i, j)` is `data[offset + i·rs + j·cs]`.
/// Its constructors prove that every element lies inside `data`, so the driver's raw
/// reads rely on nothing a caller can get wrong.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// The row-major `rows × cols` matrix stored at `data[offset..]`, or its transpose.
    ///
    /// # Panics
    /// When the matrix does not fit in `data` (a bug in the calling kernel, never user
    /// input: every caller derives its views from checked shapes).
    pub(crate) fn new(
        data: &'a [T],
        offset: usize,
        rows: usize,
        cols: usize,
        transposed: bool,
    ) -> Self {
        let view = MatRef {
            data,
            offset,
            rows,
            cols,
            rs: cols.max(1),
            cs: 1,
        };
        assert!(
            view.fits(),
            "matrix view [{rows}, {cols}] at {offset} outside {} values",
            data.len()
        );
        if transposed {
            view.t()
        } else {
            view
        }
    }

    /// The transposed view (no copy).
    pub(crate) fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Rows `i0..i0 + rows` of this view.
    ///
    /// # Panics
    /// When the rows run past the view.
    pub(crate) fn rows_from(self, i0: usize, rows: usize) -> Self {
        assert!(
            i0.checked_add(rows).is_some_and(|end| end <= self.rows),
            "rows outside the view"
        );
        MatRef {
            offset: if rows == 0 {
                self.offset
            } else {
                self.offset + i0 * self.rs
            },
            rows,
            ..self
        }
    }

    /// Columns `j0..j0 + cols` of this view.
    ///
    /// # Panics
    /// When the columns run past the view.
    pub(crate) fn cols_from(self, j0: usize, cols: usize) -> Self {
        self.t().rows_from(j0, cols).t()
    }

    /// True when every element lies inside `data`, with every step of the address
    /// arithmetic checked, and the strides fit the raw GEMM's `isize`.
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return self.offset <= self.data.len();
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .zip((self.cols - 1).checked_mul(self.cs))
            .and_then(|(a, b)| a.checked_add(b))
            .and_then(|v| v.checked_add(self.offset));
        let strides_fit = isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok();
        strides_fit && self.rs > 0 && self.cs > 0 && last.is_some_and(|last| last < self.data.len())
    }

    /// Element `(i, j)`.
    fn at(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        self.data[self.offset + i * self.rs + j * self.cs]
    }
}

/// A row-major contiguous `rows × cols` output.
pub(crate) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// The first `rows·cols` values of `data` as a row-major matrix.
    ///
    /// # Panics
    /// When `data` is shorter (a bug in the calling kernel).
    pub(crate) fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        let len = rows.checked_mul(cols).filter(|&len| len <= data.len());
        let len =
            len.unwrap_or_else(|| panic!("output [{rows}, {cols}] outside {} values", data.len()));
        MatMut {
            data: &mut data[..len],
            rows,
            cols,
        }
    }
}

/// A micro-kernel and its tile: `run(kc, a, b, c, rsc, add)` computes an `mr × nr` tile
/// of `c` (row stride `rsc`) from a packed `a` panel (`kc·mr` values) and `b` panel
/// (`kc·nr`), storing it, or adding it to `c` when `add`. Only kernels the CPU supports
/// are ever constructed outside their module.
pub(crate) struct MicroKernel<T: 'static> {
    name: &'static str,
    mr: usize,
    nr: usize,
    run: unsafe fn(usize, *const T, *const T, *mut T, usize, bool),
}

/// The f32 micro-kernels this CPU supports, fastest first.
pub(crate) fn kernels_f32() -> Vec<&'static MicroKernel<f32>> {
    #[cfg(target_arch = "x86_64")]
    return x86::kernels_f32();
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// The f64 micro-kernels this CPU supports, fastest first.
pub(crate) fn kernels_f64() -> Vec<&'static MicroKernel<f64>> {
    #[cfg(target_arch = "x86_64")]
    return x86::kernels_f64();
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// The kernel to use from the supported ones, honouring `CHAINRULE_GEMM`
/// (`avx512`, `avx2`, `portable`; anything else or unset: the fastest).
pub(crate) fn select<T>(kernels: Vec<&'static MicroKernel<T>>) -> Option<&'static MicroKernel<T>> {
    static CHOICE: OnceLock<Option<String>> = OnceLock::new();
    let choice = CHOICE.get_or_init(|| std::env::var("CHAINRULE_GEMM").ok());
    match choice.as_deref() {
        Some("portable") => None,
        Some(name @ ("avx512" | "avx2")) => kernels.into_iter().find(|k| k.name == name),
        _ => kernels.into_iter().next(),
    }
}

/// The name of the GEMM path this process uses for `T` (`avx512`, `avx2` or
/// `portable`), for benchmark reports.
pub fn path_name<T: Element>() -> &'static str {
    T::micro_kernel().map_or("portable", |k| k.name)
}

/// `c = a·b`, or `c += a·b` when `accumulate`. Splits the work across rayon threads
/// when [`super::parallel::split`] says so (not inside conv's per-image tasks, which
/// keep every thread busy themselves).
///
/// # Panics
/// When the dims disagree (a bug in the calling kernel).
pub(crate) fn gemm<T: Element>(a: MatRef<T>, b: MatRef<T>, c: MatMut<T>, accumulate: bool) {
    assert!(
        a.rows == c.rows && b.cols == c.cols && a.cols == b.rows,
        "gemm dims disagree: [{}, {}]·[{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.data.fill(T::ZERO);
        }
        return;
    }
    let rows_of_b = b.cs == 1;
    if (m <= SMALL_M && (rows_of_b || (b.rs == 1 && a.cs == 1))) || (k <= SMALL_K && rows_of_b) {
        return super::simd::dispatch(Direct {
            a,
            b,
            c,
            accumulate,
        });
    }
    // saturating: m·n and k are each bounded, but their product need not be
    let macs = m.saturating_mul(k).saturating_mul(n);
    let threads = super::parallel::threads(super::parallel::Cost::MultiplyAdds(macs));
    match T::micro_kernel() {
        Some(kernel) => gemm_packed(kernel, a, b, c, accumulate, threads),
        None => gemm_portable(a, b, c, accumulate, threads),
    }
}

/// A raw pointer to `c` that may cross threads; see the SAFETY notes where it is used.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the tasks that share it write disjoint elements of `c` (see `gemm_packed`
// and `gemm_column_blocks`), and `c` stays exclusively borrowed until they all finish.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

/// The packed path: blocks of `nc` columns; in each, all of `b`'s block is packed first
/// (shared by every thread, split among them), then tasks of (row block, panel range)
/// each pack their rows of `a` per block of k and run the tiles. Two
/// parallel regions per column block, whatever k is: waking the pool costs tens of
/// microseconds here, as much as a small product's packing.
fn gemm_packed<T: Element>(
    kernel: &MicroKernel<T>,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mr, nr) = (kernel.mr, kernel.nr);
    let nc = (PACK_B_BYTES / std::mem::size_of::<T>() / k / nr * nr)
        .max(nr)
        .min(n.next_multiple_of(nr));
    // With threads, about four row blocks per thread, so that rayon's stealing evens
    // out unequal blocks (5 blocks on 2 threads would cap the speed-up at 1.67×).
    let blocks_wanted = if threads > 1 { 4 * threads } else { 1 };
    let mc = m
        .div_ceil(blocks_wanted)
        .next_multiple_of(mr)
        .min(MC_MAX / mr * mr);
    let row_blocks = m.div_ceil(mc);
    let kb = k_block(k);
    let c_ptr = SendPtr(c.data.as_mut_ptr());
    T::with_pack(Pack::B, k * nc, |b_pack| {
        for j0 in (0..n).step_by(nc) {
            let panels = nc.min(n - j0).div_ceil(nr);
            let b_pack = &mut b_pack[..k * panels * nr];
            pack_b(&b, j0, b_pack, nr, threads);
            let b_pack = &*b_pack;
            let col_parts = if row_blocks >= threads {
                1
            } else {
                threads.div_ceil(row_blocks).min(panels)
            };
            let per_part = panels.div_ceil(col_parts);
            let task = |t: usize| {
                let i0 = (t / col_parts) * mc;
                let rows = mc.min(m - i0);
                let first = (t % col_parts) * per_part;
                let panel_range = first..(first + per_part).min(panels);
                T::with_pack(Pack::A, mc * KC, |a_pack| {
                    for p0 in (0..k).step_by(kb) {
                        let kc = kb.min(k - p0);
                        pack::pack_a(&a, (i0, rows), (p0, kc), mr, a_pack);
                        // every earlier k block holds kb rows of each panel
                        let b_block = &b_pack[p0 * panels * nr..][..kc * panels * nr];
                        for jp in panel_range.clone() {
                            let b_panel = &b_block[jp * kc * nr..][..kc * nr];
                            let (j, width) = (j0 + jp * nr, nr.min(n - j0 - jp * nr));
                            let a_panels = a_pack.chunks_exact(kc * mr).take(rows.div_ceil(mr));
                            for (ip, a_panel) in a_panels.enumerate() {
                                let (i, height) = (i0 + ip * mr, mr.min(rows - ip * mr));
                                let tile = Tile {
                                    c: c_ptr,
                                    n,
                                    i,
                                    j,
                                    height,
                                    width,
                                };
                                // SAFETY: tiles of distinct tasks are disjoint (row blocks
                                // × panel ranges partition c), a task runs its k blocks
                                // in order, and `c` is borrowed mutably for this call.
                                unsafe {
                                    tile.run(kernel, kc, a_panel, b_panel, accumulate || p0 > 0)
                                };
                            }
                        }
                    }
                });
            };
            let tasks = row_blocks * col_parts;
            if threads > 1 && tasks > 1 {
                (0..tasks).into_par_iter().for_each(task);
            } else {
                (0..tasks).for_each(task);
            }
        }
    });
}

/// The depth of k's blocks: at most [`KC`], and equal, so that no block is a sliver
/// (k = 288 as 144 + 144, not 256 + 32, whose tiles would load and store `c` for 32
/// steps). It depends on k alone, never on threads.
fn k_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// Packs all rows and columns `j0..` of `b` into `dst`: per block of [`k_block`] rows, the
/// block's panels of `kc·nr`. With threads, one job per (k block, share of the panels).
fn pack_b<T: Element>(b: &MatRef<T>, j0: usize, dst: &mut [T], nr: usize, threads: usize) {
    let k = b.rows;
    let panels = dst.len() / (k * nr);
    let shares = if threads > 1 { threads.min(panels) } else { 1 };
    let per = panels.div_ceil(shares);
    let kb = k_block(k);
    let mut jobs = Vec::with_capacity(k.div_ceil(kb) * shares);
    let mut rest = dst;
    for p0 in (0..k).step_by(kb) {
        let kc = kb.min(k - p0);
        for share in (0..shares).take_while(|s| s * per < panels) {
            let count = per.min(panels - share * per);
            let (part, tail) = rest.split_at_mut(count * kc * nr);
            rest = tail;
            jobs.push((p0, kc, j0 + share * per * nr, part));
        }
    }
    let job =
        |(p0, kc, j, part): (usize, usize, usize, &mut [T])| pack::pack_b(b, (p0, kc), j, nr, part);
    if threads > 1 {
        jobs.into_par_iter().for_each(job);
    } else {
        jobs.into_iter().for_each(job);
    }
}

/// One tile of `c`: rows `i..i + height`, columns `j..j + width` of an `_ × n` row-major
/// matrix at `c`.
struct Tile<T> {
    c: SendPtr<T>,
    n: usize,
    i: usize,
    j: usize,
    height: usize,
    width: usize,
}

impl<T: Element> Tile<T> {
    /// Runs the kernel for this tile: straight into `c` when the tile is whole, through a
    /// local buffer at the matrix's edge.
    ///
    /// # Safety
    /// The tile lies inside `c` (`i + height` ≤ rows, `j + width` ≤ `n`, height ≤ mr,
    /// width ≤ nr) and no other thread touches its elements during the call.
    unsafe fn run(
        &self,
        kernel: &MicroKernel<T>,
        kc: usize,
        a_panel: &[T],
        b_panel: &[T],
        add: bool,
    ) {
        let (mr, nr) = (kernel.mr, kernel.nr);
        assert!(a_panel.len() >= kc * mr && b_panel.len() >= kc * nr && mr * nr <= MAX_TILE);
        // SAFETY: the caller's bounds put (i, j) inside c.
        let corner = unsafe { self.c.get().add(self.i * self.n + self.j) };
        if self.height == mr && self.width == nr {
            // SAFETY: the kernel was constructed only for a CPU that runs it; the panels
            // hold kc·mr and kc·nr values (asserted); the whole mr × nr tile with row
            // stride n lies inside c and is ours alone (the caller's contract).
            unsafe { (kernel.run)(kc, a_panel.as_ptr(), b_panel.as_ptr(), corner, self.n, add) };
            return;
        }
        let mut buf = [T::ZERO; MAX_TILE];
        for r in 0..self.height {
            for col in 0..self.width {
                if add {
                    // SAFETY: r < height and col < width: inside the tile.
                    buf[r * nr + col] = unsafe { *corner.add(r * self.n + col) };
                }
            }
        }
        // SAFETY: as above, with the buffer (mr·nr ≤ MAX_TILE values, row stride nr) as
        // the tile.
        unsafe {
            (kernel.run)(
                kc,
                a_panel.as_ptr(),
                b_panel.as_ptr(),
                buf.as_mut_ptr(),
                nr,
                add,
            )
        };
        for r in 0..self.height {
            for col in 0..self.width {
                // SAFETY: inside the tile, as above.
                unsafe { *corner.add(r * self.n + col) = buf[r * nr + col] };
            }
        }
    }
}

/// Which per-thread packing buffer (a thread may hold both at once).
#[derive(Clone, Copy)]
pub(crate) enum Pack {
    /// The calling thread's packed `b`.
    B,
    /// A task's packed rows of `a`.
    A,
}

/// The portable path: matrixmultiply, with the rows or the columns of `c` split across
/// threads (each thread repacks the other operand).
fn gemm_portable<T: Element>(
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if threads == 1 {
        return matrixmultiply_serial(a, b, c.data, accumulate);
    }
    if m * k <= k * n && n >= 32 {
        gemm_column_blocks(a, b, c, accumulate, threads);
    } else if m >= 16 {
        let rows = m.div_ceil(threads).next_multiple_of(8);
        c.data
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(i, chunk)| {
                let sub = a.rows_from(i * rows, chunk.len() / n);
                matrixmultiply_serial(sub, b, chunk, accumulate);
            });
    } else {
        matrixmultiply_serial(a, b, c.data, accumulate);
    }
}

/// `c = a·b` with the columns of `c` split into one block per thread (matrixmultiply).
fn gemm_column_blocks<T: Element>(
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    accumulate: bool,
    threads: usize,
) {
    let n = b.cols;
    let cols = n.div_ceil(threads).next_multiple_of(16);
    let c_ptr = SendPtr(c.data.as_mut_ptr());
    (0..n.div_ceil(cols)).into_par_iter().for_each(|blk| {
        let (j0, nc) = (blk * cols, cols.min(n - blk * cols));
        // SAFETY: c has m·n elements (row stride n) and this block writes only
        // elements i·n + j for j in j0..j0+nc, which no other block touches; `c` is
        // exclusively borrowed for this whole call, and `for_each` returns only after
        // every block finished, so no write outlives it.
        unsafe { matrixmultiply_raw(a, b.cols_from(j0, nc), c_ptr.get().add(j0), n, accumulate) };
    });
}

fn matrixmultiply_serial<T: Element>(a: MatRef<T>, b: MatRef<T>, c: &mut [T], accumulate: bool) {
    let n = b.cols;
    assert!(c.len() >= a.rows * n);
    // SAFETY: c has a.rows·n contiguous elements (asserted; row stride n), and being a
    // `&mut` borrow it aliases neither `a` nor `b`.
    unsafe { matrixmultiply_raw(a, b, c.as_mut_ptr(), n, accumulate) };
}

/// `c = a·b` (`+=` when `accumulate`) by matrixmultiply, `c` row-major with row stride
/// `ldc`.
///
/// # Safety
/// `c + i·ldc + j` (i < a.rows, j < b.cols) are valid for writes, distinct, and
/// touched by no one else during the call.
unsafe fn matrixmultiply_raw<T: Element>(
    a: MatRef<T>,
    b: MatRef<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let beta = if accumulate { T::ONE } else { T::ZERO };
    // SAFETY: the views' constructors proved every address a[offset + i·rs + p·cs]
    // (i<m, p<k) and b[..] (p<k, j<n) lies inside its slice, with strides that fit in
    // isize (`fits`); `c` is the caller's contract.
    unsafe {
        T::gemm_raw(
            a.rows,
            a.cols,
            b.cols,
            T::ONE,
            a.data.as_ptr().add(a.offset),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.offset),
            b.rs as isize,
            b.cs as isize,
            beta,
            c,
            ldc as isize,
            1,
        );
    }
}

/// Up to this many rows of `c`, a direct loop beats packing the operands.
const SMALL_M: usize = 4;

/// Up to this depth, too: packing and a tile's loads and stores of `c` would cost more
/// than its few multiply-adds (conv's input gradient for 3 output channels has k = 3).
const SMALL_K: usize = 8;

/// [`gemm_direct`] as a loop for [`super::simd::dispatch`].
struct Direct<'a, T> {
    a: MatRef<'a, T>,
    b: MatRef<'a, T>,
    c: MatMut<'a, T>,
    accumulate: bool,
}

impl<T: Element> super::simd::Vectorized for Direct<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        gemm_direct(self.a, self.b, self.c, self.accumulate)
    }
}

/// `c = a·b` without packing, when `b`'s rows or (with `a`'s rows) columns are
/// contiguous: row updates `c_i += a_ip·b_p` or dot products `a_i·b_j`. Inlined so
/// [`super::simd::dispatch`] compiles it for the CPU's vectors.
#[inline(always)]
fn gemm_direct<T: Element>(a: MatRef<T>, b: MatRef<T>, c: MatMut<T>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for (i, c_row) in c.data.chunks_exact_mut(n).take(m).enumerate() {
        if !accumulate {
            c_row.fill(T::ZERO);
        }
        if b.cs == 1 {
            for p in 0..k {
                let start = b.offset + p * b.rs;
                let aip = a.at(i, p);
                c_row
                    .iter_mut()
                    .zip(&b.data[start..start + n])
                    .for_each(|(c, &b)| *c += aip * b);
            }
        } else {
            let start = a.offset + i * a.rs;
            let a_row = &a.data[start..start + k];
            for (j, c) in c_row.iter_mut().enumerate() {
                let start = b.offset + j * b.cs;
                *c += dot(a_row, &b.data[start..start + k]);
            }
        }
    }
}

/// A dot product with eight independent partial sums, so it vectorises; the order is
/// fixed, so the result does not depend on threads.
#[inline(always)]
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
