//! Normalization in one pass per direction: statistics per group of a
//! `[outer, groups, inner]` layout, each group's values being its `outer × inner`
//! elements (batch norm: `[n, c, h·w]` with a group per channel; layer norm:
//! `[1, rows, d]` with a group per row). Sums accumulate in f64, in a fixed order, so
//! results do not depend on the thread count.

use crate::tensor::zeroed;
use crate::Element;

/// The `[outer, groups, inner]` view of a contiguous tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormLayout {
    /// Blocks of `groups · inner` elements (batch norm: the batch).
    pub outer: usize,
    /// Independent statistics (batch norm: channels; layer norm: rows).
    pub groups: usize,
    /// Contiguous elements of one group within a block.
    pub inner: usize,
}

/// Which index a per-element scale and shift follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineAxis {
    /// One per group (batch norm's per-channel weight).
    Group,
    /// One per inner position (layer norm's weight over the normalized dims).
    Inner,
}

impl NormLayout {
    fn count(&self) -> usize {
        self.outer * self.inner
    }

    /// Calls `f(group, inner index, flat index)` for every element of group `k`.
    fn each_in_group(&self, k: usize, mut f: impl FnMut(usize, usize)) {
        for o in 0..self.outer {
            let start = (o * self.groups + k) * self.inner;
            for j in 0..self.inner {
                f(j, start + j);
            }
        }
    }
}

/// Per-group mean and biased variance (the variance from the centred values, as
/// PyTorch computes it: no cancellation).
pub fn moments<T: Element>(x: &[T], l: NormLayout) -> Vec<(f64, f64)> {
    let n = l.count().max(1) as f64;
    (0..l.groups)
        .map(|k| {
            let mut sum = 0.0;
            l.each_in_group(k, |_, i| sum += x[i].to_f64());
            let mean = sum / n;
            let mut sq = 0.0;
            l.each_in_group(k, |_, i| {
                let d = x[i].to_f64() - mean;
                sq += d * d;
            });
            (mean, sq / n)
        })
        .collect()
}

/// `(x − mean)·invstd·w + b` per element, with `mean` and `invstd` per group and the
/// optional `w`, `b` along `axis`.
pub fn normalize<T: Element>(
    x: &[T],
    l: NormLayout,
    mean: &[T],
    invstd: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    axis: AffineAxis,
) -> Vec<T> {
    let mut y = zeroed(x.len());
    for k in 0..l.groups {
        let (m, s) = (mean[k], invstd[k]);
        l.each_in_group(k, |j, i| {
            let a = match axis {
                AffineAxis::Group => k,
                AffineAxis::Inner => j,
            };
            let mut v = (x[i] - m) * s;
            if let Some(w) = weight {
                v *= w[a];
            }
            if let Some(b) = bias {
                v += b[a];
            }
            y[i] = v;
        });
    }
    y
}

/// The gradients of [`normalize`]: `(dx, dw, db)`, with `dw` and `db` along `axis`
/// (`dw` only when there is a weight). With `batch_statistics` the mean and invstd
/// were computed from `x` itself (training batch norm, layer norm):
/// `dx = invstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` per group, `ĝ = dy·w`; otherwise they
/// were constants (eval batch norm): `dx = ĝ·invstd`.
#[allow(clippy::too_many_arguments)] // the layout, statistics and options of one op
pub fn normalize_backward<T: Element>(
    x: &[T],
    dy: &[T],
    l: NormLayout,
    mean: &[T],
    invstd: &[T],
    weight: Option<&[T]>,
    axis: AffineAxis,
    batch_statistics: bool,
) -> (Vec<T>, Option<Vec<T>>, Vec<T>) {
    let affine_len = match axis {
        AffineAxis::Group => l.groups,
        AffineAxis::Inner => l.inner,
    };
    let mut dw = vec![0.0f64; affine_len];
    let mut db = vec![0.0f64; affine_len];
    let mut dx = zeroed(x.len());
    let n = l.count().max(1) as f64;
    for k in 0..l.groups {
        let (m, s) = (mean[k], invstd[k]);
        let scale = |j: usize| match (weight, axis) {
            (Some(w), AffineAxis::Group) => w[k],
            (Some(w), AffineAxis::Inner) => w[j],
            (None, _) => T::ONE,
        };
        let at = |j: usize| match axis {
            AffineAxis::Group => k,
            AffineAxis::Inner => j,
        };
        let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
        l.each_in_group(k, |j, i| {
            let xhat = (x[i] - m) * s;
            dw[at(j)] += (dy[i] * xhat).to_f64();
            db[at(j)] += dy[i].to_f64();
            let g = dy[i] * scale(j);
            sum_g += g.to_f64();
            sum_gx += (g * xhat).to_f64();
        });
        let (mean_g, mean_gx) = (T::from_f64(sum_g / n), T::from_f64(sum_gx / n));
        l.each_in_group(k, |j, i| {
            let g = dy[i] * scale(j);
            dx[i] = if batch_statistics {
                let xhat = (x[i] - m) * s;
                s * (g - mean_g - xhat * mean_gx)
            } else {
                g * s
            };
        });
    }
    let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    (dx, weight.map(|_| cast(dw)), cast(db))
}
