//! Max, average and adaptive-average 2-D pooling with PyTorch's window and divisor rules.

use rayon::prelude::*;

use super::parallel::{self, Cost};
use crate::error::{attr_err, shape_err};
use crate::tensor::alloc_zeroed;
use crate::{Element, Shape, Tensor, TensorResult};

/// Attributes of `max_pool2d`; PyTorch's defaults are stride = kernel, no padding.
///
/// ```
/// let p = chainrule_tensor::MaxPool2dParams::new([2, 2]);
/// assert_eq!(p.stride, [2, 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dParams {
    /// Window size.
    pub kernel_size: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit −∞ padding on both sides (at most half the kernel).
    pub padding: [usize; 2],
    /// Spacing between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up, so a partial last window is kept.
    pub ceil_mode: bool,
}

impl MaxPool2dParams {
    /// A `kernel_size` window with stride equal to the kernel.
    pub fn new(kernel_size: [usize; 2]) -> Self {
        MaxPool2dParams {
            kernel_size,
            stride: kernel_size,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
        }
    }
}

/// Attributes of `avg_pool2d`; PyTorch's defaults are stride = kernel, count padding.
///
/// ```
/// let p = chainrule_tensor::AvgPool2dParams::new([3, 3]);
/// assert!(p.count_include_pad);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dParams {
    /// Window size.
    pub kernel_size: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit zero padding on both sides (at most half the kernel).
    pub padding: [usize; 2],
    /// Round the output size up, so a partial last window is kept.
    pub ceil_mode: bool,
    /// Divide by the window size including padding (true) or by the real elements only.
    pub count_include_pad: bool,
}

