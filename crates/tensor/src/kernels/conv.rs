//! 2-D convolution (cross-correlation, as PyTorch) by im2col + GEMM, parallel over the
//! batch, and its backward as GEMMs plus col2im.

use rayon::prelude::*;

use super::gemm::{gemm, MatMut, MatRef};
use super::parallel::{self, Cost};
use crate::error::{attr_err, shape_err};
use crate::tensor::{alloc_zeroed, zeroed};
use crate::{Element, Shape, Tensor, TensorResult};

/// Attributes of a 2-D convolution, PyTorch's names and meanings; pairs are `(h, w)`.
///
/// ```
/// let p = chainrule_tensor::Conv2dParams { padding: [1, 1], ..Default::default() };
/// assert_eq!(p.stride, [1, 1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit zeros added on both sides.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Attributes of a 2-D transposed convolution (PyTorch's `conv_transpose2d`), the
/// adjoint of a [`Conv2dParams`] convolution; pairs are `(h, w)`.
///
/// ```
/// use chainrule_tensor::ConvTranspose2dParams;
/// let p = ConvTranspose2dParams { stride: [2, 2], padding: [1, 1], output_padding: [1, 1], ..Default::default() };
/// // (3 − 1)·2 − 2·1 + (3 − 1) + 1 + 1 = 6
/// assert_eq!(p.output_hw([3, 3], [3, 3])?, [6, 6]);
/// # Ok::<(), chainrule_tensor::TensorError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// The stride of the convolution this one is the adjoint of.
    pub stride: [usize; 2],
    /// That convolution's padding: removed from the output's borders.
    pub padding: [usize; 2],
    /// Extra rows and columns on the bottom and right, to reach the sizes a strided
    /// convolution maps to the same output; each must be smaller than its stride.
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channels split into this many independent groups.
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl ConvTranspose2dParams {
    /// The convolution this one is the adjoint of.
    pub fn adjoint_of(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    /// The output's `[h, w]` for an input `[h, w]` and kernel `[kh, kw]`:
    /// `(in − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1`.
    ///
    /// # Errors
    /// A zero stride or dilation, an output padding not smaller than its stride, an
    /// empty input, or a size that is not positive or overflows.
    pub fn output_hw(&self, input: [usize; 2], kernel: [usize; 2]) -> TensorResult<[usize; 2]> {
        let mut out = [0; 2];
        for k in 0..2 {
            let (s, p, op, d) = (
                self.stride[k],
                self.padding[k],
                self.output_padding[k],
                self.dilation[k],
            );
            if s == 0 || d == 0 {
                return Err(attr_err(
                    "stride",
                    format!(
                        "stride {:?} and dilation {:?} must be positive",
                        self.stride, self.dilation
                    ),
                ));
            }
            if op >= s {
                return Err(attr_err(
                    "output_padding",
                    format!(
                        "{:?} must be smaller than the stride {:?}",
                        self.output_padding, self.stride
                    ),
                ));
            }
            let full = input[k]
                .checked_sub(1)
                .and_then(|i| i.checked_mul(s))
                .and_then(|v| v.checked_add(d.checked_mul(kernel[k].checked_sub(1)?)?))
                .and_then(|v| v.checked_add(op + 1));
            out[k] = match full.and_then(|v| v.checked_sub(2 * p)) {
                Some(v) if v > 0 => v,
                _ => {
                    return Err(shape_err!(
                        "a transposed convolution of a {:?} input with a {:?} kernel and padding {:?} has no output",
                        input,
                        kernel,
                        self.padding
                    ))
                }
            };
        }
        Ok(out)
    }
}

/// Every size a convolution kernel needs, checked once.
#[derive(Clone, Debug)]
struct Geometry {
    /// The output's shape `[n, o, oh, ow]`.
    out: Shape,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    groups: usize,
    p: Conv2dParams,
}

impl Geometry {
    fn new(x: &Shape, w: &Shape, p: Conv2dParams) -> TensorResult<Self> {
        if x.ndim() != 4 || w.ndim() != 4 {
            return Err(shape_err!("input {x} and weight {w} must both be 4-D ([n, c, h, w] and [out, in/groups, kh, kw])"));
        }
        if p.stride.contains(&0) {
            return Err(attr_err(
                "stride",
                format!("{:?} must be positive", p.stride),
            ));
        }
        if p.dilation.contains(&0) {
            return Err(attr_err(
                "dilation",
                format!("{:?} must be positive", p.dilation),
            ));
        }
        let (xd, wd) = (x.dims(), w.dims());
        let (n, c, h, wi) = (xd[0], xd[1], xd[2], xd[3]);
        let (o, cg, kh, kw) = (wd[0], wd[1], wd[2], wd[3]);
        let g = p.groups;
        // groups beyond the channel counts divide two zero counts only, and would make
        // the kernels loop over empty groups: refused
        if g == 0 || c % g != 0 || o % g != 0 || g > c.max(o).max(1) {
            return Err(attr_err(
                "groups",
                format!("{g} must be positive and divide input channels {c} and output channels {o} (input {x}, weight {w})"),
            ));
        }
        if cg != c / g {
            return Err(shape_err!(
                "input has {c} channels but weight expects {} (input {x}, weight {w}, groups {g})",
                cg * g
            ));
        }
        let too_big = |attr: &'static str, v: [usize; 2]| {
            attr_err(
                attr,
                format!("{v:?} makes the convolution's sizes overflow (input {x}, weight {w})"),
            )
        };
        // (k − 1)·d + 1 and h + 2·pad, checked: a huge dilation or padding is an error,
        // not a wrapped size.
        let extent = |k: usize, d: usize| (k.max(1) - 1).checked_mul(d)?.checked_add(1);
        let padded = |len: usize, pad: usize| pad.checked_mul(2)?.checked_add(len);
        let (Some(eh), Some(ew)) = (extent(kh, p.dilation[0]), extent(kw, p.dilation[1])) else {
            return Err(too_big("dilation", p.dilation));
        };
        let (Some(ph), Some(pw)) = (padded(h, p.padding[0]), padded(wi, p.padding[1])) else {
            return Err(too_big("padding", p.padding));
        };
        if kh == 0 || kw == 0 || eh > ph || ew > pw {
            return Err(attr_err(
                "kernel_size",
                format!("dilated kernel {eh}×{ew} does not fit the padded input {ph}×{pw} (input {x}, weight {w})"),
            ));
        }
        let oh = (ph - eh) / p.stride[0] + 1;
        let ow = (pw - ew) / p.stride[1] + 1;
        // The output and one image's im2col buffer must be describable shapes; this
        // bounds every product the kernels form (n·o·oh·ow, c·kh·kw·oh·ow, offsets).
        let out = Shape::new(&[n, o, oh, ow]).map_err(|_| too_big("padding", p.padding))?;
        Shape::new(&[c, kh, kw, oh, ow]).map_err(|_| too_big("padding", p.padding))?;
        Ok(Geometry {
            out,
            n,
            c,
            h,
            w: wi,
            o,
            kh,
            kw,
            oh,
            ow,
            groups: g,
            p,
        })
    }

    fn plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the im2col matrix per group: `c/groups · kh · kw`.
    fn col_rows(&self) -> usize {
        self.c / self.groups * self.kh * self.kw
    }

    /// The output columns `ox` whose input column `ox·s + kj·d − pad` lies inside the
    /// image, as a half-open range, and that input column for the first of them.
    fn valid_cols(&self, kj: usize) -> (usize, usize, usize) {
        let (s, off) = (self.p.stride[1], kj * self.p.dilation[1]);
        let pad = self.p.padding[1];
        // ox·s + off ≥ pad  and  ox·s + off < w + pad
        let lo = pad.saturating_sub(off).div_ceil(s).min(self.ow);
        let hi = (self.w + pad)
            .saturating_sub(off)
            .div_ceil(s)
            .clamp(lo, self.ow);
        (lo, hi, lo * s + off - pad.min(lo * s + off))
    }

    /// The input row of output row `oy` for kernel row `ki`, if inside the image.
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.p.stride[0] + ki * self.p.dilation[0])
            .checked_sub(self.p.padding[0])
            .filter(|&iy| iy < self.h)
    }

    /// Fills `cols [c·kh·kw, oh·ow]` from one image `[c, h, w]`.
    fn im2col<T: Element>(&self, img: &[T], cols: &mut [T]) {
        let s = self.p.stride[1];
        let mut row = 0;
        for ch in 0..self.c {
            let plane = &img[ch * self.h * self.w..(ch + 1) * self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let (lo, hi, ix0) = self.valid_cols(kj);
                    let dst = &mut cols[row * self.plane()..(row + 1) * self.plane()];
                    if lo == hi {
                        dst.fill(T::ZERO);
                        row += 1;
                        continue;
                    }
                    for (oy, out_row) in dst.chunks_exact_mut(self.ow).enumerate() {
                        let Some(iy) = self.input_row(oy, ki) else {
                            out_row.fill(T::ZERO);
                            continue;
                        };
                        let src = &plane[iy * self.w + ix0..];
                        out_row[..lo].fill(T::ZERO);
                        out_row[hi..].fill(T::ZERO);
                        if s == 1 {
                            out_row[lo..hi].copy_from_slice(&src[..hi - lo]);
                        } else {
                            out_row[lo..hi]
                                .iter_mut()
                                .zip(src.iter().step_by(s))
                                .for_each(|(d, &v)| *d = v);
                        }
                    }
                    row += 1;
                }
            }
        }
    }

    /// Adds `cols [c·kh·kw, oh·ow]` back into one image gradient `[c, h, w]`.
    fn col2im<T: Element>(&self, cols: &[T], img: &mut [T]) {
        let s = self.p.stride[1];
        let mut row = 0;
        for ch in 0..self.c {
            let plane = &mut img[ch * self.h * self.w..(ch + 1) * self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let (lo, hi, ix0) = self.valid_cols(kj);
                    let src = &cols[row * self.plane()..(row + 1) * self.plane()];
                    if lo == hi {
                        row += 1;
                        continue;
                    }
                    for (oy, in_row) in src.chunks_exact(self.ow).enumerate() {
                        let Some(iy) = self.input_row(oy, ki) else {
                            continue;
                        };
                        let dst = &mut plane[iy * self.w + ix0..];
                        if s == 1 {
                            dst[..hi - lo]
                                .iter_mut()
                                .zip(&in_row[lo..hi])
                                .for_each(|(d, &v)| *d += v);
                        } else {
                            dst.iter_mut()
                                .step_by(s)
                                .zip(&in_row[lo..hi])
                                .for_each(|(d, &v)| *d += v);
                        }
                    }
                    row += 1;
                }
            }
        }
    }
}

