//! The communication thread: the one place that calls MPI. Every collective is
//! launched as a non-blocking MPI operation and polled to completion here, so
//! backward keeps computing while buckets travel, and so a collective that gets no
//! answer within the timeout aborts the whole job instead of hanging it.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::world::sealed::Sealed;

/// Exit code of a rank that aborts the job (a collective timed out, or the user
/// called [`crate::World::abort`]); EX_SOFTWARE.
pub(crate) const ABORT_CODE: i32 = 70;

/// Data on the wire, one variant per element type MPI moves for us.
#[derive(Debug)]
pub enum Payload {
    /// f32 values.
    F32(Vec<f32>),
    /// f64 values.
    F64(Vec<f64>),
    /// i64 values (integer buffers).
    I64(Vec<i64>),
    /// u64 values (hashes, status words).
    U64(Vec<u64>),
}

/// One request to the communication thread; the answer comes back on `reply`.
pub(crate) enum Job {
    /// Element-wise sum over ranks.
    AllReduceSum {
        data: Payload,
        what: String,
        reply: Sender<Payload>,
    },
    /// Rank `root`'s data, on every rank (every rank passes the same length).
    Broadcast {
        data: Payload,
        root: i32,
        what: String,
        reply: Sender<Payload>,
    },
    /// Every rank's data, concatenated in rank order (every rank passes the same length).
    AllGather {
        data: Payload,
        what: String,
        reply: Sender<Payload>,
    },
    /// Ends the job on every rank with `ABORT_CODE`.
    Abort,
}

/// Starts MPI on a new thread and serves `jobs` there until the sender is dropped;
/// then MPI is finalized. Sends `(rank, size)` on `ready` first, or why MPI failed.
pub(crate) fn spawn(
    jobs: Receiver<Job>,
    ready: Sender<Result<(usize, usize), String>>,
    timeout: Duration,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("chainrule-mpi".into())
        .spawn(move || {
            // Serialized: only this thread ever calls MPI, which Funneled would allow
            // too, but Funneled ties MPI to the thread that called main in some MPIs.
            let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            else {
                let _ = ready.send(Err(
                    "MPI is already initialized in this process (one World per process)".into(),
                ));
                return;
            };
            let world = universe.world();
            let (rank, size) = (world.rank() as usize, world.size() as usize);
            if ready.send(Ok((rank, size))).is_err() {
                return;
            }
            let server = Server {
                world: &world,
                rank,
                timeout,
                spares: RefCell::new(Vec::new()),
            };
            for job in jobs {
                server.serve(job);
            }
            // `universe` drops here: MPI_Finalize, after the last job
        })
}

struct Server<'w> {
    world: &'w SimpleCommunicator,
    rank: usize,
    timeout: Duration,
    /// Send buffers of finished all-reduces, reused as the results of later ones of
    /// the same type and length (every step's buckets): no allocation, and no fresh
    /// pages to fault in, at steady state.
    spares: RefCell<Vec<Payload>>,
}

/// Spare buffers kept; past it the oldest goes.
const SPARES: usize = 16;

impl Server<'_> {
    fn serve(&self, job: Job) {
        match job {
            Job::AllReduceSum { data, what, reply } => {
                let out = match data {
                    Payload::F32(v) => Payload::F32(self.all_reduce(v, &what)),
                    Payload::F64(v) => Payload::F64(self.all_reduce(v, &what)),
                    Payload::I64(v) => Payload::I64(self.all_reduce(v, &what)),
                    Payload::U64(v) => Payload::U64(self.all_reduce(v, &what)),
                };
                let _ = reply.send(out);
            }
            Job::Broadcast {
                data,
                root,
                what,
                reply,
            } => {
                let out = match data {
                    Payload::F32(v) => Payload::F32(self.broadcast(v, root, &what)),
                    Payload::F64(v) => Payload::F64(self.broadcast(v, root, &what)),
                    Payload::I64(v) => Payload::I64(self.broadcast(v, root, &what)),
                    Payload::U64(v) => Payload::U64(self.broadcast(v, root, &what)),
                };
                let _ = reply.send(out);
            }
            Job::AllGather { data, what, reply } => {
                let out = match data {
                    Payload::F32(v) => Payload::F32(self.all_gather(&v, &what)),
                    Payload::F64(v) => Payload::F64(self.all_gather(&v, &what)),
                    Payload::I64(v) => Payload::I64(self.all_gather(&v, &what)),
                    Payload::U64(v) => Payload::U64(self.all_gather(&v, &what)),
                };
                let _ = reply.send(out);
            }
            Job::Abort => self.world.abort(ABORT_CODE),
        }
    }

    fn all_reduce<T: Equivalence + Copy + Default + Sealed>(
        &self,
        send: Vec<T>,
        what: &str,
    ) -> Vec<T> {
        let mut recv = self
            .spare::<T>(send.len())
            .unwrap_or_else(|| vec![T::default(); send.len()]);
        mpi::request::scope(|scope| {
            let req = self.world.immediate_all_reduce_into(
                scope,
                &send[..],
                &mut recv[..],
                SystemOperation::sum(),
            );
            self.complete(req, what);
        });
        let mut spares = self.spares.borrow_mut();
        if spares.len() == SPARES {
            spares.remove(0);
        }
        spares.push(T::wrap(send));
        recv
    }

    /// A kept buffer of `len` values of `T`, if there is one.
    fn spare<T: Sealed>(&self, len: usize) -> Option<Vec<T>> {
        let mut spares = self.spares.borrow_mut();
        let at = spares.iter().position(|p| T::len_of(p) == Some(len))?;
        Some(T::unwrap(spares.remove(at)))
    }

    fn broadcast<T: Equivalence>(&self, mut data: Vec<T>, root: i32, what: &str) -> Vec<T> {
        mpi::request::scope(|scope| {
            let req = self
                .world
                .process_at_rank(root)
                .immediate_broadcast_into(scope, &mut data[..]);
            self.complete(req, what);
        });
        data
    }

    fn all_gather<T: Equivalence + Copy + Default>(&self, send: &[T], what: &str) -> Vec<T> {
        let mut recv = vec![T::default(); send.len() * self.world.size() as usize];
        mpi::request::scope(|scope| {
            let req = self
                .world
                .immediate_all_gather_into(scope, send, &mut recv[..]);
            self.complete(req, what);
        });
        recv
    }

    /// Polls `req` until it completes, yielding between polls so runnable kernel
    /// threads get the core. Open MPI progresses a non-blocking collective only inside
    /// calls like this `test`, so polls must be frequent: sleeping 50 µs between them
    /// cut a 1 MB all-reduce from 3.7 to 1.0 GB/s on 2 ranks.
    /// Past the timeout the peers are gone or stuck: abort every rank (MPI cannot
    /// cancel a collective, so returning an error would leave the job half-dead).
    fn complete<'a, D: ?Sized, S: Scope<'a>>(&self, mut req: Request<'a, D, S>, what: &str) {
        let start = Instant::now();
        loop {
            match req.test() {
                Ok(_) => return,
                Err(pending) => req = pending,
            }
            let waited = start.elapsed();
            if waited > self.timeout {
                crate::world::report(&format!(
                    "chainrule-distributed: rank {}: {what} got no answer from the other \
                     ranks within {:?} (a rank died, hangs, or runs other collectives); \
                     aborting every rank",
                    self.rank, self.timeout
                ));
                self.world.abort(ABORT_CODE);
            }
            thread::yield_now();
        }
    }
}
