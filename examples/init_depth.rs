//! "How should conv weights be initialized with ReLU — does the 2/n rule hold for conv
//! layers?" A 30-layer ReLU conv net: the activation standard deviation layer by layer
//! at initialization for naive N(0, 0.01²), Glorot and He (fan-in from the kernel shape,
//! `in·kh·kw`), then the training loss over 200 Adam steps on MNIST for each.
//! He et al. (2015) report that a 30-layer ReLU net converges with their init and stalls
//! with Glorot's. Writes `docs/init_depth_std.png` and `docs/init_depth_loss.png`.
//!
//! `cargo run --release --example init_depth [-- --quick]`

use chainrule::nn::init::{self, FanMode, Nonlinearity};
use chainrule::nn::layers::{Conv2d, Linear};
use chainrule::nn::mnist::Mnist;
use chainrule::nn::optim::{Adam, Optimizer};
use chainrule::nn::{Module, ModuleState};
use chainrule::{AvgPool2dParams, Conv2dParams, Param, Reduction, Tape, Tensor, Var};
use rand::{rngs::StdRng, SeedableRng};

#[path = "common/plot.rs"]
#[allow(dead_code)]
mod plot;

/// Conv layers in the net.
pub const DEPTH: usize = 30;
/// Channels of every hidden layer when training.
pub const TRAIN_WIDTH: usize = 16;
/// Channels when measuring the responses at init: the rule holds in expectation, and a
/// wide layer averages over enough weights for one draw to show it.
pub const STATS_WIDTH: usize = 32;

/// The three initializations compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, 0.01²), the "small random numbers" rule.
    Naive,
    /// Glorot/Xavier normal: std √(2/(fan_in + fan_out)).
    Glorot,
    /// He/Kaiming normal, fan-in, ReLU gain: std √(2/fan_in).
    He,
}

impl Init {
    fn name(self) -> &'static str {
        match self {
            Init::Naive => "naive N(0, 0.01²)",
            Init::Glorot => "Glorot (Xavier)",
            Init::He => "He (Kaiming, fan-in)",
        }
    }

    fn sample(self, dims: &[usize], rng: &mut StdRng) -> Tensor<f32> {
        match self {
            Init::Naive => init::normal(dims, 0.0, 0.01, rng),
            Init::Glorot => init::xavier_normal(dims, 1.0, rng),
            Init::He => init::kaiming_normal(dims, FanMode::FanIn, Nonlinearity::Relu, rng),
        }
        .expect("conv and linear shapes have fans")
    }
}

/// 14×14 MNIST → 30 × (3×3 conv, ReLU) → global average pool → linear 10; zero biases.
pub struct DeepNet {
    convs: Vec<Conv2d>,
    head: Linear,
}

impl DeepNet {
    /// A net with every weight drawn by `init`.
    pub fn new(init: Init, seed: u64, width: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let same = Conv2dParams {
            padding: [1, 1],
            ..Default::default()
        };
        let convs = (0..DEPTH)
            .map(|i| {
                let cin = if i == 0 { 1 } else { width };
                Conv2d::from_tensors(
                    init.sample(&[width, cin, 3, 3], &mut rng),
                    Some(Tensor::zeros(&[width]).expect("a small shape")),
                    same,
                )
            })
            .collect();
        let head = Linear::from_tensors(
            init.sample(&[10, width], &mut rng),
            Some(Tensor::zeros(&[10]).expect("a small shape")),
        );
        DeepNet { convs, head }
    }

    /// Logits, calling `each(layer, response)` with every conv's output (before its ReLU:
    /// He's analysis keeps the variance of these responses constant).
    pub fn forward_with(
        &self,
        x: &Var,
        mut each: impl FnMut(usize, &Var),
    ) -> chainrule::Result<Var> {
        let mut h = x.avg_pool2d(AvgPool2dParams::new([2, 2]))?;
        for (i, conv) in self.convs.iter().enumerate() {
            let response = conv.forward(&h)?;
            each(i, &response);
            h = response.relu();
        }
        self.head
            .forward(&h.adaptive_avg_pool2d([1, 1])?.flatten(1)?)
    }

    fn parameters(&self) -> Vec<Param> {
        let mut p: Vec<Param> = self.convs.iter().flat_map(|c| c.parameters()).collect();
        p.extend(self.head.parameters());
        p
    }
}

/// Variance of a `[n, c, h, w]` response over the positions at least `margin` from the
/// border: the zero padding of every earlier layer cannot reach them.
fn interior_var(t: &Tensor<f32>, margin: usize) -> f64 {
    let &[_, _, h, w] = t.dims() else {
        return f64::NAN;
    };
    let vals: Vec<f64> = t
        .data()
        .chunks(h * w)
        .flat_map(|plane| {
            (margin..h - margin)
                .flat_map(move |y| (margin..w - margin).map(move |x| plane[y * w + x] as f64))
        })
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64
}

