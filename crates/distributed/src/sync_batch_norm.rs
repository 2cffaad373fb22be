//! [`SyncBatchNorm`]: batch normalization whose statistics span every rank's batch.

use chainrule_autograd::{IntTensor, Result as EngineResult, Tensor, Var};
use chainrule_nn::layers::BatchNorm;
use chainrule_nn::{Buffer, Module, ModuleState};

use crate::{all_reduce, Error, Wire, World};

/// A [`BatchNorm`] whose training-mode mean and variance are those of the global
/// batch — every rank's share together — rather than of this rank's share
/// (PyTorch's `SyncBatchNorm`). With it, data-parallel training normalizes exactly as
/// one process on the whole batch does. Parameters and buffers are the wrapped
/// layer's, under the same names, so checkpoints load either way; eval mode, and a
/// world of one rank, are plain batch norm.
///
/// The statistics take two all-reduces per layer and step (the sum, then the squared
/// deviations from the global mean: the two-pass variance, no cancellation), and
/// backward two more; every rank must run forward and backward through the layer.
///
/// ```no_run
/// use chainrule_distributed::{SyncBatchNorm, World};
/// use chainrule_nn::layers::BatchNorm2d;
/// let world = World::init()?;
/// let bn = SyncBatchNorm::new(BatchNorm2d::<f32>::new(16)?, &world);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SyncBatchNorm<T: Wire = f32> {
    /// The layer whose parameters, buffers and options are used.
    pub inner: BatchNorm<T>,
    world: World,
}

impl<T: Wire> SyncBatchNorm<T> {
    /// Synchronizes `inner`'s statistics over `world`.
    pub fn new(inner: BatchNorm<T>, world: &World) -> Self {
        SyncBatchNorm {
            inner,
            world: world.clone(),
        }
    }

    /// The global batch's per-channel mean and biased variance, shaped to broadcast
    /// against `x`, and the global count of values per channel.
    fn global_moments(&self, x: &Var<T>) -> crate::Result<(Var<T>, Var<T>, f64)> {
        let dims = x.value().dims().to_vec();
        let rank = dims.len();
        if rank < 2 {
            return Err(Error::Invalid {
                op: "SyncBatchNorm",
                site: chainrule_autograd::Site::caller(),
                reason: format!("input {dims:?} has no channel dimension (want [N, C, ...])"),
            });
        }
        let channels = dims[1];
        let reduce: Vec<isize> = (0..rank as isize).filter(|&d| d != 1).collect();
        let local = x.value().numel().checked_div(channels).unwrap_or(0);
        let count = self.world.all_reduce_sum(vec![local as f64])?[0];
        if count < 2.0 {
            return Err(Error::Invalid {
                op: "SyncBatchNorm",
                site: chainrule_autograd::Site::caller(),
                reason: format!(
                    "{count} values per channel over all ranks (input {dims:?}); \
                     training needs at least 2"
                ),
            });
        }
        let mut bshape = vec![1isize; rank];
        bshape[1] = channels as isize;
        let inv = 1.0 / count;
        let sum = all_reduce(&self.world, &x.sum_dims(&reduce, false)?)?;
        let mean = sum.mul_scalar(inv).reshape(&bshape)?;
        let dev = (x - &mean)?;
        let sq = all_reduce(&self.world, &dev.square().sum_dims(&reduce, false)?)?;
        let var = sq.mul_scalar(inv).reshape(&bshape)?;
        Ok((mean, var, count))
    }

    fn forward_synced(&self, x: &Var<T>) -> crate::Result<Var<T>> {
        let (mean, var, count) = self.global_moments(x)?;
        let config = self.inner.config();
        let rank = x.value().dims().len();
        let mut bshape = vec![1isize; rank];
        bshape[1] = -1;
        let tape = x.tape();
        let mut y = ((x - &mean)? / &var.add_scalar(config.eps).sqrt())?;
        if let Some(w) = tape.param_opt(self.inner.weight.as_ref()) {
            y = (&y * &w.reshape(&bshape)?)?;
        }
        if let Some(b) = tape.param_opt(self.inner.bias.as_ref()) {
            y = (&y + &b.reshape(&bshape)?)?;
        }
        if let (Some(rm), Some(rv), Some(nb)) = (
            &self.inner.running_mean,
            &self.inner.running_var,
            &self.inner.num_batches_tracked,
        ) {
            update_running(rm, rv, nb, config.momentum, &mean, &var, count)?;
        }
        Ok(y)
    }
}

/// PyTorch's running-statistics update with the global batch's mean and unbiased
/// variance (`momentum: None` is the cumulative average).
fn update_running<T: Wire>(
    rm: &Buffer<T>,
    rv: &Buffer<T>,
    nb: &Buffer<T>,
    momentum: Option<f64>,
    mean: &Var<T>,
    var: &Var<T>,
    count: f64,
) -> crate::Result<()> {
    let seen = nb
        .int()
        .and_then(|c| c.data().first().copied())
        .unwrap_or(0)
        .saturating_add(1);
    let m = momentum.unwrap_or(1.0 / seen as f64);
    let unbias = count / (count - 1.0);
    let blend = |old: Tensor<T>, new: &[T], scale: f64| -> crate::Result<Tensor<T>> {
        let data = old
            .data()
            .iter()
            .zip(new)
            .map(|(&o, &n)| T::from_f64((1.0 - m) * o.to_f64() + m * scale * n.to_f64()))
            .collect();
        Ok(Tensor::from_vec(data, old.dims())?)
    };
    let invalid = |what: &str| Error::Invalid {
        op: "SyncBatchNorm",
        site: chainrule_autograd::Site::caller(),
        reason: format!("{what} is not a float buffer"),
    };
    let old_mean = rm.float().ok_or_else(|| invalid("running_mean"))?;
    let old_var = rv.float().ok_or_else(|| invalid("running_var"))?;
    rm.set_float(blend(old_mean, mean.value().data(), 1.0)?);
    rv.set_float(blend(old_var, var.value().data(), unbias)?);
    nb.set_int(IntTensor::from_vec(vec![seen], &[])?);
    Ok(())
}

impl<T: Wire> ModuleState<T> for SyncBatchNorm<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &chainrule_autograd::Param<T>)) {
        self.inner.visit_params(prefix, f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        self.inner.visit_buffers(prefix, f);
    }

    fn set_training(&self, training: bool) {
        self.inner.set_training(training);
    }
}

impl<T: Wire> Module<T> for SyncBatchNorm<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> EngineResult<Var<T>> {
        if !self.inner.is_training() || self.world.size() == 1 {
            return self.inner.forward(x);
        }
        self.forward_synced(x).map_err(|e| match e {
            Error::Engine(e) => e,
            other => chainrule_autograd::Error::Invalid {
                what: "SyncBatchNorm",
                reason: other.to_string(),
            },
        })
    }
}
