//! Normalization: batch, layer and group norm, composed of recorded ops (mean,
//! subtract, square, rsqrt, scale, shift) so every order of derivative follows from
//! theirs. Batch norm in training mode also updates the caller's running statistics.

use chainrule_tensor::{Element, Tensor, TensorError};

use chainrule_tensor::kernels::normalize::{AffineAxis, NormLayout};

use crate::error::InOp;
use crate::ops::fused_norm::{normalize_recorded, Plan, Statistics};
use crate::ops::reduce::signed;
use crate::ops::shape_error;
use crate::{Result, Site, Unary, Var};

/// A batch norm's running statistics (PyTorch's `running_mean` and `running_var`
/// buffers), updated in place by [`Var::batch_norm`] in training mode.
///
/// ```
/// use chainrule_autograd::RunningStats;
/// let s = RunningStats::<f32>::new(3)?;
/// assert_eq!((s.mean.data(), s.var.data()), (&[0.0; 3][..], &[1.0; 3][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats<T: Element> {
    /// Per-channel mean, starting at 0.
    pub mean: Tensor<T>,
    /// Per-channel unbiased variance, starting at 1.
    pub var: Tensor<T>,
}

impl<T: Element> RunningStats<T> {
    /// Zeros for the mean and ones for the variance, as PyTorch initializes them.
    ///
    /// # Errors
    /// A channel count too large to allocate.
    pub fn new(channels: usize) -> Result<Self> {
        Ok(RunningStats {
            mean: Tensor::zeros(&[channels])?,
            var: Tensor::ones(&[channels])?,
        })
    }
}

/// The options of [`Var::batch_norm`], PyTorch's arguments of `F.batch_norm`.
///
/// ```
/// let o = chainrule_autograd::BatchNormOptions::default();
/// assert_eq!((o.training, o.momentum, o.eps), (false, 0.1, 1e-5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalize with the batch's statistics (and update the running ones), or with
    /// the running statistics.
    pub training: bool,
    /// The weight of the new batch in the running update: `running = (1 − m)·running
    /// + m·batch`. (PyTorch's `momentum=None`, a cumulative average, is `m = 1/k` for
    /// the k-th batch; the `BatchNorm` layer tracks k.)
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            training: false,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