impl AvgPool2dParams {
    /// A `kernel_size` window with stride equal to the kernel.
    pub fn new(kernel_size: [usize; 2]) -> Self {
        AvgPool2dParams {
            kernel_size,
            stride: kernel_size,
            padding: [0, 0],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

/// PyTorch's pooling output size along one axis.
fn pooled_len(
    input: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ceil: bool,
) -> TensorResult<usize> {
    if k == 0 {
        return Err(attr_err("kernel_size", "must be positive"));
    }
    if s == 0 {
        return Err(attr_err("stride", "must be positive"));
    }
    if d == 0 {
        return Err(attr_err("dilation", "must be positive"));
    }
    if p > k / 2 {
        return Err(attr_err(
            "padding",
            format!("{p} exceeds half the kernel size {k}"),
        ));
    }
    let overflow = |attr: &'static str, v: usize| {
        attr_err(
            attr,
            format!("{v} makes the pooling window's size overflow"),
        )
    };
    let span = (k - 1)
        .checked_mul(d)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| overflow("dilation", d))?;
    let padded = p
        .checked_mul(2)
        .and_then(|v| v.checked_add(input))
        .ok_or_else(|| overflow("padding", p))?;
    if padded < span {
        return Err(attr_err(
            "kernel_size",
            format!("window {span} is larger than the padded input {padded}"),
        ));
    }
    // (padded − span + s − 1) / s + 1 without forming padded − span + s − 1
    let rest = padded - span;
    let mut out = rest / s + 1 + usize::from(ceil && rest % s != 0);
    // The last window must start inside the input or its left padding.
    if ceil && (out - 1) * s >= input + p {
        out -= 1;
    }
    Ok(out)
}

/// The common 2×2, stride-2 window unrolled: the general loop's per-window bookkeeping
/// costs more than the four comparisons.
fn max_pool_2x2<T: Element>(x: &[T], w: usize, oh: usize, ow: usize, y: &mut [T], a: &mut [u32]) {
    for oy in 0..oh {
        let top = 2 * oy * w;
        for ox in 0..ow {
            let i = top + 2 * ox;
            let (mut best, mut at) = (x[i], i);
            for idx in [i + 1, i + w, i + w + 1] {
                let v = x[idx];
                // PyTorch keeps the first maximum and lets NaN win
                if v > best || v.is_nan() {
                    best = v;
                    at = idx;
                }
            }
            y[oy * ow + ox] = best;
            a[oy * ow + ox] = at as u32;
        }
    }
}

/// The kernel taps `lo..hi` of window `o` whose input index `o·s + t·d − p` lies in
/// `0..len`.
fn taps(o: usize, s: usize, d: usize, p: usize, k: usize, len: usize) -> (usize, usize) {
    let start = o * s;
    // t·d ≥ p − start  and  t·d < len + p − start
    let lo = p.saturating_sub(start).div_ceil(d).min(k);
    let hi = (len + p).saturating_sub(start).div_ceil(d).clamp(lo, k);
    (lo, hi)
}

/// [`pooled_len`] along both axes.
fn pooled_hw(
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    ceil: bool,
) -> TensorResult<[usize; 2]> {
    Ok([
        pooled_len(hw[0], k[0], s[0], p[0], d[0], ceil)?,
        pooled_len(hw[1], k[1], s[1], p[1], d[1], ceil)?,
    ])
}

fn check_4d(x: &Shape) -> TensorResult<[usize; 4]> {
    match x.dims() {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(shape_err!("input {x} must be 4-D [n, c, h, w]")),
    }
}

/// Runs `f(plane_in, plane_out, aux_out)` over every `[h, w]` plane, in parallel when big.
fn per_plane<T: Element, A: Send>(
    x: &[T],
    in_plane: usize,
    out: &mut [T],
    aux: &mut [A],
    out_plane: usize,
    f: impl Fn(&[T], &mut [T], &mut [A]) + Sync,
) {
    if in_plane == 0 || out_plane == 0 {
        return;
    }
    let aux_plane = if aux.is_empty() { 0 } else { out_plane };
    if parallel::split(Cost::Elements(x.len())) {
        let aux_chunks: Vec<&mut [A]> = if aux_plane > 0 {
            aux.chunks_mut(aux_plane).collect()
        } else {
            (0..out.len() / out_plane).map(|_| &mut [][..]).collect()
        };
        x.par_chunks(in_plane)
            .zip(out.par_chunks_mut(out_plane))
            .zip(aux_chunks)
            .for_each(|((a, b), c)| f(a, b, c));
    } else {
        for (i, (a, b)) in x
            .chunks(in_plane)
            .zip(out.chunks_mut(out_plane))
            .enumerate()
        {
            let c = if aux_plane > 0 {
                &mut aux[i * aux_plane..(i + 1) * aux_plane]
            } else {
                &mut [][..]
            };
            f(a, b, c);
        }
    }
}

impl<T: Element> Tensor<T> {
    /// Max pooling of `[n, c, h, w]`; also returns, per output, the flat index within its
    /// input plane of the chosen element (the first maximum), which the backward uses.
    ///
    /// ```
    /// use chainrule_tensor::{MaxPool2dParams, Tensor};
    /// let x = Tensor::<f32>::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4])?;
    /// let (y, _) = x.max_pool2d(MaxPool2dParams::new([2, 2]))?;
    /// assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D input, zero kernel/stride/dilation, padding over half the kernel, or a
    /// window larger than the padded input.
    pub fn max_pool2d(&self, p: MaxPool2dParams) -> TensorResult<(Tensor<T>, Vec<u32>)> {
        let [n, c, h, w] = check_4d(self.shape())?;
        let [oh, ow] = pooled_hw(
            [h, w],
            p.kernel_size,
            p.stride,
            p.padding,
            p.dilation,
            p.ceil_mode,
        )?;
        let out_shape = Shape::new(&[n, c, oh, ow])?;
        // nothing to pool; also skips the per-row tables of a possibly huge empty plane
        if out_shape.numel() == 0 {
            return Ok((Tensor::from_parts(out_shape, Vec::new()), Vec::new()));
        }
        if u32::try_from(h * w).is_err() {
            return Err(shape_err!(
                "input {} has planes of more than 2^32 elements; max_pool2d's indices are u32",
                self.shape()
            ));
        }
        let mut out = alloc_zeroed(&out_shape)?;
        let mut arg = crate::tensor::alloc_empty::<u32>(&out_shape)?;
        arg.resize(out.len(), 0);
        let (k, st, pd, dl) = (p.kernel_size, p.stride, p.padding, p.dilation);
        let unrolled_2x2 = p == MaxPool2dParams::new([2, 2]);
        let rows: Vec<(usize, usize)> = (0..oh)
            .map(|o| taps(o, st[0], dl[0], pd[0], k[0], h))
            .collect();
        let cols: Vec<(usize, usize)> = (0..ow)
            .map(|o| taps(o, st[1], dl[1], pd[1], k[1], w))
            .collect();
        per_plane(
            self.data(),
            h * w,
            &mut out,
            &mut arg,
            oh * ow,
            |x, y, a| {
                if unrolled_2x2 {
                    return max_pool_2x2(x, w, oh, ow, y, a);
                }
                for (oy, &(ki0, ki1)) in rows.iter().enumerate() {
                    for (ox, &(kj0, kj1)) in cols.iter().enumerate() {
                        // a window is never empty: it starts inside the input or its padding
                        let col0 = ox * st[1] + kj0 * dl[1] - pd[1];
                        let first = (oy * st[0] + ki0 * dl[0] - pd[0]) * w + col0;
                        let (mut best, mut at) = (x[first], first);
                        for ki in ki0..ki1 {
                            let row = (oy * st[0] + ki * dl[0] - pd[0]) * w + col0;
                            for t in 0..kj1 - kj0 {
                                let idx = row + t * dl[1];
                                let v = x[idx];
                                // PyTorch keeps the first maximum and lets NaN win; a select, not a
                                // branch: on real data the comparison is a coin toss
                                let take = (v > best) | v.is_nan();
                                best = if take { v } else { best };
                                at = if take { idx } else { at };
                            }
                        }
                        y[oy * ow + ox] = best;
                        a[oy * ow + ox] = at as u32;
                    }
                }
            },
        );
        Ok((Tensor::from_parts(out_shape, out), arg))
    }

