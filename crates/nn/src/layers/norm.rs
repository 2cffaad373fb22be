//! Normalization layers: BatchNorm (with running statistics as buffers), LayerNorm,
//! GroupNorm, with PyTorch's parameter and buffer names and defaults.

use std::sync::atomic::{AtomicBool, Ordering};

use chainrule_autograd::{
    BatchNormOptions, Element, IntTensor, Param, Result, RunningStats, Tensor, Var,
};

use crate::{Buffer, Module, ModuleState};

/// The options of [`BatchNorm`], PyTorch's constructor arguments.
///
/// ```
/// let c = chainrule_nn::layers::BatchNormConfig::default();
/// assert_eq!((c.eps, c.momentum, c.affine, c.track_running_stats), (1e-5, Some(0.1), true, true));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance.
    pub eps: f64,
    /// The running update's weight of a new batch; `None` is the cumulative average.
    pub momentum: Option<f64>,
    /// Learn a per-channel `weight` (ones) and `bias` (zeros).
    pub affine: bool,
    /// Keep `running_mean`, `running_var` and `num_batches_tracked`; without them
    /// every forward uses the batch's statistics.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// Batch normalization over every dim of `[n, c, …]` but the channels (PyTorch's
/// `BatchNorm1d` for `[n, c]` and `[n, c, l]`, `BatchNorm2d` for `[n, c, h, w]`):
/// batch statistics in training mode, updating the running ones; running statistics
/// in eval mode. Parameters `weight`, `bias`; buffers `running_mean`, `running_var`,
/// `num_batches_tracked`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::BatchNorm2d, Module, ModuleState};
/// let bn = BatchNorm2d::<f32>::new(3)?;
/// let x = Tape::new().constant(Tensor::ones(&[2, 3, 4, 4])?);
/// bn.forward(&x)?;
/// let names: Vec<String> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
/// assert_eq!(bn.named_buffers()[2].1.int().unwrap().data(), &[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchNorm<T: Element = f32> {
    /// `[c]`, ones, if affine.
    pub weight: Option<Param<T>>,
    /// `[c]`, zeros, if affine.
    pub bias: Option<Param<T>>,
    /// `[c]`, starting at 0, if tracked.
    pub running_mean: Option<Buffer<T>>,
    /// `[c]`, starting at 1, if tracked.
    pub running_var: Option<Buffer<T>>,
    /// Scalar count of training batches seen, if tracked.
    pub num_batches_tracked: Option<Buffer<T>>,
    config: BatchNormConfig,
    training: AtomicBool,
}

/// PyTorch's name for [`BatchNorm`] over `[n, c]` or `[n, c, l]`.
pub type BatchNorm1d<T = f32> = BatchNorm<T>;
/// PyTorch's name for [`BatchNorm`] over `[n, c, h, w]`.
pub type BatchNorm2d<T = f32> = BatchNorm<T>;

impl<T: Element> BatchNorm<T> {
    /// `channels` features with PyTorch's defaults.
    ///
    /// # Errors
    /// A channel count too large to allocate.
    pub fn new(channels: usize) -> crate::Result<Self> {
        Self::with_config(channels, BatchNormConfig::default())
    }

    /// `channels` features with the given options.
    ///
    /// # Errors
    /// A channel count too large to allocate; a momentum outside `[0, 1]`.
    pub fn with_config(channels: usize, config: BatchNormConfig) -> crate::Result<Self> {
        if let Some(m) = config.momentum.filter(|m| !(0.0..=1.0).contains(m)) {
            return Err(crate::Error::Invalid {
                what: "BatchNorm",
                reason: format!("momentum {m} is outside [0, 1]"),
            });
        }
        let affine = config.affine;
        let track = config.track_running_stats;
        Ok(BatchNorm {
            weight: affine
                .then(|| Tensor::ones(&[channels]).map(Param::new))
                .transpose()?,
            bias: affine
                .then(|| Tensor::zeros(&[channels]).map(Param::new))
                .transpose()?,
            running_mean: track
                .then(|| Tensor::zeros(&[channels]).map(Buffer::new))
                .transpose()?,
            running_var: track
                .then(|| Tensor::ones(&[channels]).map(Buffer::new))
                .transpose()?,
            num_batches_tracked: track
                .then(|| Buffer::new_int(IntTensor::from_vec(vec![0], &[]).expect("a scalar"))),
            config,
            training: AtomicBool::new(true),
        })
    }
}

impl<T: Element> BatchNorm<T> {
    /// The options it was built with.
    ///
    /// ```
    /// let bn = chainrule_nn::layers::BatchNorm2d::<f32>::new(3)?;
    /// assert_eq!(bn.config().momentum, Some(0.1));
    /// # Ok::<(), chainrule_nn::Error>(())
    /// ```
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// True in training mode (batch statistics), false in eval (running ones).
    ///
    /// ```
    /// use chainrule_nn::ModuleState;
    /// let bn = chainrule_nn::layers::BatchNorm2d::<f32>::new(3)?;
    /// bn.set_training(false);
    /// assert!(!bn.is_training());
    /// # Ok::<(), chainrule_nn::Error>(())
    /// ```
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}