/// Images per chunk of the weight-gradient sum: chunks are fixed by the batch size alone,
/// never by the thread count, so the partial sums add in the same order on any machine.
fn chunk_images(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

impl<T: Element> Tensor<T> {
    /// 2-D convolution of `self [n, c, h, w]` with `weight [o, c/groups, kh, kw]` and an
    /// optional `bias [o]`; output `[n, o, oh, ow]`.
    ///
    /// ```
    /// use chainrule_tensor::{Conv2dParams, Tensor};
    /// let x = Tensor::<f32>::ones(&[1, 1, 5, 5])?;
    /// let w = Tensor::<f32>::ones(&[2, 1, 3, 3])?;
    /// let y = x.conv2d(&w, None, Conv2dParams::default())?;
    /// assert_eq!(y.dims(), &[1, 2, 3, 3]);
    /// assert_eq!(y.data()[0], 9.0);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D operands, channel or group mismatch, zero stride or dilation, a kernel
    /// larger than the padded input, or a bias that is not `[o]`.
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        p: Conv2dParams,
    ) -> TensorResult<Tensor<T>> {
        let g = Geometry::new(self.shape(), weight.shape(), p)?;
        if let Some(b) = bias {
            if b.dims() != [g.o] {
                return Err(shape_err!(
                    "bias {} should be [{}] for weight {}",
                    b.shape(),
                    g.o,
                    weight.shape()
                ));
            }
        }
        let (plane, rows, og) = (g.plane(), g.col_rows(), g.o / g.groups);
        let mut out = crate::tensor::alloc_overwritten(&g.out)?;
        if out.is_empty() {
            return Ok(Tensor::from_parts(g.out, out));
        }
        let cols_len = g.c * g.kh * g.kw * plane;
        let image = |(x, y): (&[T], &mut [T])| -> TensorResult<()> {
            T::with_scratch(cols_len, |cols| {
                g.im2col(x, cols);
                for grp in 0..g.groups {
                    gemm(
                        MatRef::new(weight.data(), grp * og * rows, og, rows, false),
                        MatRef::new(&*cols, grp * rows * plane, rows, plane, false),
                        MatMut::new(&mut y[grp * og * plane..], og, plane),
                        false,
                    );
                }
            })?;
            if let Some(b) = bias {
                for (o, ys) in y.chunks_mut(plane).enumerate() {
                    ys.iter_mut().for_each(|v| *v += b.data()[o]);
                }
            }
            Ok(())
        };
        let x_img = g.c * g.h * g.w;
        let (xs, ys) = (x_img.max(1), (g.o * plane).max(1));
        // saturating: each factor is bounded by a checked shape, their product is not
        let macs = g.out.numel().saturating_mul(rows);
        let cost = Cost::Both(g.n.saturating_mul(cols_len), macs);
        if g.n > 1 && parallel::split(cost) {
            self.data()
                .par_chunks(xs)
                .zip(out.par_chunks_mut(ys))
                .try_for_each(image)?;
        } else {
            self.data()
                .chunks(xs)
                .zip(out.chunks_mut(ys))
                .try_for_each(image)?;
        }
        Ok(Tensor::from_parts(g.out, out))
    }

    /// Gradients of [`Tensor::conv2d`] with respect to its input, weight and bias, given
    /// the output gradient `grad`; each is computed only when asked for.
    ///
    /// # Errors
    /// The same checks as the forward, plus `grad` not having the output's shape.
    #[allow(clippy::type_complexity)]
    pub fn conv2d_backward(
        &self,
        weight: &Tensor<T>,
        grad: &Tensor<T>,
        p: Conv2dParams,
        needs: [bool; 3],
    ) -> TensorResult<(Option<Tensor<T>>, Option<Tensor<T>>, Option<Tensor<T>>)> {
        conv2d_backward_parts(
            (self.shape(), self.data()),
            (weight.shape(), weight.data()),
            grad,
            p,
            needs,
        )
    }

    /// The input gradient of [`Tensor::conv2d`] alone: `self` is the output gradient,
    /// `input` the convolved input's shape. As a function of `self` it is the adjoint
    /// of convolving with `weight`.
    ///
    /// ```
    /// use chainrule_tensor::{Conv2dParams, Shape, Tensor};
    /// let g = Tensor::<f32>::ones(&[1, 1, 2, 2])?;
    /// let w = Tensor::ones(&[1, 1, 2, 2])?;
    /// let input = Shape::new(&[1, 1, 3, 3])?;
    /// let dx = g.conv2d_input_grad(&w, &input, Conv2dParams::default())?;
    /// assert_eq!(dx.data()[4], 4.0); // the centre is in every window
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::conv2d_backward`].
    pub fn conv2d_input_grad(
        &self,
        weight: &Tensor<T>,
        input: &Shape,
        p: Conv2dParams,
    ) -> TensorResult<Tensor<T>> {
        let (dx, _, _) = conv2d_backward_parts(
            (input, &[][..]),
            (weight.shape(), weight.data()),
            self,
            p,
            [true, false, false],
        )?;
        dx.ok_or_else(|| shape_err!("conv2d input gradient missing"))
    }

    /// The weight gradient of [`Tensor::conv2d`] alone: `self` is the output gradient,
    /// `x` the convolved input, `weight` the weight's shape.
    ///
    /// ```
    /// use chainrule_tensor::{Conv2dParams, Shape, Tensor};
    /// let g = Tensor::<f32>::ones(&[1, 1, 2, 2])?;
    /// let x = Tensor::ones(&[1, 1, 3, 3])?;
    /// let dw = g.conv2d_weight_grad(&x, &Shape::new(&[1, 1, 2, 2])?, Conv2dParams::default())?;
    /// assert_eq!(dw.data(), &[4.0; 4]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::conv2d_backward`].
    pub fn conv2d_weight_grad(
        &self,
        x: &Tensor<T>,
        weight: &Shape,
        p: Conv2dParams,
    ) -> TensorResult<Tensor<T>> {
        let (_, dw, _) = conv2d_backward_parts(
            (x.shape(), x.data()),
            (weight, &[][..]),
            self,
            p,
            [false, true, false],
        )?;
        dw.ok_or_else(|| shape_err!("conv2d weight gradient missing"))
    }
}

