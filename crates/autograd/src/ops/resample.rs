//! Padding and interpolation, composed of row selections (`index_select`, whose
//! backward scatters rows back), constants and weighted sums, so their derivatives of
//! every order follow from those ops.

use chainrule_tensor::{Element, IntTensor, Tensor, TensorError};

use crate::error::InOp;
use crate::ops::attr_error;
use crate::{Result, Site, Var};

/// How [`Var::pad`] fills the border, as PyTorch's `mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum PadMode {
    /// A constant value.
    #[default]
    Constant,
    /// The mirror image without repeating the edge (`[a b c]` → `c b | a b c | b a`).
    Reflect,
    /// The edge value repeated.
    Replicate,
}

/// How [`Var::interpolate`] reads between input pixels, as PyTorch's `mode`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InterpolateMode {
    /// The pixel at `floor(dst · in/out)`.
    Nearest,
    /// Linear in each of the two spatial dims.
    Bilinear {
        /// Map corner pixel centres onto corner pixel centres (PyTorch's
        /// `align_corners=True`) rather than the pixel areas' edges.
        align_corners: bool,
    },
}

/// The output size of [`Var::interpolate`]: explicit, or a scale factor per spatial dim.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InterpolateSize {
    /// `[h, w]` of the output.
    Size([usize; 2]),
    /// The output is `floor(in · factor)`; the sampling positions use `1/factor`, as
    /// PyTorch does when it does not recompute the factor.
    Scale([f64; 2]),
}

