//! [`World`]: this process's place among the ranks, and the collectives between them.

use std::fmt::Display;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chainrule_autograd::{Element, Site};

use crate::comm::{self, Job, Payload};
use crate::{Error, Result};

/// Element types the ranks exchange (f32 and f64).
pub trait Wire: Element + sealed::Sealed {}
impl Wire for f32 {}
impl Wire for f64 {}

pub(crate) mod sealed {
    use crate::comm::Payload;

    /// Moves a vector of the type in and out of a [`Payload`].
    pub trait Sealed: Sized {
        fn wrap(v: Vec<Self>) -> Payload;
        fn unwrap(p: Payload) -> Vec<Self>;
        /// The length, when `p` holds this type.
        fn len_of(p: &Payload) -> Option<usize>;
    }
    macro_rules! wire {
        ($t:ty, $variant:ident) => {
            impl Sealed for $t {
                fn wrap(v: Vec<Self>) -> Payload {
                    Payload::$variant(v)
                }
                fn unwrap(p: Payload) -> Vec<Self> {
                    match p {
                        Payload::$variant(v) => v,
                        other => unreachable!("sent {} and got {other:?}", stringify!($t)),
                    }
                }
                fn len_of(p: &Payload) -> Option<usize> {
                    match p {
                        Payload::$variant(v) => Some(v.len()),
                        _ => None,
                    }
                }
            }
        };
    }
    wire!(f32, F32);
    wire!(f64, F64);
    wire!(i64, I64);
    wire!(u64, U64);
}
use sealed::Sealed;

/// How the world is started.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// How long one collective may wait for the other ranks before the job is aborted
    /// on every rank (a peer died or hangs). Default 60 s; `CHAINRULE_DIST_TIMEOUT`
    /// (seconds) overrides the default.
    pub timeout: Duration,
}

impl Default for WorldOptions {
    fn default() -> Self {
        let secs = std::env::var("CHAINRULE_DIST_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(60.0);
        WorldOptions {
            timeout: Duration::from_secs_f64(secs),
        }
    }
}

/// This process's rank among `size` ranks, and the collectives between them (MPI
/// under the hood, on a thread of its own).
///
/// Started alone the world has one rank; under `mpirun -np N` every process is one of
/// N ranks. One `World` per process: MPI starts once.
///
/// ```no_run
/// use chainrule_distributed::World;
/// let world = World::init()?;
/// let total = world.all_reduce_sum(vec![world.rank() as f64 + 1.0])?;
/// if world.is_main() {
///     println!("{} ranks, Σ(rank + 1) = {}", world.size(), total[0]);
/// }
/// # Ok::<(), chainrule_distributed::Error>(())
/// ```
///
/// `World` is a handle: clones share one MPI session, finalized when the last is dropped.
#[derive(Clone)]
pub struct World {
    rank: usize,
    size: usize,
    link: Arc<Link>,
}

/// The way to the communication thread; dropping it lets queued collectives finish,
/// then MPI is finalized.
struct Link {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl World {
    /// Starts MPI with [`WorldOptions::default`].
    ///
    /// # Errors
    /// [`Error::Init`]: MPI cannot start, or a `World` already exists in this process.
    pub fn init() -> Result<World> {
        World::init_with(WorldOptions::default())
    }

