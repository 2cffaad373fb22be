//! The distributed crate's errors: what went wrong, on which rank, at which line.

use chainrule_autograd::Site;

/// Result of a distributed operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in data-parallel training. Every variant that concerns more than
/// one rank names the ranks at fault, and every rank reports it, so no rank waits for
/// a peer that has given up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// MPI could not start, or was started twice in this process.
    #[error("mpi init: {0}")]
    Init(String),
    /// The communication thread stopped (it only stops when the world is dropped).
    #[error("{op}: the communication thread has stopped")]
    Stopped {
        /// The collective that found it gone.
        op: &'static str,
    },
    /// The ranks hold different models (names, shapes or dtypes differ).
    #[error("DistributedDataParallel at {site}: rank {rank}'s model {ours} differs from rank 0's {theirs} on ranks {differing:?}")]
    ModelMismatch {
        /// The caller's line.
        site: Site,
        /// This rank.
        rank: usize,
        /// This rank's model, summarized (tensor count and signature hash).
        ours: String,
        /// Rank 0's, summarized the same way.
        theirs: String,
        /// Every rank whose model differs from rank 0's.
        differing: Vec<usize>,
    },
    /// The replicas' parameter values have drifted apart (a rank stepped differently).
    #[error(
        "check_replicas at {site}: parameter values differ from rank 0's on ranks {differing:?}"
    )]
    ReplicasDiffer {
        /// The caller's line.
        site: Site,
        /// Every rank whose values differ from rank 0's.
        differing: Vec<usize>,
    },
    /// A global batch cannot be split evenly over the ranks, or is larger than the data.
    #[error("DistributedSampler at {site}: {reason}")]
    Batch {
        /// The caller's line.
        site: Site,
        /// Which number is wrong.
        reason: String,
    },
    /// Other ranks failed a step that every rank must pass (reading data, saving).
    #[error("{what} at {site}: failed on ranks {ranks:?} (their own messages say why)")]
    PeerFailed {
        /// The step.
        what: String,
        /// The caller's line.
        site: Site,
        /// The ranks that failed.
        ranks: Vec<usize>,
    },
    /// A shape, type or argument is not what the operation needs.
    #[error("{op} at {site}: {reason}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// The caller's line.
        site: Site,
        /// Why.
        reason: String,
    },
    /// The engine or nn crate reported an error (forward, backward, checkpoint).
    #[error(transparent)]
    Engine(#[from] chainrule_autograd::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] chainrule_autograd::TensorError),
}