impl<T: Element> Var<T> {
    /// Pads the trailing dims (PyTorch's `F.pad`): `pad` lists `[left, right]` of the
    /// last dim, then of the one before, and so on; `value` fills constant padding.
    /// Reflect padding must be smaller than the padded dim.
    ///
    /// ```
    /// use chainrule_autograd::{PadMode, Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3])?);
    /// assert_eq!(x.pad(&[2, 1], PadMode::Reflect, 0.0)?.value().data(), &[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
    /// assert_eq!(x.pad(&[1, 0], PadMode::Replicate, 0.0)?.value().data(), &[1.0, 1.0, 2.0, 3.0]);
    /// assert_eq!(x.pad(&[0, 1], PadMode::Constant, 9.0)?.value().data(), &[1.0, 2.0, 3.0, 9.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// An odd-length `pad` or more pairs than dims; reflect padding at least as large as
    /// its dim; replicate or reflect padding of an empty dim.
    #[track_caller]
    pub fn pad(&self, pad: &[usize], mode: PadMode, value: f64) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "pad";
        let nd = self.dims().len();
        if !pad.len().is_multiple_of(2) || pad.len() / 2 > nd {
            return Err(attr_error(
                op,
                site,
                "pad",
                format!("{pad:?} needs [left, right] pairs for at most {nd} dims"),
            ));
        }
        let mut y = self.clone();
        for (k, pair) in pad.chunks(2).enumerate() {
            let dim = nd - 1 - k;
            let (left, right) = (pair[0], pair[1]);
            if left == 0 && right == 0 {
                continue;
            }
            let n = y.dims()[dim];
            y = match mode {
                PadMode::Constant => {
                    let block = |len: usize| -> Result<Var<T>> {
                        let mut dims = y.dims().to_vec();
                        dims[dim] = len;
                        Ok(y.tape()
                            .constant(Tensor::full(&dims, T::from_f64(value)).in_op(op, site)?))
                    };
                    let (l, r) = (block(left)?, block(right)?);
                    Var::concat(&[&l, &y, &r], dim as isize)?
                }
                PadMode::Reflect | PadMode::Replicate => {
                    let reflect = mode == PadMode::Reflect;
                    if n == 0 || (reflect && (left >= n || right >= n)) {
                        return Err(attr_error(
                            op,
                            site,
                            "pad",
                            format!(
                                "{mode:?} padding ({left}, {right}) of dim {dim} of extent {n}"
                            ),
                        ));
                    }
                    let last = n as i64 - 1;
                    let source = |j: i64| match (reflect, j) {
                        (true, j) if j < 0 => -j,
                        (true, j) if j > last => 2 * last - j,
                        (_, j) => j.clamp(0, last),
                    };
                    let rows: Vec<i64> = (-(left as i64)..n as i64 + right as i64)
                        .map(source)
                        .collect();
                    y.index_select(dim as isize, &IntTensor::from(rows))?
                }
            };
        }
        Ok(y)
    }

    /// Resizes the two spatial dims of `[n, c, h, w]` (PyTorch's `F.interpolate` with
    /// `mode='nearest'` or `'bilinear'`).
    ///
    /// ```
    /// use chainrule_autograd::{InterpolateMode, InterpolateSize, Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2])?);
    /// let up = x.interpolate(InterpolateSize::Scale([1.0, 2.0]), InterpolateMode::Nearest)?;
    /// assert_eq!(up.value().data(), &[1.0, 1.0, 2.0, 2.0]);
    /// let lin = x.interpolate(InterpolateSize::Size([1, 3]), InterpolateMode::Bilinear { align_corners: true })?;
    /// assert_eq!(lin.value().data(), &[1.0, 1.5, 2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// An input that is not 4-D; an output size of 0; a scale factor that is not
    /// positive and finite.
    #[track_caller]
    pub fn interpolate(&self, size: InterpolateSize, mode: InterpolateMode) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "interpolate";
        let &[_, _, h, w] = self.dims() else {
            return Err(crate::Error::Op {
                op,
                site,
                source: TensorError::Shape(format!("input {} must be [n, c, h, w]", self.shape())),
            });
        };
        let plans = [(2usize, h, 0usize), (3, w, 1)].map(|(dim, input, k)| {
            let (out, step) = match size {
                InterpolateSize::Size(s) => (s[k], input as f64 / s[k].max(1) as f64),
                InterpolateSize::Scale(f) => ((input as f64 * f[k]).floor() as usize, 1.0 / f[k]),
            };
            (dim, input, out, step)
        });
        if let InterpolateSize::Scale(f) = size {
            if let Some(bad) = f.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                return Err(attr_error(
                    op,
                    site,
                    "scale_factor",
                    format!("{bad} must be positive and finite"),
                ));
            }
        }
        let mut y = self.clone();
        for (dim, input, out, step) in plans {
            if out == 0 || input == 0 {
                return Err(attr_error(
                    op,
                    site,
                    "size",
                    format!("resizing dim {dim} from {input} to {out}"),
                ));
            }
            y = match mode {
                InterpolateMode::Nearest => {
                    let rows: Vec<i64> = (0..out)
                        .map(|j| ((j as f64 * step).floor() as i64).min(input as i64 - 1))
                        .collect();
                    y.index_select(dim as isize, &IntTensor::from(rows))?
                }
                InterpolateMode::Bilinear { align_corners } => {
                    y.linear_resize(dim, input, out, step, align_corners)?
                }
            };
        }
        Ok(y)
    }

    /// Linear resampling of one dim: `out[j] = (1 − λ)·x[i0] + λ·x[i1]`.
    #[track_caller]
    fn linear_resize(
        &self,
        dim: usize,
        input: usize,
        out: usize,
        step: f64,
        align_corners: bool,
    ) -> Result<Var<T>> {
        let (mut lo, mut hi, mut frac) = (
            Vec::with_capacity(out),
            Vec::with_capacity(out),
            Vec::with_capacity(out),
        );
        for j in 0..out {
            let src = if align_corners {
                if out > 1 {
                    j as f64 * (input as f64 - 1.0) / (out as f64 - 1.0)
                } else {
                    0.0
                }
            } else {
                ((j as f64 + 0.5) * step - 0.5).max(0.0)
            };
            let i0 = (src.floor() as usize).min(input - 1);
            lo.push(i0 as i64);
            hi.push((i0 + 1).min(input - 1) as i64);
            frac.push(T::from_f64(src - i0 as f64));
        }
        // λ along `dim`, broadcast over the others
        let mut shape = vec![1usize; self.dims().len()];
        shape[dim] = out;
        let lambda = Tensor::from_vec(frac, &shape)?;
        let keep = self.tape().constant(lambda.map(|l| T::ONE - l));
        let lambda = self.tape().constant(lambda);
        let a = self
            .index_select(dim as isize, &IntTensor::from(lo))?
            .mul(&keep)?;
        let b = self
            .index_select(dim as isize, &IntTensor::from(hi))?
            .mul(&lambda)?;
        a.add(&b)
    }
}
