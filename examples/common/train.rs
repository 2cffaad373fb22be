//! The MNIST training loop the model examples share (`lstm_rows`, …): Adam with
//! PyTorch's one-cycle schedule, batch 64, pixels in [0, 1], one line per epoch:
//! `epoch N: test accuracy X%, epoch time S s`.

use std::time::Instant;

use chainrule::nn::mnist::{Mnist, Pixels};
use chainrule::nn::optim::{Adam, OneCycleLr, Optimizer, Scheduler};
use chainrule::nn::Module;
use chainrule::{Reduction, Tape};

/// The recipe, from the command line.
pub struct Recipe {
    /// `--epochs N`.
    pub epochs: usize,
    /// `--batch-size N`.
    pub batch_size: usize,
    /// `--max-lr X`: the one-cycle peak.
    pub max_lr: f64,
    /// `--seed N`: initialization and shuffling.
    pub seed: u64,
    /// `--data DIR`.
    pub data: String,
}

/// Parses `--epochs`, `--batch-size`, `--max-lr`, `--seed`, `--data` and `--threads`
/// over `defaults`, and sets up the thread pool.
pub fn recipe(defaults: Recipe) -> Result<Recipe, Box<dyn std::error::Error>> {
    let mut r = defaults;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--epochs" => r.epochs = value()?.parse()?,
            "--batch-size" => r.batch_size = value()?.parse()?,
            "--max-lr" => r.max_lr = value()?.parse()?,
            "--seed" => r.seed = value()?.parse()?,
            "--data" => r.data = value()?,
            "--threads" => rayon::ThreadPoolBuilder::new()
                .num_threads(value()?.parse()?)
                .build_global()?,
            other => return Err(format!("unknown flag {other} (flags: --epochs --batch-size --max-lr --seed --data --threads)").into()),
        }
    }
    Ok(r)
}

/// An example's whole `main`: the recipe from the command line over the defaults
/// (3 epochs, batch 64, `max_lr`, seed 0), the model `build` makes from the seeded
/// RNG, then [`train`].
pub fn run<M: Module<f32>>(
    max_lr: f64,
    build: impl FnOnce(&mut rand::rngs::StdRng) -> chainrule::nn::Result<M>,
) -> Result<(), Box<dyn std::error::Error>> {
    use rand::SeedableRng;
    let r = recipe(Recipe {
        epochs: 3,
        batch_size: 64,
        max_lr,
        seed: 0,
        data: "data/mnist".into(),
    })?;
    let model = build(&mut rand::rngs::StdRng::seed_from_u64(r.seed))?;
    train(&model, &r)?;
    Ok(())
}

/// Trains `model` on MNIST with Adam and a one-cycle schedule, printing the test
/// accuracy and training time of every epoch; returns the last accuracy.
pub fn train(model: &dyn Module<f32>, r: &Recipe) -> Result<f64, Box<dyn std::error::Error>> {
    let data = Mnist::load_with(&r.data, Pixels::Unit)?;
    println!("parameters: {}", model.num_parameters());
    let steps = data.train.len().div_ceil(r.batch_size) * r.epochs;
    let mut opt = Adam::new(model.parameters(), r.max_lr)?;
    let mut sched = Scheduler::new(OneCycleLr::new(r.max_lr, steps), &mut opt)?;
    let mut accuracy = 0.0;
    for epoch in 1..=r.epochs {
        model.train();
        let start = Instant::now();
        let mut loss_sum = 0.0;
        let mut batches = 0;
        for (x, labels) in data
            .train
            .batches(r.batch_size, Some(r.seed + epoch as u64))
        {
            let tape = Tape::new();
            let loss = model
                .forward(&tape.constant(x))?
                .cross_entropy(&labels, Reduction::Mean)?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            sched.step(&mut opt)?;
            loss_sum += f64::from(loss.value().item().unwrap_or(f32::NAN));
            batches += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        model.eval();
        accuracy = 100.0 * data.test.accuracy(model)?;
        println!(
            "epoch {epoch}: test accuracy {accuracy:.2}%, epoch time {elapsed:.2} s (train loss {:.4})",
            loss_sum / batches as f64
        );
    }
    Ok(accuracy)
}
