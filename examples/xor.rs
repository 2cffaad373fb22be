//! How an activation lets a network classify data that is not linearly separable:
//! logistic regression fails on XOR; one hidden layer with tanh, sigmoid or ReLU
//! succeeds. Writes `docs/xor.png` with each model's decision boundary.
//!
//! `cargo run --release --example xor`

use chainrule::nn::layers::{Linear, ReLU, Sequential, Sigmoid, Tanh};
use chainrule::nn::optim::{Adam, Optimizer};
use chainrule::nn::{Module, ModuleState};
use chainrule::{Reduction, Tape, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

#[path = "common/plot.rs"]
#[allow(dead_code)]
mod plot;

/// Noisy XOR: four clusters at (±1, ±1); label 1 where the signs differ.
pub fn xor_data(n: usize, seed: u64) -> (Tensor<f32>, Tensor<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut xs = Vec::with_capacity(2 * n);
    let mut ys = Vec::with_capacity(n);
    for i in 0..n {
        let (sx, sy) = (
            if i % 2 == 0 { 1.0 } else { -1.0 },
            if (i / 2) % 2 == 0 { 1.0 } else { -1.0 },
        );
        xs.push(sx + rng.gen_range(-0.5..0.5));
        xs.push(sy + rng.gen_range(-0.5..0.5));
        ys.push(if sx * sy < 0.0 { 1.0 } else { 0.0 });
    }
    (
        Tensor::from_vec(xs, &[n, 2]).unwrap(),
        Tensor::from_vec(ys, &[n, 1]).unwrap(),
    )
}

/// A trained model and its training accuracy.
pub struct Trained {
    /// "logistic regression" or the hidden activation.
    pub name: &'static str,
    /// The model.
    pub model: Sequential,
    /// Fraction of training points classified correctly.
    pub accuracy: f64,
}

/// Trains full-batch with Adam (lr 0.05) and binary cross-entropy on logits.
pub fn train(
    name: &'static str,
    model: Sequential,
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    steps: usize,
) -> chainrule::nn::Result<Trained> {
    let mut opt = Adam::new(model.parameters(), 0.05)?;
    for _ in 0..steps {
        let tape = Tape::new();
        let loss = model
            .forward(&tape.constant(x.clone()))?
            .bce_with_logits(&tape.constant(y.clone()), Reduction::Mean)?;
        opt.step(&loss.backward()?)?;
    }
    let tape = Tape::new();
    let logits = model.forward(&tape.constant(x.clone()))?;
    let correct = logits
        .value()
        .data()
        .iter()
        .zip(y.data())
        .filter(|(&l, &t)| (l > 0.0) == (t > 0.5))
        .count();
    Ok(Trained {
        name,
        model,
        accuracy: correct as f64 / y.numel() as f64,
    })
}

/// The four models, trained.
pub fn run(steps: usize) -> chainrule::nn::Result<Vec<Trained>> {
    let (x, y) = xor_data(200, 1);
    let mut rng = StdRng::seed_from_u64(2);
    let hidden = |act: Box<dyn Fn(Sequential) -> Sequential>,
                  rng: &mut StdRng|
     -> chainrule::nn::Result<Sequential> {
        let m = Sequential::new().push(Linear::new(2, 8, rng)?);
        Ok(act(m).push(Linear::new(8, 1, rng)?))
    };
    Ok(vec![
        train(
            "logistic regression",
            Sequential::new().push(Linear::new(2, 1, &mut rng)?),
            &x,
            &y,
            steps,
        )?,
        train(
            "hidden layer, tanh",
            hidden(Box::new(|m| m.push(Tanh)), &mut rng)?,
            &x,
            &y,
            steps,
        )?,
        train(
            "hidden layer, sigmoid",
            hidden(Box::new(|m| m.push(Sigmoid)), &mut rng)?,
            &x,
            &y,
            steps,
        )?,
        train(
            "hidden layer, ReLU",
            hidden(Box::new(|m| m.push(ReLU)), &mut rng)?,
            &x,
            &y,
            steps,
        )?,
    ])
}

fn draw(models: &[Trained], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    plot::init_font();
    let (x, y) = xor_data(200, 1);
    let root = BitMapBackend::new(path, (1200, 330)).into_drawing_area();
    root.fill(&WHITE)?;
    const GRID: usize = 80;
    for (panel, m) in root.split_evenly((1, models.len())).iter().zip(models) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{} ({:.0}%)", m.name, 100.0 * m.accuracy),
                ("sans-serif", 16),
            )
            .margin(8)
            .build_cartesian_2d(-2.0f64..2.0, -2.0f64..2.0)?;
        let cells: Vec<f32> = (0..GRID * GRID)
            .flat_map(|i| {
                [
                    -2.0 + 4.0 * ((i % GRID) as f32 + 0.5) / GRID as f32,
                    2.0 - 4.0 * ((i / GRID) as f32 + 0.5) / GRID as f32,
                ]
            })
            .collect();
        let tape = Tape::new();
        let logits = m
            .model
            .forward(&tape.constant(Tensor::from_vec(cells.clone(), &[GRID * GRID, 2])?))?;
        chart.draw_series(logits.value().data().iter().enumerate().map(|(i, &l)| {
            let (cx, cy) = (cells[2 * i] as f64, cells[2 * i + 1] as f64);
            let h = 2.0 / GRID as f64;
            let c = if l > 0.0 {
                RGBColor(255, 214, 170)
            } else {
                RGBColor(170, 205, 255)
            };
            Rectangle::new([(cx - h, cy - h), (cx + h, cy + h)], c.filled())
        }))?;
        chart.draw_series((0..y.numel()).map(|i| {
            let c = if y.data()[i] > 0.5 {
                RGBColor(220, 90, 0)
            } else {
                RGBColor(0, 70, 200)
            };
            Circle::new(
                (x.data()[2 * i] as f64, x.data()[2 * i + 1] as f64),
                3,
                c.filled(),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let models = run(if quick { 300 } else { 1000 })?;
    for m in &models {
        println!(
            "{:<24} training accuracy {:6.2}%  ({} parameters)",
            m.name,
            100.0 * m.accuracy,
            m.model.num_parameters()
        );
    }
    if !quick {
        draw(&models, "docs/xor.png")?;
        println!("wrote docs/xor.png");
    }
    Ok(())
}
