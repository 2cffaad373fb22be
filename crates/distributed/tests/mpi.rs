//! Data-parallel training under real MPI: the tests launch `mpirun` themselves, so the
//! workspace's one test command covers them (Open MPI must be installed; `.ci/run`
//! installs it).
//!
//! Run plainly this binary is the parent: it starts `mpirun` on the `mnist_ddp`
//! example and on itself. Under `mpirun`, with `--worker NAME`, it is one rank of a
//! scenario that the example cannot stage (ranks with different models, parameters
//! used on some ranks only). Run the whole package's tests (`cargo test --release -p
//! chainrule-distributed`): `--test mpi` alone does not rebuild the example, and a
//! stale one is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chainrule_autograd::{Param, Reduction, Tape, Tensor};
use chainrule_distributed::{DdpOptions, DistributedDataParallel, Error, World};
use chainrule_nn::layers::Linear;
use chainrule_nn::{Module, ModuleState};
use rand::SeedableRng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        std::process::exit(worker(&args[i + 1]));
    }
    let tests: [(&str, fn()); 10] = [
        (
            "sync_batch_norm_equals_one_process_batch_norm",
            sync_batch_norm,
        ),
        ("all_reduce_is_differentiable", all_reduce_is_differentiable),
        (
            "losses_match_one_process_for_2_and_4_ranks",
            losses_match_one_process,
        ),
        (
            "two_runs_of_2_and_of_4_ranks_are_bitwise_equal",
            two_runs_are_bitwise_equal,
        ),
        (
            "gradients_equal_a_plain_all_reduce_with_unused_parameters",
            unused_parameters,
        ),
        ("different_models_fail_on_every_rank", different_models_fail),
        ("bad_batch_or_data_fail_on_every_rank", bad_input_fails),
        ("rank_0_saves_a_checkpoint_that_loads", rank_0_saves),
        ("a_killed_rank_ends_the_job", killed_rank_ends_the_job),
        ("a_stopped_rank_times_out", stopped_rank_times_out),
    ];
    let filter: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let mut failed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => println!(
                "test {name} ... ok ({:.1} s)",
                start.elapsed().as_secs_f64()
            ),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("mpi: {failed} failed");
    std::process::exit(i32::from(failed > 0));
}

// ---- the parent's side: launching ranks ------------------------------------------

fn example() -> PathBuf {
    // target/<profile>/deps/mpi-<hash> → target/<profile>/examples/mnist_ddp
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/mnist_ddp");
    assert!(
        path.exists(),
        "{} is missing: cargo test builds the examples before running tests",
        path.display()
    );
    // `cargo test --test mpi` alone does not rebuild examples: refuse a stale one
    // rather than test old code
    let built = std::fs::metadata(&path).unwrap().modified().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::fs::metadata(here.join("examples/mnist_ddp.rs"))
        .unwrap()
        .modified()
        .unwrap();
    for krate in std::fs::read_dir(here.parent().unwrap()).unwrap().flatten() {
        newest = newest.max(newest_source(&krate.path().join("src")));
    }
    assert!(
        built >= newest,
        "{} is older than the sources: run the whole `cargo test --release -p \
         chainrule-distributed` (or build its examples) first",
        path.display()
    );
    path
}

/// The newest modification time of the `.rs` files under `dir` (the library sources
/// the example is built from).
fn newest_source(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            newest = newest.max(newest_source(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            newest = newest.max(meta.modified().unwrap());
        }
    }
    newest
}

fn data_dir() -> String {
    format!("{}/../../data/mnist", env!("CARGO_MANIFEST_DIR"))
}

