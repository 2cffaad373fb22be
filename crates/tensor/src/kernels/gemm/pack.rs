//! Packing: copying a block of an operand into the panel layout the micro-kernels read,
//! zero-padded past the matrix's edge so every tile is computed whole.
//!
//! Both operands pack the same way once `b` is seen transposed: a panel holds `width`
//! lines (rows of `a`, columns of `b`) by `kc` steps of k, stored step-major, so that
//! `panel[p·width + l]` is line `l` at step `p`.

use super::MatRef;
use crate::Element;

/// Packs rows `i0..i0 + rows` and columns `p0..p0 + kc` of `a` into `dst` as
/// `rows.div_ceil(mr)` panels of `kc·mr` values each.
pub(super) fn pack_a<T: Element>(
    a: &MatRef<T>,
    (i0, rows): (usize, usize),
    (p0, kc): (usize, usize),
    mr: usize,
    dst: &mut [T],
) {
    let panels = dst.chunks_exact_mut(kc * mr).take(rows.div_ceil(mr));
    for (ip, panel) in panels.enumerate() {
        let first = i0 + ip * mr;
        pack_panel(a, (first, mr.min(i0 + rows - first)), (p0, kc), mr, panel);
    }
}

/// Packs rows `p0..p0 + kc` of `b`, columns from `j0`, into `dst`'s panels of `kc·nr`
/// values (as many panels as `dst` holds).
pub(super) fn pack_b<T: Element>(
    b: &MatRef<T>,
    (p0, kc): (usize, usize),
    j0: usize,
    nr: usize,
    dst: &mut [T],
) {
    if b.cs == 1 {
        match nr {
            8 => return pack_b_rows::<T, 8>(b, (p0, kc), j0, dst),
            16 => return pack_b_rows::<T, 16>(b, (p0, kc), j0, dst),
            32 => return pack_b_rows::<T, 32>(b, (p0, kc), j0, dst),
            _ => {}
        }
    }
    let bt = b.t();
    for (jp, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
        let j = j0 + jp * nr;
        pack_panel(&bt, (j, nr.min(bt.rows - j)), (p0, kc), nr, panel);
    }
}

/// [`pack_b`] for a row-major `b`: reads each row's stretch once, front to back, and
/// deals it out to the panels `W` values at a time (a panel at a time would stride
/// across rows and miss the cache; a fixed-size copy is two vector moves, where a
/// slice copy of unknown length is a call to memcpy).
fn pack_b_rows<T: Element, const W: usize>(
    b: &MatRef<T>,
    (p0, kc): (usize, usize),
    j0: usize,
    dst: &mut [T],
) {
    let cols = (dst.len() / kc).min(b.cols - j0);
    for p in 0..kc {
        let start = b.offset + (p0 + p) * b.rs + j0;
        let row = &b.data[start..start + cols];
        let mut chunks = row.chunks_exact(W);
        let mut panels = dst.chunks_exact_mut(kc * W);
        // chunks first: zip stops on it without taking a panel the tail needs
        for (chunk, panel) in chunks.by_ref().zip(panels.by_ref()) {
            let out: &mut [T; W] = (&mut panel[p * W..(p + 1) * W])
                .try_into()
                .expect("W values");
            *out = chunk.try_into().expect("W values");
        }
        let tail = chunks.remainder();
        if let Some(panel) = panels.next() {
            let out = &mut panel[p * W..(p + 1) * W];
            out[..tail.len()].copy_from_slice(tail);
            out[tail.len()..].fill(T::ZERO);
        }
    }
}

/// Packs lines `first..first + valid` of `x` (zeros for the rest of `width`), steps
/// `p0..p0 + kc`, into `panel`. The widths the kernels use get a fixed-size copy.
fn pack_panel<T: Element>(
    x: &MatRef<T>,
    lines: (usize, usize),
    steps: (usize, usize),
    width: usize,
    panel: &mut [T],
) {
    match width {
        6 => pack_fixed::<T, 6>(x, lines, steps, panel),
        8 => pack_fixed::<T, 8>(x, lines, steps, panel),
        12 => pack_fixed::<T, 12>(x, lines, steps, panel),
        16 => pack_fixed::<T, 16>(x, lines, steps, panel),
        32 => pack_fixed::<T, 32>(x, lines, steps, panel),
        _ => {
            let (first, valid) = lines;
            let (p0, kc) = steps;
            for (p, out) in panel.chunks_exact_mut(width).take(kc).enumerate() {
                for (l, v) in out.iter_mut().enumerate() {
                    *v = if l < valid {
                        x.at(first + l, p0 + p)
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

fn pack_fixed<T: Element, const W: usize>(
    x: &MatRef<T>,
    (first, valid): (usize, usize),
    (p0, kc): (usize, usize),
    panel: &mut [T],
) {
    let steps = panel.chunks_exact_mut(W).take(kc);
    if x.rs == 1 && valid == W {
        // each step's W values are contiguous in x
        for (p, out) in steps.enumerate() {
            let start = x.offset + (p0 + p) * x.cs + first;
            let src: &[T; W] = x.data[start..start + W].try_into().expect("W values");
            let out: &mut [T; W] = out.try_into().expect("W values");
            *out = *src;
        }
    } else if x.cs == 1 {
        // each line is contiguous along the steps: transpose blocks of 8 steps from
        // `valid` streams (fixed-size arrays, so no per-element bounds checks)
        let mut lines: [&[T]; W] = [&[]; W];
        for (l, line) in lines.iter_mut().enumerate().take(valid) {
            let start = x.offset + (first + l) * x.rs + p0;
            *line = &x.data[start..start + kc];
        }
        const B: usize = 8;
        let full = kc / B * B;
        let (head, tail) = panel[..kc * W].split_at_mut(full * W);
        for (pb, out) in head.chunks_exact_mut(B * W).enumerate() {
            let mut block = [[T::ZERO; B]; W];
            for (dst, line) in block.iter_mut().zip(&lines).take(valid) {
                *dst = line[pb * B..pb * B + B].try_into().expect("B values");
            }
            for (q, step) in out.chunks_exact_mut(W).enumerate() {
                let step: &mut [T; W] = step.try_into().expect("W values");
                for l in 0..W {
                    step[l] = block[l][q];
                }
            }
        }
        for (q, step) in tail.chunks_exact_mut(W).enumerate() {
            for (l, v) in step.iter_mut().enumerate() {
                *v = if l < valid {
                    lines[l][full + q]
                } else {
                    T::ZERO
                };
            }
        }
    } else {
        for (p, out) in steps.enumerate() {
            for (l, v) in out.iter_mut().enumerate() {
                *v = if l < valid {
                    x.at(first + l, p0 + p)
                } else {
                    T::ZERO
                };
            }
        }
    }
}