/// Per-layer response std at initialization, the root mean of the variances over
/// `nets` independently initialized nets (one net's layers fluctuate with its draw).
/// The input is unit Gaussian noise on a 144×144 plane (72×72 after the first pooling),
/// and layer `l` is measured `l` pixels away from the border: on MNIST's small planes the
/// zero padding, not the init rule, would dominate the decay.
pub fn activation_std(init: Init, nets: u64) -> chainrule::Result<Vec<f64>> {
    let x = init::normal::<f32, _>(&[1, 1, 144, 144], 0.0, 1.0, &mut StdRng::seed_from_u64(99))
        .expect("valid std");
    let mut var = vec![0.0; DEPTH];
    for seed in 0..nets {
        let tape = Tape::new();
        let _off = tape.no_grad();
        DeepNet::new(init, seed, STATS_WIDTH).forward_with(&tape.constant(x.clone()), |i, h| {
            var[i] += interior_var(h.value(), i + 1)
        })?;
    }
    Ok(var.into_iter().map(|v| (v / nets as f64).sqrt()).collect())
}

/// Training loss per step (Adam, lr 1e-3, batch 32).
pub fn train(init: Init, data: &Mnist, steps: usize) -> chainrule::nn::Result<Vec<f64>> {
    let net = DeepNet::new(init, 0, TRAIN_WIDTH);
    // Adam, not SGD: with SGD + momentum (lr 0.01, 0.03, 0.1) none of the three inits
    // moved the loss in 200 steps, so SGD could not show the difference in this budget.
    let mut opt = Adam::new(net.parameters(), 1e-3)?;
    let mut losses = Vec::with_capacity(steps);
    for (x, labels) in data.train.batches(32, Some(1)).take(steps) {
        let tape = Tape::new();
        let loss = net
            .forward_with(&tape.constant(x), |_, _| {})?
            .cross_entropy(&labels, Reduction::Mean)?;
        let grads = loss.backward()?;
        opt.step(&grads)?;
        losses.push(loss.value().item().unwrap_or(f32::NAN) as f64);
    }
    Ok(losses)
}

/// A moving average, for a readable curve.
fn smooth(v: &[f64], k: usize) -> Vec<(f64, f64)> {
    (0..v.len())
        .map(|i| {
            (
                i as f64,
                v[i.saturating_sub(k - 1)..=i].iter().sum::<f64>()
                    / (i - i.saturating_sub(k - 1) + 1) as f64,
            )
        })
        .collect()
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let data = Mnist::load("data/mnist")?;
    let inits = [Init::Naive, Init::Glorot, Init::He];
    let mut std_series = Vec::new();
    println!("conv response std at init ({STATS_WIDTH} channels), layer 1 / 10 / 20 / 30 (root mean variance over 8 draws):");
    for init in inits {
        let s = activation_std(init, 8)?;
        println!(
            "  {:<22} {:.3e} / {:.3e} / {:.3e} / {:.3e}",
            init.name(),
            s[0],
            s[9],
            s[19],
            s[29]
        );
        std_series.push(plot::Series {
            name: init.name().into(),
            points: s
                .iter()
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        });
    }
    let steps = if quick { 20 } else { 200 };
    let mut loss_series = Vec::new();
    println!("training loss ({TRAIN_WIDTH} channels; Adam lr 1e-3, batch 32), mean of first / last 20 of {steps} steps:");
    for init in inits {
        let t = std::time::Instant::now();
        let l = train(init, &data, steps)?;
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        println!(
            "  {:<22} {:.4} → {:.4}   ({:.1} s)",
            init.name(),
            mean(&l[..20.min(l.len())]),
            mean(&l[l.len().saturating_sub(20)..]),
            t.elapsed().as_secs_f64()
        );
        loss_series.push(plot::Series {
            name: init.name().into(),
            points: smooth(&l, 10),
        });
    }
    if !quick {
        plot::line_chart(
            "docs/init_depth_std.png",
            "30-layer ReLU conv net: conv response std at initialization",
            "layer",
            "std (log scale)",
            &std_series,
            true,
        )?;
        plot::line_chart(
            "docs/init_depth_loss.png",
            "30-layer ReLU conv net: training loss",
            "step",
            "cross-entropy (10-step mean)",
            &loss_series,
            false,
        )?;
        println!("wrote docs/init_depth_std.png and docs/init_depth_loss.png");
    }
    Ok(())
}
