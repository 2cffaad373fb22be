//! [`DistributedDataParallel`]: one model replicated on every rank, gradients averaged
//! over ranks in buckets that start travelling while backward is still running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use chainrule_autograd::{Gradients, Param, Site, Tensor, Var};
use chainrule_nn::{BufferValue, ModuleState};

use crate::comm::Payload;
use crate::{Error, Result, Wire, World};

/// How gradients are grouped for the all-reduce.
#[derive(Clone, Debug)]
pub struct DdpOptions {
    /// Largest bucket, in bytes of gradient (PyTorch's `bucket_cap_mb`, 25 MiB). A
    /// bucket starts its all-reduce as soon as all its gradients are final; smaller
    /// buckets start earlier and overlap more of backward, at more messages per step.
    pub bucket_cap_bytes: usize,
}

impl Default for DdpOptions {
    fn default() -> Self {
        DdpOptions {
            bucket_cap_bytes: 25 << 20,
        }
    }
}

/// Data-parallel training of one model over the ranks of a [`World`]: every rank holds
/// a replica, runs forward and backward on its share of the global batch, and
/// [`DistributedDataParallel::backward`] returns the gradients averaged over ranks,
/// so one optimizer step on every rank keeps the replicas equal and trains as one
/// big batch would (PyTorch's `DistributedDataParallel`).
///
/// At construction every rank's model is checked against rank 0's (parameter and
/// buffer names, shapes and dtype, hashed and compared) and rank 0's values are
/// broadcast. Gradients travel in buckets, in reverse definition order (the order
/// backward finishes them): each parameter's post-accumulate hook copies its final
/// gradient into its bucket, and a full bucket's all-reduce starts at once on the
/// communication thread while backward goes on. Buckets start in the same order on
/// every rank, so data-dependent control flow cannot mismatch collectives; a
/// parameter unused on a rank contributes zeros, and one unused on every rank gets no
/// gradient (as locally). Buffers (BatchNorm's running statistics) stay per rank
/// until [`DistributedDataParallel::sync_buffers`].
///
/// ```no_run
/// use chainrule_distributed::{DistributedDataParallel, World};
/// use chainrule_nn::{models::seed_cnn, optim::{Optimizer, Sgd}, Module, ModuleState};
/// use chainrule_autograd::{Reduction, Tape, Tensor};
/// use rand::SeedableRng;
/// let world = World::init()?;
/// let net = seed_cnn::<f32, _>(&mut rand::rngs::StdRng::seed_from_u64(0), true)?;
/// let ddp = DistributedDataParallel::new(&net, &world)?;
/// let mut opt = Sgd::new(net.parameters(), 0.05)?;
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::zeros(&[8, 1, 28, 28])?); // this rank's share
/// let loss = net.forward(&x)?.cross_entropy(&[0; 8], Reduction::Mean)?;
/// let grads = ddp.backward(&loss)?; // averaged over ranks
/// opt.step(&grads)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DistributedDataParallel<T: Wire = f32> {
    shared: Arc<Shared<T>>,
    params: Vec<Param<T>>,
    buffers: Vec<chainrule_nn::Buffer<T>>,
}

/// What the parameters' hooks share with `backward`.
struct Shared<T: Wire> {
    world: World,
    /// Hooks act only inside [`DistributedDataParallel::backward`].
    armed: AtomicBool,
    buckets: Mutex<Buckets<T>>,
}

struct Buckets<T> {
    list: Vec<Bucket<T>>,
    /// The first bucket whose all-reduce has not started.
    next: usize,
    /// A collective that could not start (the communication thread stopped).
    error: Option<Error>,
    /// Buckets of this pass started before backward ended.
    started_early: usize,
    /// The last finished pass's figures.
    last: BucketStats,
}

/// How the last [`DistributedDataParallel::backward`] sent its gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketStats {
    /// Gradient buckets (each one all-reduce).
    pub buckets: usize,
    /// Buckets whose all-reduce started while backward was still running (the rest
    /// started when it ended: the last bucket always, and any that held a parameter
    /// that was on the tape but got no gradient).
    pub started_during_backward: usize,
}

/// A group of parameters reduced as one flat buffer.
struct Bucket<T> {
    /// `(parameter index, offset, len)` for each member.
    members: Vec<(usize, usize, usize)>,
    /// The gradients, then one 0/1 "used on this rank" flag per member, which the
    /// sum turns into a count of ranks that used it.
    flat: Vec<T>,
    seen: Vec<bool>,
    filled: usize,
    answer: Option<Receiver<Payload>>,
}

impl<T: Wire> Bucket<T> {
    /// Where the "used" flags start in a flat buffer of `len` values.
    fn grad_len(&self, len: usize) -> usize {
        len - self.members.len()
    }
}

