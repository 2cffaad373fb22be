//! Trains the seed network on MNIST over every rank of an MPI job: the distributed
//! main job. Each global batch is split evenly over the ranks, gradients are averaged
//! by all-reduce, and the losses equal one process's on the same global batches.
//!
//! One process:   `cargo run --release -p chainrule-distributed --example mnist_ddp`
//! Four ranks:    `mpirun -np 4 --oversubscribe target/release/examples/mnist_ddp`
//!
//! Flags: `--epochs N` (1) or `--steps N`, `--global-batch B` (64), `--f64`,
//! `--seed S` (0), `--losses FILE` (rank 0 writes each step's loss over the whole
//! global batch, one per line, full precision), `--lr X` (0.05), `--momentum X`
//! (0.9), `--data DIR` (data/mnist), `--save FILE`, `--threads N` (kernel threads
//! per rank), `--bucket-kib N` (gradient bucket cap).

use std::io::Write;
use std::time::Instant;

use chainrule_autograd::{Reduction, Tape, Tensor};
use chainrule_distributed::{
    report, save_on_main, DdpOptions, DistributedDataParallel, DistributedSampler, Error, Wire,
    World,
};
use chainrule_nn::mnist::{Mnist, Pixels};
use chainrule_nn::models::seed_cnn;
use chainrule_nn::optim::{Optimizer, Sgd};
use chainrule_nn::{Module, ModuleState};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;

struct Args {
    epochs: usize,
    steps: Option<usize>,
    global_batch: usize,
    f64: bool,
    seed: u64,
    losses: Option<String>,
    lr: f64,
    momentum: f64,
    data: String,
    save: Option<String>,
    threads: Option<usize>,
    bucket_kib: Option<usize>,
}

const USAGE: &str = "usage: mnist_ddp [--epochs N | --steps N] [--global-batch B] [--f64] \
    [--seed S] [--losses FILE] [--lr X] [--momentum X] [--data DIR] [--save FILE] \
    [--threads N] [--bucket-kib N]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        epochs: 1,
        steps: None,
        global_batch: 64,
        f64: false,
        seed: 0,
        losses: None,
        lr: 0.05,
        momentum: 0.9,
        data: "data/mnist".into(),
        save: None,
        threads: None,
        bucket_kib: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let int = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--epochs" => a.epochs = int(value()?)?,
            "--steps" => a.steps = Some(int(value()?)?),
            "--global-batch" => a.global_batch = int(value()?)?,
            "--f64" => a.f64 = true,
            "--seed" => a.seed = int(value()?)? as u64,
            "--losses" => a.losses = Some(value()?),
            "--lr" => a.lr = num(value()?)?,
            "--momentum" => a.momentum = num(value()?)?,
            "--data" => a.data = value()?,
            "--save" => a.save = Some(value()?),
            "--threads" => a.threads = Some(int(value()?)?),
            "--bucket-kib" => a.bucket_kib = Some(int(value()?)?),
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() {
    let world = match World::init() {
        Ok(w) => w,
        Err(e) => {
            report(&format!("mnist_ddp: {e}"));
            std::process::exit(1);
        }
    };
    let rank = world.rank();
    // Bad flags, unreadable data, a batch that does not split: the same outcome on
    // every rank (`World::agree`), reported by each, and a non-zero exit.
    let setup = parse_args().map_err(|e| invalid("mnist_ddp", e));
    let outcome = world.agree("parsing the flags", setup).and_then(|args| {
        if let Some(t) = args.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build_global()
                .map_err(|e| Error::Init(format!("--threads {t}: {e}")))?;
        }
        if args.f64 {
            train::<f64>(&args, &world)
        } else {
            train::<f32>(&args, &world)
        }
    });
    if let Err(e) = outcome {
        // Every rank says why before any exits (mpirun ends the job at the first
        // non-zero exit); MPI_Finalize waits for all ranks.
        report(&format!("mnist_ddp: rank {rank}: {e}"));
        drop(world);
        std::process::exit(1);
    }
}