/// `mpirun -np n` (oversubscribing past the cores), allowed to run as root as CI does.
fn mpirun(n: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-np", &n.to_string(), "--oversubscribe"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        // one kernel thread per rank: 2 cores shared by up to 4 ranks
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn run(mut c: Command) -> Output {
    let out = c.output().expect("mpirun runs (Open MPI installed?)");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

fn ddp_losses(ranks: usize, dir: &Path, tag: &str) -> Vec<f64> {
    let file = dir.join(format!("losses-{ranks}-{tag}.txt"));
    let args = [
        "--steps",
        "50",
        "--f64",
        "--global-batch",
        "64",
        "--seed",
        "3",
        "--data",
        &data_dir(),
        "--losses",
        file.to_str().unwrap(),
    ];
    let out = if ranks == 1 {
        // alone: a world of one, no launcher
        run({
            let mut c = Command::new(example());
            c.args(args).env("RAYON_NUM_THREADS", "1");
            c
        })
    } else {
        run({
            let mut c = mpirun(ranks);
            c.arg(example()).args(args);
            c
        })
    };
    assert!(out.status.success(), "{ranks} ranks failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("replicas identical"), "{stdout}");
    let text = std::fs::read_to_string(&file).unwrap();
    text.lines().map(|l| l.parse().unwrap()).collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chainrule-mpi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn losses_match_one_process() {
    let dir = scratch("agree");
    let alone = ddp_losses(1, &dir, "a");
    assert_eq!(alone.len(), 50);
    assert!(
        alone[49] < alone[0] * 0.5,
        "training did not progress: {alone:?}"
    );
    for ranks in [2, 4] {
        let many = ddp_losses(ranks, &dir, "a");
        assert_eq!(many.len(), 50);
        let worst = alone
            .iter()
            .zip(&many)
            .map(|(a, b)| ((a - b) / a).abs())
            .fold(0.0, f64::max);
        println!(
            "  {ranks} ranks vs 1 process, 50 f64 steps: max relative loss difference {worst:.2e}"
        );
        assert!(
            worst <= 1e-9,
            "{ranks} ranks drift from one process: {worst:e}"
        );
    }
}

fn two_runs_are_bitwise_equal() {
    let dir = scratch("bitwise");
    for ranks in [2, 4] {
        let first = ddp_losses(ranks, &dir, "a");
        let second = ddp_losses(ranks, &dir, "b");
        let same = first
            .iter()
            .zip(&second)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && first.len() == 50,
            "two runs of {ranks} ranks differ"
        );
    }
}

fn workers(n: usize, name: &str) -> Output {
    run({
        let mut c = mpirun(n);
        c.arg(std::env::current_exe().unwrap())
            .args(["--worker", name]);
        c
    })
}

/// Runs worker `name` on `n` ranks; every rank must succeed and say `done`.
fn every_rank_passes(n: usize, name: &str, done: &str) {
    let out = workers(n, name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.matches(done).count(), n, "{stdout}");
}

fn unused_parameters() {
    for n in [2, 4] {
        every_rank_passes(n, "unused", "gradients ok");
    }
}

fn all_reduce_is_differentiable() {
    every_rank_passes(3, "all_reduce", "all_reduce ok");
}

fn sync_batch_norm() {
    for n in [2, 4] {
        every_rank_passes(n, "sync_bn", "sync_bn ok");
    }
}

fn different_models_fail() {
    let out = workers(2, "mismatch");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for rank in 0..2 {
        let line = format!("rank {rank}: DistributedDataParallel at");
        assert!(
            stdout.contains(&line),
            "rank {rank} did not report: {stdout}"
        );
    }
    assert!(stdout.contains("on ranks [1]"), "{stdout}");
}

fn bad_input_fails() {
    let cases: [(&[&str], &str); 2] = [
        (
            &["--global-batch", "63"],
            "does not split evenly over 2 ranks",
        ),
        (
            &["--data", "/nonexistent"],
            "/nonexistent/train-images-idx3-ubyte.gz",
        ),
    ];
    for (flags, expected) in cases {
        let out = run({
            let mut c = mpirun(2);
            c.arg(example())
                .args(["--steps", "2", "--data", &data_dir()])
                .args(flags);
            c
        });
        assert!(!out.status.success(), "{flags:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for rank in 0..2 {
            let said = |l: &str| l.contains(&format!("rank {rank}: ")) && l.contains(expected);
            assert!(
                stderr.lines().any(said),
                "{flags:?}: rank {rank} did not say {expected:?}: {stderr}"
            );
        }
    }
}

fn rank_0_saves() {
    let dir = scratch("save");
    let path = dir.join("net.safetensors");
    let out = run({
        let mut c = mpirun(2);
        c.arg(example())
            .args(["--steps", "5", "--data", &data_dir(), "--save"])
            .arg(&path);
        c
    });
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("saved parameters").count(), 1, "{stdout}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = chainrule_nn::models::seed_cnn::<f32, _>(&mut rng, true).unwrap();
    let before = net.parameters()[0].value();
    chainrule_nn::checkpoint::load(&net, &path).unwrap();
    assert_ne!(
        net.parameters()[0].value().data(),
        before.data(),
        "5 steps changed nothing"
    );
}

/// Starts a long 2-rank run, waits until it is training, does `signal` to one rank and
/// returns how long the job took to end, and its output.
fn disturb_a_rank(signal: &str, timeout_secs: &str) -> (Duration, Output) {
    let dir = scratch(signal);
    let losses = dir.join("losses.txt");
    let mut c = mpirun(2);
    c.env("CHAINRULE_DIST_TIMEOUT", timeout_secs)
        .arg(example())
        .args(["--steps", "1000000", "--data", &data_dir(), "--losses"])
        .arg(&losses)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut job = c.spawn().unwrap();
    let begun = Instant::now();
    while std::fs::read_to_string(&losses).map_or(0, |t| t.lines().count()) < 20 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranks = children(job.id());
    assert_eq!(ranks.len(), 2, "mpirun's children: {ranks:?}");
    let status = Command::new("kill")
        .arg(signal)
        .arg(ranks[1].to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let hit = Instant::now();
    let deadline = Duration::from_secs(90);
    loop {
        if job.try_wait().unwrap().is_some() {
            break;
        }
        if hit.elapsed() > deadline {
            let _ = job.kill();
            for r in &ranks {
                let _ = Command::new("kill").args(["-9", &r.to_string()]).status();
            }
            panic!("the job was still running {deadline:?} after {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = hit.elapsed();
    let out = job.wait_with_output().unwrap();
    (took, out)
}

/// The processes `pid` started (mpirun's are the ranks).
fn children(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn killed_rank_ends_the_job() {
    let (took, out) = disturb_a_rank("-KILL", "60");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "  a rank killed with SIGKILL: the job ended {:.2} s later, exit {:?}",
        took.as_secs_f64(),
        out.status.code()
    );
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(60));
    assert!(stderr.contains("exited on signal 9"), "{stderr}");
}

fn stopped_rank_times_out() {
    let (took, out) = disturb_a_rank("-STOP", "5");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "  a rank stopped with SIGSTOP, 5 s timeout: the job ended {:.2} s later, exit {:?}",
        took.as_secs_f64(),
        out.status.code()
    );
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(60));
    assert!(
        stderr.contains("rank 0:") && stderr.contains("got no answer"),
        "{stderr}"
    );
}

// ---- the ranks' side ------------------------------------------------------------

fn worker(name: &str) -> i32 {
    let world = World::init().expect("MPI starts");
    let rank = world.rank();
    let outcome = match name {
        "unused" => check_unused(&world),
        "mismatch" => check_mismatch(&world),
        "all_reduce" => check_all_reduce(&world),
        "sync_bn" => check_sync_bn(&world),
        other => panic!("no worker {other}"),
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            println!("rank {rank}: {e}");
            drop(world);
            3
        }
    }
}

#[derive(chainrule_nn::Module)]
struct Branches {
    first: Linear<f64>,
    middle: Linear<f64>,
    last: Linear<f64>,
    spare: Linear<f64>,
}

/// Three layers; rank 0 uses all, the others skip the middle one, and none uses the
/// `spare` layer. One tiny bucket per parameter, so every bucket order matters. The
/// DDP gradients must equal the sum of every rank's plain gradients (zeros where a
/// rank did not use a parameter) over the world size, and `spare` gets none.
fn check_unused(world: &World) -> Result<(), Error> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(world.rank() as u64); // broadcast fixes it
    let net = Branches {
        first: Linear::new(3, 4, &mut rng)?,
        middle: Linear::new(4, 4, &mut rng)?,
        last: Linear::new(4, 2, &mut rng)?,
        spare: Linear::new(2, 2, &mut rng)?,
    };
    let options = DdpOptions {
        bucket_cap_bytes: 8,
    };
    let ddp = DistributedDataParallel::with_options(&net, world, options)?;
    let params: Vec<Param<f64>> = net.parameters();
    let x = Tensor::from_vec(
        (0..6)
            .map(|i| (i as f64 + 1.0) * 0.1 * (world.rank() as f64 + 1.0))
            .collect(),
        &[2, 3],
    )?;
    let forward = |tape: &Tape<f64>| -> Result<_, Error> {
        let mut h = net.first.forward(&tape.constant(x.clone()))?;
        if world.rank() == 0 {
            h = net.middle.forward(&h)?;
        }
        Ok(net
            .last
            .forward(&h.tanh())?
            .cross_entropy(&[1, 0], Reduction::Mean)?)
    };
    // plain gradients, summed over ranks by one all-reduce
    let tape = Tape::new();
    let plain = forward(&tape)?.backward()?;
    let flat: Vec<f64> = params
        .iter()
        .flat_map(|p| match plain.get(p) {
            Some(g) => g.data().to_vec(),
            None => vec![0.0; p.numel()],
        })
        .collect();
    let expected = world.all_reduce_sum(flat)?;
    for step in 0..2 {
        let tape = Tape::new();
        let grads = ddp.backward(&forward(&tape)?)?;
        let mut at = 0;
        for (name, p) in net.named_parameters() {
            let want = &expected[at..at + p.numel()];
            at += p.numel();
            match grads.get(&p) {
                _ if name.starts_with("spare") => {
                    assert!(
                        grads.get(&p).is_none(),
                        "{name} was used nowhere, got a gradient"
                    )
                }
                None => panic!("step {step}: {name} has no gradient"),
                Some(g) => {
                    for (a, b) in g.data().iter().zip(want) {
                        let b = b / world.size() as f64;
                        assert!(
                            (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                            "{name}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
    // spare (and middle, off rank 0) are not on the tape: settled before backward;
    // every other bucket starts from its hook, while backward runs
    let stats = ddp.bucket_stats();
    assert_eq!(
        (stats.buckets, stats.started_during_backward),
        (8, 8),
        "{stats:?}"
    );
    ddp.check_replicas()?;
    if world.rank() == 1 {
        net.first.weight.update(|t| t.data_mut()[0] += 1e-12);
    }
    match ddp.check_replicas() {
        Err(Error::ReplicasDiffer { differing, .. }) if differing == [1] => {}
        other => panic!("a drifted replica went unnoticed: {other:?}"),
    }
    println!("rank {}: gradients ok", world.rank());
    Ok(())
}

/// Rank 1's model is wider: every rank must refuse to start.
fn check_mismatch(world: &World) -> Result<(), Error> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = Linear::<f32>::new(4, 2 + world.rank().min(1), &mut rng)?;
    DistributedDataParallel::new(&net, world)?;
    println!("rank {}: accepted a different model", world.rank());
    Ok(())
}

/// Rank r: y = Σ_s x_s with x_r = [r+1, 2(r+1)], loss_r = y·c_r with c_r = [r+1, 1].
/// The objective Σ_r loss_r has gradient Σ_s c_s for every rank's x.
fn check_all_reduce(world: &World) -> Result<(), Error> {
    let (r, n) = (world.rank() as f64, world.size() as f64);
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![r + 1.0, 2.0 * (r + 1.0)], &[2])?);
    let y = chainrule_distributed::all_reduce(world, &x)?;
    let total = n * (n + 1.0) / 2.0;
    assert_eq!(y.value().data(), &[total, 2.0 * total]);
    let c = tape.constant(Tensor::from_vec(vec![r + 1.0, 1.0], &[2])?);
    let grads = (&y * &c)?.sum().backward()?;
    assert_eq!(grads.wrt(&x).unwrap().data(), &[total, n]);
    println!("rank {}: all_reduce ok", world.rank());
    Ok(())
}

/// SyncBatchNorm over the ranks' slices of a batch equals BatchNorm on the whole batch in
/// one process: outputs, the input's gradient, the parameters' gradients (summed over
/// ranks) and the running statistics, for two steps.
fn check_sync_bn(world: &World) -> Result<(), Error> {
    use chainrule_distributed::SyncBatchNorm;
    use chainrule_nn::layers::BatchNorm2d;
    use rand::Rng;
    let (n, r) = (world.size(), world.rank());
    let rows = 2 * n;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let reference = BatchNorm2d::<f64>::new(3)?;
    let synced = SyncBatchNorm::new(BatchNorm2d::<f64>::new(3)?, world);
    for bn in [&reference, &synced.inner] {
        bn.weight
            .as_ref()
            .unwrap()
            .set(Tensor::from_vec(vec![0.5, 1.5, -2.0], &[3])?);
        bn.bias
            .as_ref()
            .unwrap()
            .set(Tensor::from_vec(vec![0.1, -0.3, 0.7], &[3])?);
    }
    let close = |a: &[f64], b: &[f64], what: &str| {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "{what}: {x} vs {y}"
            );
        }
    };
    for step in 0..2 {
        let per = 3 * 4 * 4;
        let x: Vec<f64> = (0..rows * per).map(|_| rng.gen_range(-2.0..3.0)).collect();
        let k: Vec<f64> = (0..rows * per).map(|_| rng.gen_range(-1.0..1.0)).collect();
        // one process, whole batch
        let tape = Tape::new();
        let xv = tape.leaf(Tensor::from_vec(x.clone(), &[rows, 3, 4, 4])?);
        let y = reference.forward(&xv)?;
        let kv = tape.constant(Tensor::from_vec(k.clone(), &[rows, 3, 4, 4])?);
        let g = (&y * &kv)?.sum().backward()?;
        // this rank's two rows
        let slice = |v: &[f64]| v[2 * r * per..2 * (r + 1) * per].to_vec();
        let tape = Tape::new();
        let xr = tape.leaf(Tensor::from_vec(slice(&x), &[2, 3, 4, 4])?);
        let yr = synced.forward(&xr)?;
        close(yr.value().data(), &slice(y.value().data()), "output");
        let kr = tape.constant(Tensor::from_vec(slice(&k), &[2, 3, 4, 4])?);
        let gr = (&yr * &kr)?.sum().backward()?;
        close(
            gr.wrt(&xr).unwrap().data(),
            &slice(g.wrt(&xv).unwrap().data()),
            "dx",
        );
        for (p, q) in [
            (&synced.inner.weight, &reference.weight),
            (&synced.inner.bias, &reference.bias),
        ] {
            let (p, q) = (p.as_ref().unwrap(), q.as_ref().unwrap());
            let summed = world.all_reduce_sum(gr.get(p).unwrap().data().to_vec())?;
            close(&summed, g.get(q).unwrap().data(), "parameter gradient");
        }
        for (a, b) in [
            (&synced.inner.running_mean, &reference.running_mean),
            (&synced.inner.running_var, &reference.running_var),
        ] {
            let (a, b) = (
                a.as_ref().unwrap().float().unwrap(),
                b.as_ref().unwrap().float().unwrap(),
            );
            close(
                a.data(),
                b.data(),
                &format!("running statistics, step {step}"),
            );
        }
    }
    println!("rank {r}: sync_bn ok");
    Ok(())
}
