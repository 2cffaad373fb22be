//! Trains the seed network on MNIST: 28×28 → conv 3@5×5 → ReLU → max-pool 2×2 →
//! flatten (432) → linear 10 → softmax cross-entropy, SGD with momentum.
//!
//! `cargo run --release --example mnist -- --epochs 3`
//!
//! Flags: `--epochs N` (3), `--batch-size N` (64), `--lr X` (0.05), `--momentum X` (0.9),
//! `--data DIR` (data/mnist), `--seed N` (0), `--save FILE` (safetensors), `--threads N`,
//! `--init he-glorot|default` (he-glorot), `--inputs unit|normalized` (unit).
//!
//! The recipe is the seed's own answer: He initialization for the ReLU conv layer,
//! Glorot for the linear head, zero biases, pixels in [0, 1] (`--init default
//! --inputs normalized` is PyTorch's layer default with normalized pixels).

use std::time::Instant;

use chainrule::nn::mnist::{Mnist, Pixels};
use chainrule::nn::models::seed_cnn;
use chainrule::nn::optim::{Optimizer, Sgd};
use chainrule::nn::{checkpoint, Module, ModuleState};
use chainrule::{Reduction, Tape};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;

struct Args {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    momentum: f64,
    data: String,
    seed: u64,
    save: Option<String>,
    threads: Option<usize>,
    he_glorot: bool,
    pixels: Pixels,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        epochs: 3,
        batch_size: 64,
        lr: 0.05,
        momentum: 0.9,
        data: "data/mnist".into(),
        seed: 0,
        save: None,
        threads: None,
        he_glorot: true,
        pixels: Pixels::Unit,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--epochs" => a.epochs = num(value()?)? as usize,
            "--batch-size" => a.batch_size = num(value()?)? as usize,
            "--lr" => a.lr = num(value()?)?,
            "--momentum" => a.momentum = num(value()?)?,
            "--data" => a.data = value()?,
            "--seed" => a.seed = num(value()?)? as u64,
            "--save" => a.save = Some(value()?),
            "--threads" => a.threads = Some(num(value()?)? as usize),
            "--init" => {
                a.he_glorot = match value()?.as_str() {
                    "he-glorot" => true,
                    "default" => false,
                    other => return Err(format!("--init {other}: he-glorot or default")),
                }
            }
            "--inputs" => {
                a.pixels = match value()?.as_str() {
                    "unit" => Pixels::Unit,
                    "normalized" => Pixels::Normalized,
                    other => return Err(format!("--inputs {other}: unit or normalized")),
                }
            }
            "--help" | "-h" => return Err("usage: mnist [--epochs N] [--batch-size N] [--lr X] [--momentum X] [--data DIR] [--seed N] [--save FILE] [--threads N] [--init he-glorot|default] [--inputs unit|normalized]".into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let data = Mnist::load_with(&args.data, args.pixels)?;
    println!(
        "MNIST: {} training and {} test images from {}",
        data.train.len(),
        data.test.len(),
        args.data
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let net = seed_cnn::<f32, _>(&mut rng, args.he_glorot)?;

    // What happens after the pooling layer: the shape after each layer.
    let tape = Tape::new();
    let (x, _) = data
        .train
        .batches(args.batch_size, None)
        .next()
        .ok_or("empty training set")?;
    print!("shapes: input {:?}", x.dims());
    net.forward_inspect(&tape.constant(x), |name, h| {
        print!(" → {name} {:?}", h.dims())
    })?;
    println!(" → softmax cross-entropy");
    println!("parameters: {}", net.num_parameters());

    let mut opt = Sgd::new(net.parameters(), args.lr)?.momentum(args.momentum)?;
    let batches = data.train.len().div_ceil(args.batch_size) as u64;
    for epoch in 1..=args.epochs {
        let start = Instant::now();
        let bar = ProgressBar::new(batches);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} ({elapsed})",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        let mut running = 0.0f64;
        for (step, (x, labels)) in data
            .train
            .batches(args.batch_size, Some(args.seed + epoch as u64))
            .enumerate()
        {
            let tape = Tape::new();
            let loss = net
                .forward(&tape.constant(x))?
                .cross_entropy(&labels, Reduction::Mean)?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            let l = loss.value().item().unwrap_or(f32::NAN) as f64;
            running = if step == 0 {
                l
            } else {
                0.98 * running + 0.02 * l
            };
            bar.inc(1);
            if step % 20 == 0 {
                bar.set_message(format!("{running:.4}"));
            }
        }
        bar.finish_and_clear();
        let train_time = start.elapsed().as_secs_f64();
        let acc = data.test.accuracy(&net)?;
        println!(
            "epoch {epoch}: train loss {running:.4}, test accuracy: {:.2}%, epoch time {train_time:.2} s (evaluation {:.2} s)",
            100.0 * acc,
            start.elapsed().as_secs_f64() - train_time
        );
    }
    if let Some(path) = &args.save {
        checkpoint::save(&net, path)?;
        println!("saved parameters to {path}");
    }
    Ok(())
}