    /// Backward of [`Tensor::max_pool2d`]: routes each output gradient to its arg-max.
    /// `self` is the output gradient; `input` is the pooled input's shape.
    ///
    /// # Errors
    /// `argmax` does not match the gradient, or an index lies outside the input plane.
    pub fn max_pool2d_backward(&self, input: &Shape, argmax: &[u32]) -> TensorResult<Tensor<T>> {
        let [n, c, h, w] = check_4d(input)?;
        let out_plane = self.numel() / (n * c).max(1);
        if argmax.len() != self.numel()
            || self.ndim() != 4
            || self.dims().get(..2) != Some(&[n, c][..])
        {
            return Err(shape_err!(
                "gradient {} does not match pooled input {}",
                self.shape(),
                input
            ));
        }
        let mut dx = alloc_zeroed(input)?;
        let plane = |(dxp, (gp, ap)): (&mut [T], (&[T], &[u32]))| -> TensorResult<()> {
            for (&g, &a) in gp.iter().zip(ap) {
                let slot = dxp
                    .get_mut(a as usize)
                    .ok_or_else(|| shape_err!("arg-max {a} outside a {h}×{w} plane"))?;
                *slot += g;
            }
            Ok(())
        };
        let (in_plane, out_plane) = ((h * w).max(1), out_plane.max(1));
        if parallel::split(Cost::Elements(dx.len())) {
            dx.par_chunks_mut(in_plane)
                .zip(
                    self.data()
                        .par_chunks(out_plane)
                        .zip(argmax.par_chunks(out_plane)),
                )
                .try_for_each(plane)?;
        } else {
            dx.chunks_mut(in_plane)
                .zip(self.data().chunks(out_plane).zip(argmax.chunks(out_plane)))
                .try_for_each(plane)?;
        }
        Ok(Tensor::from_parts(input.clone(), dx))
    }

    /// Average pooling of `[n, c, h, w]` with PyTorch's divisor rule.
    ///
    /// ```
    /// use chainrule_tensor::{AvgPool2dParams, Tensor};
    /// let x = Tensor::<f32>::ones(&[1, 1, 4, 4])?;
    /// assert_eq!(x.avg_pool2d(AvgPool2dParams::new([2, 2]))?.data(), &[1.0; 4]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, p: AvgPool2dParams) -> TensorResult<Tensor<T>> {
        let dims @ [n, c, h, w] = check_4d(self.shape())?;
        MeanWindows::avg(h, w, p, n * c)?.pool(self, dims)
    }