impl<T: Wire> DistributedDataParallel<T> {
    /// Replicates `model` over `world` with [`DdpOptions::default`].
    ///
    /// # Errors
    /// [`Error::ModelMismatch`] on every rank when some rank's model differs from rank
    /// 0's; [`Error::Stopped`] when the communication thread has gone.
    #[track_caller]
    pub fn new(model: &dyn ModuleState<T>, world: &World) -> Result<Self> {
        Self::with_options(model, world, DdpOptions::default())
    }

    /// Replicates `model` over `world`, bucketing as `options` says.
    ///
    /// # Errors
    /// As [`DistributedDataParallel::new`], and [`Error::Invalid`] for a zero bucket cap.
    #[track_caller]
    pub fn with_options(
        model: &dyn ModuleState<T>,
        world: &World,
        options: DdpOptions,
    ) -> Result<Self> {
        let site = Site::caller();
        if options.bucket_cap_bytes == 0 {
            return Err(Error::Invalid {
                op: "DistributedDataParallel",
                site,
                reason: "bucket_cap_bytes must be at least 1".into(),
            });
        }
        check_same_model(model, world, site)?;
        let named = model.named_parameters();
        let params: Vec<Param<T>> = named.iter().map(|(_, p)| p.clone()).collect();
        let buffers = model.named_buffers().into_iter().map(|(_, b)| b).collect();
        let list = plan_buckets(&params, options.bucket_cap_bytes / size_of::<T>().max(1));
        let shared = Arc::new(Shared {
            world: world.clone(),
            armed: AtomicBool::new(false),
            buckets: Mutex::new(Buckets {
                list,
                next: 0,
                error: None,
                started_early: 0,
                last: BucketStats::default(),
            }),
        });
        let ddp = DistributedDataParallel {
            shared,
            params,
            buffers,
        };
        ddp.broadcast_params(site)?;
        ddp.sync_buffers_at(site)?;
        ddp.register_hooks();
        Ok(ddp)
    }

    /// The world the model is replicated over.
    pub fn world(&self) -> &World {
        &self.shared.world
    }

    fn register_hooks(&self) {
        let st = self.shared.lock();
        for (b, bucket) in st.list.iter().enumerate() {
            for (m, &(p, _, _)) in bucket.members.iter().enumerate() {
                let weak: Weak<Shared<T>> = Arc::downgrade(&self.shared);
                self.params[p].register_post_accumulate_grad_hook(move |g| {
                    if let Some(shared) = weak.upgrade() {
                        shared.arrived(b, m, g);
                    }
                });
            }
        }
    }

    /// Rank 0's parameter values, on every rank.
    fn broadcast_params(&self, site: Site) -> Result<()> {
        let world = &self.shared.world;
        if world.size() == 1 {
            return Ok(());
        }
        let flat: Vec<T> = self
            .params
            .iter()
            .flat_map(|p| p.value().data().to_vec())
            .collect();
        let flat = world.broadcast_raw(flat, 0, site)?;
        let mut at = 0;
        for p in &self.params {
            let v = p.value();
            let n = v.numel();
            p.set(Tensor::from_vec(flat[at..at + n].to_vec(), v.dims())?);
            at += n;
        }
        Ok(())
    }

    /// Copies rank 0's buffers (BatchNorm's running statistics) to every rank, as
    /// PyTorch's `broadcast_buffers` does before each forward: call it before
    /// evaluating or saving on rank 0 when the model has buffers.
    ///
    /// # Errors
    /// The communication thread has stopped.
    #[track_caller]
    pub fn sync_buffers(&self) -> Result<()> {
        self.sync_buffers_at(Site::caller())
    }

    fn sync_buffers_at(&self, site: Site) -> Result<()> {
        let world = &self.shared.world;
        if world.size() == 1 || self.buffers.is_empty() {
            return Ok(());
        }
        let (mut floats, mut ints) = (Vec::<T>::new(), Vec::<i64>::new());
        for b in &self.buffers {
            match b.get() {
                BufferValue::Float(t) => floats.extend_from_slice(t.data()),
                BufferValue::Int(t) => ints.extend_from_slice(t.data()),
            }
        }
        let floats = world.broadcast_raw(floats, 0, site)?;
        let ints = world.broadcast_raw(ints, 0, site)?;
        let (mut f, mut i) = (0, 0);
        for b in &self.buffers {
            match b.get() {
                BufferValue::Float(t) => {
                    let n = t.numel();
                    b.set_float(Tensor::from_vec(floats[f..f + n].to_vec(), t.dims())?);
                    f += n;
                }
                BufferValue::Int(t) => {
                    let n = t.numel();
                    b.set_int(chainrule_autograd::IntTensor::from_vec(
                        ints[i..i + n].to_vec(),
                        t.dims(),
                    )?);
                    i += n;
                }
            }
        }
        Ok(())
    }

