//! "Why two fully connected layers? Why do modern nets use global average pooling
//! instead?" The same small conv trunk with three heads — (a) flatten + one FC,
//! (b) flatten + two FC, (c) global average pooling + FC, and (d) GAP + FC on a trunk
//! widened to 64 channels — trained briefly on MNIST: parameter counts and test
//! accuracy side by side.
//!
//! `cargo run --release --example fc_head [-- --quick]`

use chainrule::nn::layers::{
    Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential,
};
use chainrule::nn::mnist::Mnist;
use chainrule::nn::optim::{Adam, Optimizer};
use chainrule::nn::{Module, ModuleState};
use chainrule::{Reduction, Tape};
use rand::{rngs::StdRng, SeedableRng};

/// conv 1→8 3×3, ReLU, pool 2 → conv 8→`width` 3×3, ReLU, pool 2: `[n, width, 5, 5]`.
fn trunk(width: usize, rng: &mut StdRng) -> chainrule::nn::Result<Sequential> {
    Ok(Sequential::new()
        .push(Conv2d::new(1, 8, [3, 3], rng)?)
        .push(ReLU)
        .push(MaxPool2d::new([2, 2]))
        .push(Conv2d::new(8, width, [3, 3], rng)?)
        .push(ReLU)
        .push(MaxPool2d::new([2, 2])))
}

/// One head's result.
pub struct HeadResult {
    /// Which head.
    pub name: &'static str,
    /// Parameters in the whole model, and in the head alone.
    pub params: (usize, usize),
    /// Test accuracy after training.
    pub accuracy: f64,
}

/// Trains each model for `steps` Adam steps (lr 1e-3, batch 64) and tests it.
pub fn run(data: &Mnist, steps: usize) -> Result<Vec<HeadResult>, Box<dyn std::error::Error>> {
    type Head = fn(&mut StdRng) -> chainrule::nn::Result<Sequential>;
    let heads: [(&'static str, usize, Head); 4] = [
        ("(a) flatten + FC", 16, |rng| {
            Ok(Sequential::new()
                .push(Flatten::default())
                .push(Linear::new(400, 10, rng)?))
        }),
        ("(b) flatten + FC + FC", 16, |rng| {
            Ok(Sequential::new()
                .push(Flatten::default())
                .push(Linear::new(400, 64, rng)?)
                .push(ReLU)
                .push(Linear::new(64, 10, rng)?))
        }),
        ("(c) global avg pool + FC", 16, |rng| {
            Ok(Sequential::new()
                .push(GlobalAvgPool2d)
                .push(Linear::new(16, 10, rng)?))
        }),
        ("(d) 64-ch trunk, GAP + FC", 64, |rng| {
            Ok(Sequential::new()
                .push(GlobalAvgPool2d)
                .push(Linear::new(64, 10, rng)?))
        }),
    ];
    let mut out = Vec::new();
    for (name, width, make_head) in heads {
        let mut rng = StdRng::seed_from_u64(0);
        let body = trunk(width, &mut rng)?;
        let head = make_head(&mut rng)?;
        let head_params = head.num_parameters();
        let net = Sequential::new().push(body).push(head);
        let mut opt = Adam::new(net.parameters(), 1e-3)?;
        for (x, labels) in data.train.batches(64, Some(5)).take(steps) {
            let tape = Tape::new();
            let loss = net
                .forward(&tape.constant(x))?
                .cross_entropy(&labels, Reduction::Mean)?;
            opt.step(&loss.backward()?)?;
        }
        out.push(HeadResult {
            name,
            params: (net.num_parameters(), head_params),
            accuracy: data.test.accuracy(&net)?,
        });
    }
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let steps = if quick { 50 } else { 900 };
    let data = Mnist::load("data/mnist")?;
    println!("trunk: conv 1→8 3×3, ReLU, max-pool 2, conv 8→16 3×3 (64 for d), ReLU, max-pool 2 → [16, 5, 5]");
    println!("training {steps} Adam steps (batch 64) per model\n");
    println!(
        "{:<26} {:>10} {:>12} {:>14}",
        "head", "params", "head params", "test accuracy"
    );
    for r in run(&data, steps)? {
        println!(
            "{:<26} {:>10} {:>12} {:>13.2}%",
            r.name,
            r.params.0,
            r.params.1,
            100.0 * r.accuracy
        );
    }
    Ok(())
}