impl<T: Element> Var<T> {
    /// Batch normalization of `[n, c]` or `[n, c, …]` over every dim but the channels
    /// (PyTorch's `F.batch_norm`), then `·weight + bias` per channel when given.
    /// Training mode normalizes with the batch's mean and biased variance and moves
    /// `stats` toward the batch's mean and unbiased variance by `momentum`; eval mode
    /// normalizes with `stats` (required then).
    ///
    /// ```
    /// use chainrule_autograd::{BatchNormOptions, RunningStats, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2])?);
    /// let mut stats = RunningStats::new(2)?;
    /// let train = BatchNormOptions { training: true, ..Default::default() };
    /// let y = x.batch_norm(Some(&mut stats), None, None, train)?;
    /// assert!((y.value().data()[0] + 1.0).abs() < 1e-5); // (1 − 2) / 1
    /// assert!((stats.mean.data()[1] - 2.0).abs() < 1e-12); // 0.9·0 + 0.1·20
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Fewer than 2 dims; weight, bias or statistics not `[c]`; training with one value
    /// per channel (PyTorch's error); eval mode without statistics.
    #[track_caller]
    pub fn batch_norm(
        &self,
        stats: Option<&mut RunningStats<T>>,
        weight: Option<&Var<T>>,
        bias: Option<&Var<T>>,
        options: BatchNormOptions,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "batch_norm";
        let dims = self.dims();
        if dims.len() < 2 {
            return Err(shape_error(
                op,
                site,
                format!("input {} must be [n, c] or [n, c, …]", self.shape()),
            ));
        }
        let c = dims[1];
        let channel = |name: &str, t: &Tensor<T>| -> Result<()> {
            if t.dims() == [c] {
                Ok(())
            } else {
                Err(shape_error(
                    op,
                    site,
                    format!("{name} {} for {c} channels", t.shape()),
                ))
            }
        };
        if let Some(w) = weight {
            channel("weight", w.value())?;
        }
        if let Some(b) = bias {
            channel("bias", b.value())?;
        }
        if let Some(s) = &stats {
            channel("running_mean", &s.mean)?;
            channel("running_var", &s.var)?;
        }
        // the channel axis broadcasts as [c, 1, …]
        let mut per_channel = vec![1isize; dims.len() - 1];
        per_channel[0] = c as isize;
        let reduced: Vec<isize> = std::iter::once(0).chain(2..dims.len() as isize).collect();
        let count: usize = dims
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != 1)
            .map(|(_, &d)| d)
            .product();
        let inner: usize = dims[2..].iter().product();
        let plan = Plan {
            layout: NormLayout {
                outer: dims[0],
                groups: c,
                inner,
            },
            axis: AffineAxis::Group,
            stats_dims: reduced.iter().map(|&d| d as usize).collect(),
            affine_dims: reduced.iter().map(|&d| d as usize).collect(),
            affine_shape: per_channel.iter().map(|&d| d as usize).collect(),
        };
        if options.training {
            if count <= 1 {
                return Err(shape_error(
                    op,
                    site,
                    format!(
                        "expected more than 1 value per channel when training, got input {}",
                        self.shape()
                    ),
                ));
            }
            let statistics = Statistics::Batch { eps: options.eps };
            let (y, moments) = normalize_recorded(self, op, site, plan, statistics, weight, bias)?;
            if let (Some(s), Some((mean, var))) = (stats, moments) {
                let m = options.momentum;
                let unbiased = count as f64 / (count as f64 - 1.0);
                let step = |old: &Tensor<T>, new: &[f64], k: f64| -> Result<Tensor<T>> {
                    let v = old
                        .data()
                        .iter()
                        .zip(new)
                        .map(|(&o, &n)| T::from_f64((1.0 - m) * o.to_f64() + m * k * n))
                        .collect();
                    Tensor::from_vec(v, &[c]).in_op(op, site)
                };
                s.mean = step(&s.mean, &mean, 1.0)?;
                s.var = step(&s.var, &var, unbiased)?;
            }
            Ok(y)
        } else {
            let Some(s) = stats else {
                return Err(shape_error(
                    op,
                    site,
                    "eval mode needs running statistics".into(),
                ));
            };
            let eps = T::from_f64(options.eps);
            let statistics = Statistics::Fixed {
                mean: s.mean.data().to_vec(),
                invstd: s
                    .var
                    .data()
                    .iter()
                    .map(|&v| (v + eps).powf(T::from_f64(-0.5)))
                    .collect(),
            };
            Ok(normalize_recorded(self, op, site, plan, statistics, weight, bias)?.0)
        }
    }

    /// Layer normalization over the trailing `normalized_shape` dims (PyTorch's
    /// `F.layer_norm`), then `·weight + bias` (each of `normalized_shape`) when given.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2])?);
    /// let y = x.layer_norm(&[2], None, None, 0.0)?;
    /// assert_eq!(y.value().data(), &[-1.0, 1.0, -1.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Trailing dims other than `normalized_shape`; weight or bias of another shape.
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var<T>>,
        bias: Option<&Var<T>>,
        eps: f64,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "layer_norm";
        let dims = self.dims();
        let k = normalized_shape.len();
        if k == 0 || k > dims.len() || dims[dims.len() - k..] != *normalized_shape {
            return Err(shape_error(
                op,
                site,
                format!(
                    "normalized_shape {normalized_shape:?} is not the trailing dims of input {}",
                    self.shape()
                ),
            ));
        }
        for (name, p) in [("weight", weight), ("bias", bias)] {
            if let Some(p) = p.filter(|p| p.dims() != normalized_shape) {
                return Err(shape_error(
                    op,
                    site,
                    format!(
                        "{name} {} for normalized_shape {normalized_shape:?}",
                        p.shape()
                    ),
                ));
            }
        }
        let nd = dims.len();
        let plan = Plan {
            layout: NormLayout {
                outer: 1,
                groups: dims[..nd - k].iter().product(),
                inner: normalized_shape.iter().product(),
            },
            axis: AffineAxis::Inner,
            stats_dims: (nd - k..nd).collect(),
            affine_dims: (0..nd - k).collect(),
            affine_shape: normalized_shape.to_vec(),
        };
        let statistics = Statistics::Batch { eps };
        Ok(normalize_recorded(self, op, site, plan, statistics, weight, bias)?.0)
    }

    /// Group normalization of `[n, c, …]` over each group of `c / num_groups` channels
    /// and the spatial dims (PyTorch's `F.group_norm`), then per-channel `·weight + bias`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[1, 4])?);
    /// let y = x.group_norm(2, None, None, 0.0)?;
    /// assert_eq!(y.value().data(), &[-1.0, 1.0, -1.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Fewer than 2 dims, channels not divisible by `num_groups`, weight or bias not `[c]`.
    #[track_caller]
    pub fn group_norm(
        &self,
        num_groups: usize,
        weight: Option<&Var<T>>,
        bias: Option<&Var<T>>,
        eps: f64,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "group_norm";
        let dims = self.dims();
        if dims.len() < 2 || num_groups == 0 || !dims[1].is_multiple_of(num_groups) {
            return Err(crate::Error::Op {
                op,
                site,
                source: TensorError::Attr {
                    attr: "num_groups",
                    reason: format!(
                        "{num_groups} groups for input {} (channels must divide evenly)",
                        self.shape()
                    ),
                },
            });
        }
        let c = dims[1];
        for (name, p) in [("weight", weight), ("bias", bias)] {
            if let Some(p) = p.filter(|p| p.dims() != [c]) {
                return Err(shape_error(
                    op,
                    site,
                    format!("{name} {} for {c} channels", p.shape()),
                ));
            }
        }
        let grouped = self.reshape(&[dims[0] as isize, num_groups as isize, -1])?;
        let normalized = grouped.standardize(&[2], eps)?.reshape(&signed(dims))?;
        let mut per_channel = vec![1isize; dims.len() - 1];
        per_channel[0] = c as isize;
        affine(normalized, weight, bias, &per_channel)
    }

    /// `(x − mean) / √(var + eps)` over `dims`, with the biased variance.
    #[track_caller]
    fn standardize(&self, dims: &[isize], eps: f64) -> Result<Var<T>> {
        let centered = self.sub(&self.mean_dims(dims, true)?)?;
        let var = centered.square().mean_dims(dims, true)?;
        centered.mul(&var.add_scalar(eps).unary(Unary::Powf(-0.5)))
    }
}

/// `x·weight + bias`, each reshaped to `shape` (which broadcasts against `x`).
#[track_caller]
fn affine<T: Element>(
    x: Var<T>,
    weight: Option<&Var<T>>,
    bias: Option<&Var<T>>,
    shape: &[isize],
) -> Result<Var<T>> {
    let x = match weight {
        Some(w) => x.mul(&w.reshape(shape)?)?,
        None => x,
    };
    match bias {
        Some(b) => x.add(&b.reshape(shape)?),
        None => Ok(x),
    }
}