    /// Backward of [`Tensor::avg_pool2d`]; `self` is the output gradient.
    ///
    /// # Errors
    /// The gradient's shape does not match the pooling of `input`.
    pub fn avg_pool2d_backward(
        &self,
        input: &Shape,
        p: AvgPool2dParams,
    ) -> TensorResult<Tensor<T>> {
        let [n, c, h, w] = check_4d(input)?;
        MeanWindows::avg(h, w, p, n * c)?.spread(self, input)
    }

    /// Adaptive average pooling to `[oh, ow]`: window `i` spans
    /// `floor(i·h/oh) .. ceil((i+1)·h/oh)`. `[1, 1]` is global average pooling.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let x = Tensor::<f32>::ones(&[2, 3, 5, 5])?;
    /// assert_eq!(x.adaptive_avg_pool2d([1, 1])?.dims(), &[2, 3, 1, 1]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D input or a zero output size.
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> TensorResult<Tensor<T>> {
        let dims @ [n, c, h, w] = check_4d(self.shape())?;
        MeanWindows::adaptive(h, w, output_size, n * c)?.pool(self, dims)
    }

    /// Backward of [`Tensor::adaptive_avg_pool2d`]; `self` is the output gradient.
    ///
    /// # Errors
    /// The gradient is not `[n, c, oh, ow]` for `input`.
    pub fn adaptive_avg_pool2d_backward(&self, input: &Shape) -> TensorResult<Tensor<T>> {
        let [n, c, h, w] = check_4d(input)?;
        let [.., oh, ow] = check_4d(self.shape())?;
        MeanWindows::adaptive(h, w, [oh, ow], n * c)?.spread(self, input)
    }
}

/// One pooling window, clipped to the plane, and the divisor of its mean.
#[derive(Clone, Copy)]
struct Window {
    rows: (usize, usize),
    cols: (usize, usize),
    div: usize,
}

/// The windows of an average or adaptive-average pool over one `h × w` plane: both
/// pools are "mean over a window", differing only in where windows lie and what
/// divides their sum.
struct MeanWindows {
    w: usize,
    oh: usize,
    ow: usize,
    windows: Vec<Window>,
}

impl MeanWindows {
    /// `avg_pool2d`'s windows. PyTorch clips a window first to the padded plane (that
    /// size is the divisor with `count_include_pad`), then to the real plane.
    fn avg(h: usize, w: usize, p: AvgPool2dParams, planes: usize) -> TensorResult<Self> {
        let [oh, ow] = pooled_hw(
            [h, w],
            p.kernel_size,
            p.stride,
            p.padding,
            [1, 1],
            p.ceil_mode,
        )?;
        let span = |o: usize, axis: usize, len: usize| {
            let start = (o * p.stride[axis]) as isize - p.padding[axis] as isize;
            let end = (start + p.kernel_size[axis] as isize).min((len + p.padding[axis]) as isize);
            let lo = start.max(0) as usize;
            (
                (lo, (end.min(len as isize).max(0) as usize).max(lo)),
                (end - start) as usize,
            )
        };
        Self::build(w, [oh, ow], planes, |o| {
            let ((rows, padded_h), (cols, padded_w)) = (span(o / ow, 0, h), span(o % ow, 1, w));
            let real = (rows.1 - rows.0) * (cols.1 - cols.0);
            let div = if p.count_include_pad {
                padded_h * padded_w
            } else {
                real
            };
            Window {
                rows,
                cols,
                div: div.max(1),
            }
        })
    }