    /// How the last [`DistributedDataParallel::backward`] sent its gradients: how many
    /// buckets, and how many of them started while backward still ran (the overlap).
    ///
    /// ```no_run
    /// # use chainrule_distributed::{DistributedDataParallel, World};
    /// # fn after_a_step(ddp: &DistributedDataParallel<f32>) {
    /// let stats = ddp.bucket_stats();
    /// println!("{} of {} buckets overlapped backward", stats.started_during_backward, stats.buckets);
    /// # }
    /// ```
    pub fn bucket_stats(&self) -> BucketStats {
        self.shared.lock().last
    }

    /// Checks that every rank holds bitwise the same parameter and buffer values as
    /// rank 0 (a hash of their bytes, compared): true after any number of steps, since
    /// every rank applies the same averaged gradients with the same optimizer state.
    ///
    /// # Errors
    /// [`Error::ReplicasDiffer`] on every rank, naming the ranks that differ.
    #[track_caller]
    pub fn check_replicas(&self) -> Result<()> {
        let site = Site::caller();
        let mut bytes = Vec::new();
        for p in &self.params {
            bytes.extend(T::to_le_bytes_vec(p.value().data()));
        }
        for b in &self.buffers {
            match b.get() {
                BufferValue::Float(t) => bytes.extend(T::to_le_bytes_vec(t.data())),
                BufferValue::Int(t) => t.data().iter().for_each(|v| bytes.extend(v.to_le_bytes())),
            }
        }
        let world = &self.shared.world;
        let hashes = world.all_gather_word(fnv1a(&bytes), format!("check_replicas at {site}"))?;
        let differing: Vec<usize> = (0..world.size())
            .filter(|&r| hashes[r] != hashes[0])
            .collect();
        if differing.is_empty() {
            Ok(())
        } else {
            Err(Error::ReplicasDiffer { site, differing })
        }
    }

    /// Runs backward from `loss` (this rank's loss, a mean over its share of the
    /// global batch) and returns the gradients averaged over every rank. Every rank
    /// must call it once per step; the buckets' all-reduces overlap backward.
    ///
    /// # Errors
    /// Backward's own errors (then the ranks are out of step: end the job, e.g. with
    /// [`World::abort`]), or [`Error::Stopped`].
    pub fn backward(&self, loss: &Var<T>) -> Result<Gradients<T>> {
        {
            // Parameters this tape never saw get no gradient here: settle them now, so
            // their buckets need not wait for the end of backward.
            let tape = loss.tape();
            let mut st = self.shared.lock();
            for b in 0..st.list.len() {
                for m in 0..st.list[b].members.len() {
                    if !tape.has_param(&self.params[st.list[b].members[m].0]) {
                        st.list[b].filled += 1;
                    }
                }
            }
            st.launch_ready(&self.shared.world);
        }
        self.shared.armed.store(true, Ordering::Release);
        let local = loss.backward();
        self.shared.armed.store(false, Ordering::Release);
        let mut grads = match local {
            Ok(g) => g,
            Err(e) => {
                self.shared.lock().reset();
                return Err(e.into());
            }
        };
        let mut st = self.shared.lock();
        st.last = BucketStats {
            buckets: st.list.len(),
            started_during_backward: st.started_early,
        };
        // Buckets still open (a parameter without a gradient on this rank) start now,
        // zeros standing in, in bucket order as on every rank.
        while st.next < st.list.len() {
            let b = st.next;
            st.launch(b, &self.shared.world);
        }
        if let Some(e) = st.error.take() {
            st.reset();
            return Err(e);
        }
        let scale = T::from_f64(1.0 / self.shared.world.size() as f64);
        for bucket in &mut st.list {
            let answer = bucket
                .answer
                .take()
                .ok_or(Error::Stopped { op: "all_reduce" })?;
            let sum = T::unwrap(
                answer
                    .recv()
                    .map_err(|_| Error::Stopped { op: "all_reduce" })?,
            );
            let grad_len = bucket.grad_len(sum.len());
            for (m, &(p, offset, len)) in bucket.members.iter().enumerate() {
                let param = &self.params[p];
                if sum[grad_len + m] == T::from_f64(0.0) {
                    grads.remove(param); // used on no rank
                    continue;
                }
                let mean: Vec<T> = sum[offset..offset + len]
                    .iter()
                    .map(|&v| v * scale)
                    .collect();
                grads.insert(param, Tensor::from_vec(mean, &param.dims())?)?;
            }
            // the answer's allocation becomes next step's bucket
            bucket.flat = sum;
        }
        st.reset();
        Ok(grads)
    }
}