/// An error of this program at the caller's line.
#[track_caller]
fn invalid(op: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        op,
        site: chainrule_autograd::Site::caller(),
        reason: reason.into(),
    }
}

fn train<T: Wire>(args: &Args, world: &World) -> Result<(), Error> {
    let data = world.agree(
        &format!("reading MNIST from {}", args.data),
        Mnist::load_with(&args.data, Pixels::Unit),
    )?;
    let sampler = world.agree(
        "splitting the global batch",
        DistributedSampler::new(data.train.len(), args.global_batch, world, args.seed),
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let net = seed_cnn::<T, _>(&mut rng, true)?;
    let mut options = DdpOptions::default();
    if let Some(kib) = args.bucket_kib {
        options.bucket_cap_bytes = kib.max(1) << 10;
    }
    let ddp = DistributedDataParallel::with_options(&net, world, options)?;
    let mut opt = Sgd::new(net.parameters(), args.lr)?.momentum(args.momentum)?;
    let per_epoch = sampler.batches_per_epoch();
    let total = args.steps.unwrap_or(args.epochs * per_epoch);
    let main = world.is_main();
    let created = match (&args.losses, main) {
        (Some(path), true) => std::fs::File::create(path)
            .map(Some)
            .map_err(|e| invalid("--losses", format!("cannot create {path}: {e}"))),
        _ => Ok(None),
    };
    let mut losses = world.agree("creating the losses file", created)?;
    if main {
        println!(
            "{} ranks × {} images = global batch {}, {total} steps ({per_epoch} per epoch), {}",
            world.size(),
            sampler.local_batch_size(),
            args.global_batch,
            std::any::type_name::<T>()
        );
    }
    let bar = if main {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} loss {msg} ({elapsed})")
            .map_err(|e| invalid("progress bar", e.to_string()))?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    // An error inside the loop may be this rank's alone, with the others waiting in a
    // collective: end the job on every rank (naming this one) rather than return.
    let mut steps = || -> Result<(), Error> {
        for step in 0..total {
            let (epoch, k) = ((step / per_epoch) as u64, step % per_epoch);
            let (x, labels) = data.train.gather(&sampler.local_batch(epoch, k))?;
            let tape = Tape::new();
            let loss = net
                .forward(&tape.constant(x.cast::<T>()))?
                .cross_entropy(&labels, Reduction::Mean)?;
            let grads = ddp.backward(&loss)?;
            opt.step(&grads)?;
            let global = world.mean(loss.value().item().map_or(f64::NAN, |l| l.to_f64()))?;
            if let Some(file) = &mut losses {
                writeln!(file, "{global}").map_err(|e| invalid("--losses", e.to_string()))?;
            }
            bar.inc(1);
            bar.set_message(format!("{global:.4}"));
        }
        Ok(())
    };
    if let Err(e) = steps() {
        world.abort(&e);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    ddp.check_replicas()?;
    if main {
        let images = (total * args.global_batch) as f64;
        println!(
            "trained {total} steps in {seconds:.2} s: {:.0} images/s over {} ranks; \
             test accuracy {:.2}%; replicas identical",
            images / seconds,
            world.size(),
            100.0 * accuracy(&net, &data)?
        );
    }
    if let Some(path) = &args.save {
        save_on_main(world, &net, path)?;
        if main {
            println!("saved parameters to {path}");
        }
    }
    Ok(())
}

/// Test accuracy of `net` (any element type), 1000 images at a time.
fn accuracy<T: Wire>(net: &dyn Module<T>, data: &Mnist) -> Result<f64, Error> {
    let tape = Tape::<T>::new();
    let _off = tape.no_grad();
    let mut correct = 0;
    for (x, labels) in data.test.batches(1000, None) {
        let logits: Tensor<T> = net.forward(&tape.constant(x.cast::<T>()))?.value().clone();
        let (_, predicted) = logits.max_dim(1, false)?;
        correct += predicted
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
    }
    Ok(correct as f64 / data.test.len().max(1) as f64)
}