    /// `adaptive_avg_pool2d`'s windows: `floor(i·h/oh) .. ceil((i+1)·h/oh)`.
    fn adaptive(h: usize, w: usize, [oh, ow]: [usize; 2], planes: usize) -> TensorResult<Self> {
        if oh == 0 || ow == 0 || h == 0 || w == 0 {
            return Err(attr_err(
                "output_size",
                format!(
                    "{:?} and the input plane {h}×{w} must be non-empty",
                    [oh, ow]
                ),
            ));
        }
        if oh.checked_mul(h + 1).is_none() || ow.checked_mul(w + 1).is_none() {
            return Err(attr_err(
                "output_size",
                format!("{:?} over the input plane {h}×{w} overflows", [oh, ow]),
            ));
        }
        // o < out, so (o + 1)·len ≤ out·len, checked above
        let span =
            |o: usize, out: usize, len: usize| (o * len / out, ((o + 1) * len).div_ceil(out));
        Self::build(w, [oh, ow], planes, |o| {
            let (rows, cols) = (span(o / ow, oh, h), span(o % ow, ow, w));
            Window {
                rows,
                cols,
                div: (rows.1 - rows.0) * (cols.1 - cols.0),
            }
        })
    }

    /// The table of `window(o)` for every output `o` of an `oh × ow` plane, allocated
    /// fallibly before any image is pooled; empty when there are no `planes` to pool,
    /// however large the plane.
    fn build(
        w: usize,
        [oh, ow]: [usize; 2],
        planes: usize,
        window: impl Fn(usize) -> Window,
    ) -> TensorResult<Self> {
        let shape = Shape::new(&[oh, ow])?;
        let mut windows = Vec::new();
        if planes > 0 {
            windows = crate::tensor::alloc_empty::<Window>(&shape)?;
            windows.extend((0..shape.numel()).map(window));
        }
        Ok(MeanWindows { w, oh, ow, windows })
    }

    /// The mean of every window of every plane of `x [n, c, h, w]`.
    fn pool<T: Element>(&self, x: &Tensor<T>, [n, c, h, w]: [usize; 4]) -> TensorResult<Tensor<T>> {
        let out_shape = Shape::new(&[n, c, self.oh, self.ow])?;
        let mut out = alloc_zeroed(&out_shape)?;
        per_plane::<T, ()>(
            x.data(),
            h * w,
            &mut out,
            &mut [],
            self.oh * self.ow,
            |x, y, _| {
                for (y, win) in y.iter_mut().zip(&self.windows) {
                    let row = |iy: usize| {
                        x[iy * self.w + win.cols.0..iy * self.w + win.cols.1]
                            .iter()
                            .copied()
                            .sum::<T>()
                    };
                    *y = (win.rows.0..win.rows.1).map(row).sum::<T>() / T::from_f64(win.div as f64);
                }
            },
        );
        Ok(Tensor::from_parts(out_shape, out))
    }

    /// The backward of [`MeanWindows::pool`]: each output gradient, divided by its
    /// window's divisor, added to every input of the window.
    fn spread<T: Element>(&self, g: &Tensor<T>, input: &Shape) -> TensorResult<Tensor<T>> {
        let [n, c, h, w] = check_4d(input)?;
        if g.dims() != [n, c, self.oh, self.ow] {
            return Err(shape_err!(
                "gradient {} does not match pooled input {}",
                g.shape(),
                input
            ));
        }
        let mut dx = alloc_zeroed(input)?;
        let plane = |(dxp, gp): (&mut [T], &[T])| {
            for (&g, win) in gp.iter().zip(&self.windows) {
                let share = g / T::from_f64(win.div as f64);
                for iy in win.rows.0..win.rows.1 {
                    dxp[iy * w + win.cols.0..iy * w + win.cols.1]
                        .iter_mut()
                        .for_each(|v| *v += share);
                }
            }
        };
        let (in_plane, out_plane) = ((h * w).max(1), (self.oh * self.ow).max(1));
        if parallel::split(Cost::Elements(dx.len())) {
            dx.par_chunks_mut(in_plane)
                .zip(g.data().par_chunks(out_plane))
                .for_each(plane);
        } else {
            dx.chunks_mut(in_plane)
                .zip(g.data().chunks(out_plane))
                .for_each(plane);
        }
        Ok(Tensor::from_parts(input.clone(), dx))
    }
}