/// The three gradients of a convolution from shapes and data; the input's data is read
/// only for the weight gradient and the weight's only for the input gradient.
#[allow(clippy::type_complexity)]
fn conv2d_backward_parts<T: Element>(
    (x_shape, x_data): (&Shape, &[T]),
    (w_shape, w_data): (&Shape, &[T]),
    grad: &Tensor<T>,
    p: Conv2dParams,
    needs: [bool; 3],
) -> TensorResult<(Option<Tensor<T>>, Option<Tensor<T>>, Option<Tensor<T>>)> {
    {
        let g = Geometry::new(x_shape, w_shape, p)?;
        if grad.shape() != &g.out {
            return Err(shape_err!(
                "gradient {} should be [{}, {}, {}, {}]",
                grad.shape(),
                g.n,
                g.o,
                g.oh,
                g.ow
            ));
        }
        let bias_shape = Shape::new(&[g.o])?;
        if grad.numel() == 0 {
            // no output, so every gradient is a sum of nothing
            let zeros = |on: bool, shape: &Shape| -> TensorResult<Option<Tensor<T>>> {
                Ok(if on {
                    Some(Tensor::from_parts(shape.clone(), alloc_zeroed(shape)?))
                } else {
                    None
                })
            };
            return Ok((
                zeros(needs[0], x_shape)?,
                zeros(needs[1], w_shape)?,
                zeros(needs[2], &bias_shape)?,
            ));
        }
        let (plane, rows, og) = (g.plane(), g.col_rows(), g.o / g.groups);
        let (x_img, y_img) = (g.c * g.h * g.w, g.o * plane);
        let per_chunk = chunk_images(g.n);
        let wlen = w_shape.numel();
        let mut dx = zeroed(if needs[0] { x_shape.numel() } else { 0 });
        // One chunk of images: its weight-gradient partial sum, and its slice of dx.
        let chunk = |ci: usize, dx_chunk: &mut [T]| -> TensorResult<Vec<T>> {
            let mut dw = zeroed(if needs[1] { wlen } else { 0 });
            T::with_scratch(g.c * g.kh * g.kw * plane, |cols| {
                let first = ci * per_chunk;
                for img in first..(first + per_chunk).min(g.n) {
                    let gy = &grad.data()[img * y_img..(img + 1) * y_img];
                    if needs[1] {
                        g.im2col(&x_data[img * x_img..(img + 1) * x_img], cols);
                        for grp in 0..g.groups {
                            gemm(
                                MatRef::new(gy, grp * og * plane, og, plane, false),
                                MatRef::new(&*cols, grp * rows * plane, rows, plane, true),
                                MatMut::new(&mut dw[grp * og * rows..], og, rows),
                                true,
                            );
                        }
                    }
                    if needs[0] {
                        for grp in 0..g.groups {
                            gemm(
                                MatRef::new(w_data, grp * og * rows, og, rows, true),
                                MatRef::new(gy, grp * og * plane, og, plane, false),
                                MatMut::new(&mut cols[grp * rows * plane..], rows, plane),
                                false,
                            );
                        }
                        let local = img - first;
                        g.col2im(cols, &mut dx_chunk[local * x_img..(local + 1) * x_img]);
                    }
                }
            })?;
            Ok(dw)
        };
        let chunks = g.n.div_ceil(per_chunk);
        let mut dx_chunks: Vec<&mut [T]> = if needs[0] {
            dx.chunks_mut((per_chunk * x_img).max(1)).collect()
        } else {
            Vec::new()
        };
        dx_chunks.resize_with(chunks, || &mut []);
        let passes = usize::from(needs[0]) + usize::from(needs[1]);
        // saturating: each factor is bounded by a checked shape, their product is not
        let macs = grad.numel().saturating_mul(rows).saturating_mul(passes);
        let cols = g.n.saturating_mul(rows * g.groups * plane);
        let partials: Vec<Vec<T>> = if parallel::split(Cost::Both(cols, macs)) {
            dx_chunks
                .into_par_iter()
                .enumerate()
                .map(|(ci, d)| chunk(ci, d))
                .collect::<TensorResult<_>>()?
        } else {
            dx_chunks
                .into_iter()
                .enumerate()
                .map(|(ci, d)| chunk(ci, d))
                .collect::<TensorResult<_>>()?
        };
        let dw = needs[1].then(|| {
            let mut dw = zeroed(wlen);
            for part in &partials {
                dw.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
            }
            Tensor::from_parts(w_shape.clone(), dw)
        });
        let db = needs[2].then(|| {
            let mut db = zeroed(g.o);
            for img in grad.data().chunks(y_img.max(1)) {
                for (o, ys) in img.chunks(plane.max(1)).enumerate() {
                    db[o] += ys.iter().copied().sum::<T>();
                }
            }
            Tensor::from_parts(bias_shape, db)
        });
        let dx = needs[0].then(|| Tensor::from_parts(x_shape.clone(), dx));
        Ok((dx, dw, db))
    }
}