impl<T: Element> ModuleState<T> for BatchNorm<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        for (name, p) in [("weight", &self.weight), ("bias", &self.bias)] {
            if let Some(p) = p {
                f(&format!("{prefix}{name}"), p);
            }
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        let named = [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ];
        for (name, b) in named {
            if let Some(b) = b {
                f(&format!("{prefix}{name}"), b);
            }
        }
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl<T: Element> Module<T> for BatchNorm<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let (w, b) = (
            tape.param_opt(self.weight.as_ref()),
            tape.param_opt(self.bias.as_ref()),
        );
        let training = self.training.load(Ordering::Relaxed);
        let (Some(mean), Some(var), Some(count)) = (
            &self.running_mean,
            &self.running_var,
            &self.num_batches_tracked,
        ) else {
            // no running statistics: the batch's, in both modes
            let opts = BatchNormOptions {
                training: true,
                momentum: 0.0,
                eps: self.config.eps,
            };
            return x.batch_norm(None, w.as_ref(), b.as_ref(), opts);
        };
        let mut stats = RunningStats {
            mean: mean.float().expect("running_mean is a float buffer"),
            var: var.float().expect("running_var is a float buffer"),
        };
        let mut momentum = self.config.momentum.unwrap_or(0.0);
        let mut seen = count
            .int()
            .and_then(|c| c.data().first().copied())
            .unwrap_or(0);
        if training {
            seen = seen.saturating_add(1);
            // momentum None: the cumulative average over the batches seen
            momentum = self.config.momentum.unwrap_or(1.0 / seen as f64);
        }
        let opts = BatchNormOptions {
            training,
            momentum,
            eps: self.config.eps,
        };
        let y = x.batch_norm(Some(&mut stats), w.as_ref(), b.as_ref(), opts)?;
        if training {
            mean.set_float(stats.mean);
            var.set_float(stats.var);
            count.set_int(IntTensor::from_vec(vec![seen], &[]).expect("a scalar"));
        }
        Ok(y)
    }
}

/// Layer normalization over the trailing `normalized_shape` dims (PyTorch's
/// `LayerNorm`); parameters `weight` (ones) and `bias` (zeros) unless
/// `elementwise_affine` is off.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::LayerNorm, Module};
/// let ln = LayerNorm::<f64>::new(&[2], 1e-5, true)?;
/// let x = Tape::new().constant(Tensor::from_vec(vec![1.0, 3.0], &[1, 2])?);
/// let y = ln.forward(&x)?;
/// assert!((y.value().data()[0] + 1.0).abs() < 1e-4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct LayerNorm<T: Element = f32> {
    /// `normalized_shape`, ones.
    pub weight: Option<Param<T>>,
    /// `normalized_shape`, zeros.
    pub bias: Option<Param<T>>,
    normalized_shape: Vec<usize>,
    eps: f64,
}

impl<T: Element> LayerNorm<T> {
    /// A layer over the trailing dims `normalized_shape`.
    ///
    /// # Errors
    /// An empty or too large `normalized_shape`.
    pub fn new(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
    ) -> crate::Result<Self> {
        if normalized_shape.is_empty() {
            return Err(crate::Error::Invalid {
                what: "LayerNorm",
                reason: "normalized_shape is empty".into(),
            });
        }
        let make = |ones: bool| -> crate::Result<Option<Param<T>>> {
            if !elementwise_affine {
                return Ok(None);
            }
            let t = if ones {
                Tensor::ones(normalized_shape)?
            } else {
                Tensor::zeros(normalized_shape)?
            };
            Ok(Some(Param::new(t)))
        };
        Ok(LayerNorm {
            weight: make(true)?,
            bias: make(false)?,
            normalized_shape: normalized_shape.to_vec(),
            eps,
        })
    }
}

impl<T: Element> Module<T> for LayerNorm<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let (w, b) = (
            tape.param_opt(self.weight.as_ref()),
            tape.param_opt(self.bias.as_ref()),
        );
        x.layer_norm(&self.normalized_shape, w.as_ref(), b.as_ref(), self.eps)
    }
}

/// Group normalization of `[n, c, …]` (PyTorch's `GroupNorm`); per-channel `weight`
/// (ones) and `bias` (zeros) when affine.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::GroupNorm, Module};
/// let gn = GroupNorm::<f32>::new(2, 4, 1e-5, true)?;
/// let x = Tape::new().constant(Tensor::ones(&[2, 4, 3, 3])?);
/// assert_eq!(gn.forward(&x)?.dims(), &[2, 4, 3, 3]);
/// assert!(GroupNorm::<f32>::new(3, 4, 1e-5, true).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct GroupNorm<T: Element = f32> {
    /// `[c]`, ones.
    pub weight: Option<Param<T>>,
    /// `[c]`, zeros.
    pub bias: Option<Param<T>>,
    num_groups: usize,
    eps: f64,
}

impl<T: Element> GroupNorm<T> {
    /// `num_channels` split into `num_groups` groups.
    ///
    /// # Errors
    /// Channels not divisible by the groups (PyTorch's rule), or too many to allocate.
    pub fn new(
        num_groups: usize,
        num_channels: usize,
        eps: f64,
        affine: bool,
    ) -> crate::Result<Self> {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(crate::Error::Invalid {
                what: "GroupNorm",
                reason: format!(
                    "num_channels {num_channels} must be divisible by num_groups {num_groups}"
                ),
            });
        }
        let (w, b) = if affine {
            (
                Some(Param::new(Tensor::ones(&[num_channels])?)),
                Some(Param::new(Tensor::zeros(&[num_channels])?)),
            )
        } else {
            (None, None)
        };
        Ok(GroupNorm {
            weight: w,
            bias: b,
            num_groups,
            eps,
        })
    }
}

impl<T: Element> Module<T> for GroupNorm<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let (w, b) = (
            tape.param_opt(self.weight.as_ref()),
            tape.param_opt(self.bias.as_ref()),
        );
        x.group_norm(self.num_groups, w.as_ref(), b.as_ref(), self.eps)
    }
}
