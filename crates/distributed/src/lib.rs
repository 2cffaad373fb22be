//! Data-parallel training for chainrule over MPI.
//!
//! Every rank (one process, started by `mpirun`) holds a replica of the model and
//! trains on its share of each global batch; [`DistributedDataParallel::backward`]
//! averages the gradients over ranks while backward runs, so one optimizer step on
//! every rank trains exactly as one process on the whole global batch would.
//!
//! - [`World`]: this rank, the world size, and the collectives (MPI through the `mpi`
//!   crate over the system's Open MPI, on a communication thread of its own; a
//!   collective that gets no answer within a timeout aborts every rank).
//! - [`DistributedDataParallel`]: model check and broadcast at start, gradient
//!   buckets launched from post-accumulate hooks.
//! - [`DistributedSampler`]: the same global batches for every world size.
//! - [`save_on_main`]: rank-0 checkpoints that no rank reads half-written.
//!
//! Run alone a program is a world of one; `mpirun -np 4 prog` makes four ranks.

mod checkpoint;
mod comm;
mod ddp;
mod error;
mod ops;
mod sampler;
mod sync_batch_norm;
mod world;

pub use checkpoint::save_on_main;
pub use ddp::{BucketStats, DdpOptions, DistributedDataParallel};
pub use error::{Error, Result};
pub use ops::all_reduce;
pub use sampler::DistributedSampler;
pub use sync_batch_norm::SyncBatchNorm;
pub use world::{report, Wire, World, WorldOptions};