    /// Starts MPI with `options`.
    ///
    /// # Errors
    /// As [`World::init`].
    pub fn init_with(options: WorldOptions) -> Result<World> {
        let (jobs, inbox) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let thread = comm::spawn(inbox, ready_tx, options.timeout)
            .map_err(|e| Error::Init(format!("cannot start the communication thread: {e}")))?;
        let (rank, size) = ready
            .recv()
            .map_err(|_| Error::Init("the communication thread stopped while starting MPI".into()))?
            .map_err(Error::Init)?;
        Ok(World {
            rank,
            size,
            link: Arc::new(Link {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
        })
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// True on rank 0, the one that logs, shows progress and writes checkpoints.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Hands the job `make` builds around its reply channel to the communication
    /// thread, and returns where the answer arrives.
    fn send(
        &self,
        op: &'static str,
        make: impl FnOnce(Sender<Payload>) -> Job,
    ) -> Result<Receiver<Payload>> {
        let (reply, answer) = mpsc::channel();
        self.link
            .jobs
            .as_ref()
            .and_then(|j| j.send(make(reply)).ok())
            .ok_or(Error::Stopped { op })?;
        Ok(answer)
    }

    /// Waits for the answer of `op`.
    fn wait<T: Sealed>(answer: Receiver<Payload>, op: &'static str) -> Result<Vec<T>> {
        let out = answer.recv().map_err(|_| Error::Stopped { op })?;
        Ok(T::unwrap(out))
    }

    /// Starts an element-wise sum over ranks of `data` and returns where its result
    /// arrives; the caller goes on meanwhile. Every rank must start the same
    /// collectives in the same order with the same lengths.
    pub(crate) fn start_all_reduce<T: Sealed>(
        &self,
        data: Vec<T>,
        what: String,
    ) -> Result<Receiver<Payload>> {
        self.send("all_reduce", |reply| Job::AllReduceSum {
            data: T::wrap(data),
            what,
            reply,
        })
    }

    /// The element-wise sum of `data` over every rank, on every rank. Ranks must pass
    /// the same length (checked: a mismatch is [`Error::Invalid`] on every rank).
    ///
    /// # Errors
    /// Lengths differ between ranks, or the communication thread has stopped.
    #[track_caller]
    pub fn all_reduce_sum<T: Wire>(&self, data: Vec<T>) -> Result<Vec<T>> {
        let site = Site::caller();
        self.same_length(data.len(), "all_reduce_sum", site)?;
        let answer = self.start_all_reduce(data, format!("all_reduce_sum at {site}"))?;
        Self::wait(answer, "all_reduce_sum")
    }

    /// The mean of `x` over every rank (a loss over the whole global batch, when every
    /// rank holds the mean over an equal share of it).
    ///
    /// # Errors
    /// As [`World::all_reduce_sum`].
    #[track_caller]
    pub fn mean(&self, x: f64) -> Result<f64> {
        Ok(self.all_reduce_sum(vec![x])?[0] / self.size as f64)
    }

    /// Rank `root`'s `data` on every rank. Every rank passes a vector of the length
    /// rank `root` passes (checked).
    ///
    /// # Errors
    /// Lengths differ between ranks, `root` is not a rank, or the thread has stopped.
    #[track_caller]
    pub fn broadcast<T: Wire>(&self, data: Vec<T>, root: usize) -> Result<Vec<T>> {
        let site = Site::caller();
        self.broadcast_raw(data, root, site)
    }

    pub(crate) fn broadcast_raw<T: Sealed>(
        &self,
        data: Vec<T>,
        root: usize,
        site: Site,
    ) -> Result<Vec<T>> {
        if root >= self.size {
            return Err(Error::Invalid {
                op: "broadcast",
                site,
                reason: format!("root {root} is not a rank of a world of {}", self.size),
            });
        }
        self.same_length(data.len(), "broadcast", site)?;
        let answer = self.send("broadcast", |reply| Job::Broadcast {
            data: T::wrap(data),
            root: root as i32,
            what: format!("broadcast at {site}"),
            reply,
        })?;
        Self::wait(answer, "broadcast")
    }

    /// Every rank's `word`, in rank order.
    pub(crate) fn all_gather_word(&self, word: u64, what: String) -> Result<Vec<u64>> {
        let answer = self.send("all_gather", |reply| Job::AllGather {
            data: Payload::U64(vec![word]),
            what,
            reply,
        })?;
        Self::wait(answer, "all_gather")
    }

    /// Fails on every rank when ranks pass different lengths (an MPI collective with
    /// mismatched counts would be undefined behaviour, not an error).
    fn same_length(&self, len: usize, op: &'static str, site: Site) -> Result<()> {
        if self.size == 1 {
            return Ok(());
        }
        let lens = self.all_gather_word(len as u64, format!("{op} at {site} (lengths)"))?;
        if lens.iter().any(|&l| l != lens[0]) {
            return Err(Error::Invalid {
                op,
                site,
                reason: format!("ranks passed different lengths {lens:?} (one per rank)"),
            });
        }
        Ok(())
    }

    /// Waits until every rank has arrived (so, after rank 0 saves, no rank reads a
    /// half-written file).
    ///
    /// # Errors
    /// The communication thread has stopped.
    #[track_caller]
    pub fn barrier(&self) -> Result<()> {
        let site = Site::caller();
        self.all_gather_word(0, format!("barrier at {site}"))
            .map(drop)
    }

    /// Turns a step every rank must pass into one outcome on every rank: `Ok` where
    /// every rank succeeded; otherwise a failing rank returns its own error and the
    /// others [`Error::PeerFailed`] naming the failed ranks, so none goes on to wait
    /// for a peer that has given up.
    ///
    /// ```no_run
    /// use chainrule_distributed::World;
    /// use chainrule_nn::mnist::Mnist;
    /// let world = World::init()?;
    /// let data = world.agree("reading MNIST", Mnist::load("data/mnist"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// This rank's error, or [`Error::PeerFailed`].
    #[track_caller]
    pub fn agree<V, E: Into<Error>>(&self, what: &str, local: Result<V, E>) -> Result<V> {
        let site = Site::caller();
        let failed = self.all_gather_word(
            u64::from(local.is_err()),
            format!("agree on {what} at {site}"),
        )?;
        let ranks: Vec<usize> = (0..self.size).filter(|&r| failed[r] != 0).collect();
        match local {
            Err(e) => Err(e.into()),
            Ok(_) if !ranks.is_empty() => Err(Error::PeerFailed {
                what: what.to_string(),
                site,
                ranks,
            }),
            Ok(v) => Ok(v),
        }
    }

    /// Prints `error` with this rank's number and ends the job on every rank (MPI's
    /// abort: the launcher stops the other ranks and names this one). For an error
    /// that only this rank has, where returning would leave the others waiting.
    pub fn abort(&self, error: &dyn Display) -> ! {
        report(&format!(
            "chainrule-distributed: rank {} failed: {error}",
            self.rank
        ));
        let _ = self.send("abort", |_| Job::Abort);
        // the communication thread ends the process; if it cannot, end this one
        std::thread::sleep(Duration::from_secs(10));
        std::process::exit(comm::ABORT_CODE);
    }
}

/// Writes `line` to stderr in one `write` call: `mpirun` forwards every rank's stderr,
/// and a message written in pieces interleaves with the other ranks' (`eprintln!`
/// writes its arguments one by one).
///
/// ```
/// chainrule_distributed::report("mnist_ddp: rank 0: done");
/// ```
pub fn report(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

impl Drop for Link {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