impl<T: Wire> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Buckets<T>> {
        // held only to copy gradients and queue jobs; no user code runs under it
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A parameter's final gradient of this pass: into its bucket, and every bucket
    /// that is full and next in line starts its all-reduce.
    fn arrived(&self, b: usize, m: usize, g: &Tensor<T>) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.lock();
        let bucket = &mut st.list[b];
        let (_, offset, len) = bucket.members[m];
        if bucket.answer.is_some() || g.numel() != len {
            return; // already sent (cannot happen within one pass) or not this shape
        }
        bucket.flat[offset..offset + len].copy_from_slice(g.data());
        if !bucket.seen[m] {
            bucket.seen[m] = true;
            bucket.filled += 1;
        }
        st.launch_ready(&self.world);
    }
}

impl<T: Wire> Buckets<T> {
    /// Starts every bucket that is settled and next in line.
    fn launch_ready(&mut self, world: &World) {
        while self.next < self.list.len()
            && self.list[self.next].filled == self.list[self.next].members.len()
        {
            let next = self.next;
            self.launch(next, world);
        }
        self.started_early = self.next;
    }

    /// Starts bucket `b`'s all-reduce (it must be `next`).
    fn launch(&mut self, b: usize, world: &World) {
        debug_assert_eq!(b, self.next);
        self.next += 1;
        let bucket = &mut self.list[b];
        let grad_len = bucket.grad_len(bucket.flat.len());
        for (m, &seen) in bucket.seen.iter().enumerate() {
            bucket.flat[grad_len + m] = T::from_f64(if seen { 1.0 } else { 0.0 });
        }
        let flat = std::mem::take(&mut bucket.flat);
        match world.start_all_reduce(flat, format!("all_reduce of gradient bucket {b}")) {
            Ok(answer) => bucket.answer = Some(answer),
            Err(e) => self.error = Some(e),
        }
    }

    /// Ready for the next pass: every bucket zeroed and unsent.
    fn reset(&mut self) {
        for bucket in &mut self.list {
            let len: usize =
                bucket.members.iter().map(|m| m.2).sum::<usize>() + bucket.members.len();
            bucket.flat.clear();
            bucket.flat.resize(len, T::from_f64(0.0));
            bucket.seen.iter_mut().for_each(|s| *s = false);
            bucket.filled = 0;
            bucket.answer = None;
        }
        self.next = 0;
        self.error = None;
        self.started_early = 0;
    }
}

/// Buckets of at most `cap` elements (a larger parameter gets one of its own), filled
/// in reverse definition order: the last layers' gradients are final first.
fn plan_buckets<T: Wire>(params: &[Param<T>], cap: usize) -> Vec<Bucket<T>> {
    let mut list: Vec<Bucket<T>> = Vec::new();
    let mut members = Vec::new();
    let mut len = 0;
    let close = |members: &mut Vec<(usize, usize, usize)>, len: &mut usize, list: &mut Vec<_>| {
        if !members.is_empty() {
            let n = members.len();
            list.push(Bucket {
                members: std::mem::take(members),
                flat: vec![T::from_f64(0.0); *len + n],
                seen: vec![false; n],
                filled: 0,
                answer: None,
            });
            *len = 0;
        }
    };
    for (i, p) in params.iter().enumerate().rev() {
        let n = p.numel();
        if len > 0 && len + n > cap {
            close(&mut members, &mut len, &mut list);
        }
        members.push((i, len, n));
        len += n;
    }
    close(&mut members, &mut len, &mut list);
    list
}

/// Every rank's model signature (names, dtype, shapes of parameters and buffers),
/// hashed and compared with rank 0's.
fn check_same_model<T: Wire>(model: &dyn ModuleState<T>, world: &World, site: Site) -> Result<()> {
    let mut sig = String::new();
    let mut count = 0;
    for (name, p) in model.named_parameters() {
        sig += &format!(
            "param {name} {} {:?};",
            std::any::type_name::<T>(),
            p.dims()
        );
        count += 1;
    }
    for (name, b) in model.named_buffers() {
        let kind = match b.get() {
            BufferValue::Float(_) => std::any::type_name::<T>(),
            BufferValue::Int(_) => "i64",
        };
        sig += &format!("buffer {name} {kind} {:?};", b.get().dims());
        count += 1;
    }
    let hash = fnv1a(sig.as_bytes());
    let hashes = world.all_gather_word(hash, format!("model check at {site}"))?;
    let counts = world.all_gather_word(count, format!("model check at {site}"))?;
    let differing: Vec<usize> = (0..world.size())
        .filter(|&r| hashes[r] != hashes[0] || counts[r] != counts[0])
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let summary = |r: usize| format!("({} tensors, signature {:016x})", counts[r], hashes[r]);
    Err(Error::ModelMismatch {
        site,
        rank: world.rank(),
        ours: summary(world.rank()),
        theirs: summary(0),
        differing,
    })
}

/// FNV-1a, 64 bits: the same on every rank and every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
