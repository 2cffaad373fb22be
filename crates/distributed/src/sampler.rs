//! [`DistributedSampler`]: which examples each rank takes, so that every world size
//! sees the same global batches.

use chainrule_autograd::Site;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::{Error, Result, World};

/// Splits each epoch's global batches over the ranks.
///
/// The epoch's order is a permutation of `0..len` drawn from `seed` and the epoch
/// number, the same on every rank; global batch `k` is positions `[k·B, (k+1)·B)` of
/// it, and rank `r` takes the `r`-th contiguous slice of `B / world` of those. So one
/// process and any world size that divides `B` train on the same global batches. The
/// last incomplete global batch is dropped (every rank must take an equal share).
///
/// ```
/// use chainrule_distributed::DistributedSampler;
/// let rank1_of_2 = DistributedSampler::for_rank(10, 4, 1, 2, 7)?;
/// let alone = DistributedSampler::for_rank(10, 4, 0, 1, 7)?;
/// assert_eq!(rank1_of_2.batches_per_epoch(), 2); // 10 examples, 2 full batches of 4
/// let global = alone.local_batch(0, 0);
/// assert_eq!(rank1_of_2.local_batch(0, 0), global[2..4].to_vec());
/// # Ok::<(), chainrule_distributed::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    len: usize,
    global_batch: usize,
    rank: usize,
    world: usize,
    seed: u64,
}

impl DistributedSampler {
    /// The sampler of this process's rank in `world`.
    ///
    /// # Errors
    /// As [`DistributedSampler::for_rank`].
    #[track_caller]
    pub fn new(len: usize, global_batch: usize, world: &World, seed: u64) -> Result<Self> {
        Self::checked(
            len,
            global_batch,
            world.rank(),
            world.size(),
            seed,
            Site::caller(),
        )
    }

    /// The sampler of rank `rank` of `world` ranks (for planning or testing without MPI).
    ///
    /// # Errors
    /// [`Error::Batch`]: `global_batch` is zero, not divisible by `world`, or larger
    /// than `len`; `rank` is not below `world`.
    #[track_caller]
    pub fn for_rank(
        len: usize,
        global_batch: usize,
        rank: usize,
        world: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::checked(len, global_batch, rank, world, seed, Site::caller())
    }

    fn checked(
        len: usize,
        global_batch: usize,
        rank: usize,
        world: usize,
        seed: u64,
        site: Site,
    ) -> Result<Self> {
        let reason = if global_batch == 0 {
            Some("the global batch must hold at least one example".to_string())
        } else if world == 0 || !global_batch.is_multiple_of(world) {
            Some(format!(
                "global batch {global_batch} does not split evenly over {world} ranks \
                 (use a multiple of {world})"
            ))
        } else if global_batch > len {
            Some(format!(
                "global batch {global_batch} is larger than the {len} examples"
            ))
        } else if rank >= world {
            Some(format!("rank {rank} is not a rank of a world of {world}"))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::Batch { site, reason });
        }
        Ok(DistributedSampler {
            len,
            global_batch,
            rank,
            world,
            seed,
        })
    }

    /// Full global batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.len / self.global_batch
    }

    /// Examples per rank per step (`global batch / world`).
    pub fn local_batch_size(&self) -> usize {
        self.global_batch / self.world
    }

    /// The epoch's order, the same on every rank.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        // one stream per (seed, epoch); the odd constant spreads consecutive epochs
        let stream = self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        order.shuffle(&mut StdRng::seed_from_u64(stream));
        order
    }

    /// This rank's examples of global batch `k` of `epoch`.
    pub fn local_batch(&self, epoch: u64, k: usize) -> Vec<usize> {
        self.slice(&self.epoch_order(epoch), k).to_vec()
    }

    /// This rank's examples of every global batch of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Vec<usize>> {
        let order = self.epoch_order(epoch);
        let me = self.clone();
        (0..self.batches_per_epoch()).map(move |k| me.slice(&order, k).to_vec())
    }

    fn slice<'a>(&self, order: &'a [usize], k: usize) -> &'a [usize] {
        let local = self.local_batch_size();
        let start = k * self.global_batch + self.rank * local;
        &order[start..start + local]
    }
}
