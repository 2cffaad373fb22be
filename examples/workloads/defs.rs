//! The ten workloads of `examples/workloads/WORKLOADS.md`, shared by
//! `examples/workloads` and the criterion benches (`benches/workloads.rs`).

use chainrule::nn::layers::{
    BatchNorm2d, Conv2d, FeedForwardActivation, Flatten, Linear, Lstm, MaxPool2d, ReLU, RnnConfig,
    Sequential, TransformerConfig, TransformerEncoderLayer,
};
use chainrule::nn::optim::{Optimizer, Sgd};
use chainrule::nn::{parallel, Module, ModuleState};
use chainrule::{Conv2dParams, Gradients, Param, Reduction, Tape, Tensor, Var};
use rand::{rngs::StdRng, Rng};

/// Records one forward pass up to the loss on the given tape.
type Loss = Box<dyn Fn(&Tape) -> chainrule::Result<Var>>;
/// A classifier's step split into `n` micro-batches on rayon threads.
type MicroStep = Box<dyn Fn(usize) -> chainrule::Result<Gradients>>;

/// One workload: a loss to record, and the parameters SGD (lr 0.01) updates.
pub struct Workload {
    loss: Loss,
    opt: Sgd,
    /// Images per step, where the spec reports images per second.
    pub batch: Option<usize>,
    /// Floating-point operations per step, for GFLOP/s.
    pub flops: Option<f64>,
    /// Recorded ops per step, for µs per op.
    pub ops: Option<usize>,
    /// Run every step under anomaly mode (`--anomaly on`), to show its cost.
    pub anomaly: bool,
    micro_step: Option<MicroStep>,
    /// Micro-batches per step (`--micro`; 1: the whole batch on one tape).
    pub micro: usize,
}

impl Workload {
    fn new(loss: Loss, params: Vec<Param>, batch: Option<usize>) -> Self {
        Workload {
            loss,
            opt: Sgd::new(params, 0.01).expect("0.01 is a valid learning rate"),
            batch,
            flops: None,
            ops: None,
            anomaly: false,
            micro_step: None,
            micro: 1,
        }
    }

    /// One training step: forward, loss, backward, `p -= 0.01·grad`; returns the
    /// gradients for verification (a new tape per step, so nothing to clear).
    pub fn step(&mut self) -> chainrule::nn::Result<Gradients> {
        if self.micro > 1 {
            let split = self.micro_step.as_ref().ok_or(chainrule::Error::Invalid {
                what: "--micro",
                reason: "only the classifier workloads (W1, W2, W3) split into micro-batches"
                    .into(),
            })?;
            let grads = split(self.micro)?;
            self.opt.step(&grads)?;
            return Ok(grads);
        }
        let tape = Tape::new();
        let _on = self.anomaly.then(|| tape.detect_anomaly());
        let grads = (self.loss)(&tape)?.backward()?;
        self.opt.step(&grads)?;
        Ok(grads)
    }
}

fn rand_tensor(rng: &mut StdRng, dims: &[usize]) -> Tensor<f32> {
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(), dims)
        .expect("length matches")
}

/// A classifier on fixed random inputs and labels, cross-entropy loss.
fn classifier(net: Sequential, x_dims: &[usize], rng: &mut StdRng) -> Workload {
    let x = rand_tensor(rng, x_dims);
    let labels = rand_labels(rng, x_dims[0]);
    let params = net.parameters();
    let net = std::sync::Arc::new(net);
    let (net2, x2, labels2) = (net.clone(), x.clone(), labels.clone());
    let loss: Loss = Box::new(move |tape| {
        net.forward(&tape.constant(x.clone()))?
            .cross_entropy(&labels, Reduction::Mean)
    });
    let mut w = Workload::new(loss, params, Some(x_dims[0]));
    w.micro_step = Some(Box::new(move |parts| {
        let rows = x2.dims()[0];
        let mut micro = Vec::new();
        let mut weights = Vec::new();
        for p in 0..parts {
            let (lo, hi) = (p * rows / parts, (p + 1) * rows / parts);
            micro.push((x2.narrow(0, lo, hi - lo)?, labels2[lo..hi].to_vec()));
            weights.push((hi - lo) as f64 / rows as f64);
        }
        let (_, grads) =
            parallel::micro_batch_gradients(&*net2, &micro, &weights, |tape, (x, y)| {
                net2.forward(&tape.constant(x.clone()))?
                    .cross_entropy(y, Reduction::Mean)
            })?;
        Ok(grads)
    }));
    w
}

/// `tanh(L(tanh(L(tanh(L(x))))))` against a target, one layer `L` used three times.
fn reuse_loss(
    layers: [&Linear; 3],
    x: &Tensor<f32>,
    target: &Tensor<f32>,
    tape: &Tape,
) -> chainrule::Result<Var> {
    let mut h = tape.constant(x.clone());
    for l in layers {
        h = l.forward(&h)?.tanh();
    }
    h.mse_loss(&tape.constant(target.clone()), Reduction::Mean)
}

/// W7's check: the shared weight's gradient equals the sum of three copies' gradients.
fn verify_reuse(layer: &Linear, x: &Tensor<f32>, target: &Tensor<f32>) -> Result<(), String> {
    let copy = || Linear::from_tensors(layer.weight.value(), layer.bias.as_ref().map(Param::value));
    let copies = [copy(), copy(), copy()];
    let e = |e: chainrule::Error| e.to_string();
    let shared = reuse_loss([layer; 3], x, target, &Tape::new())
        .and_then(|l| l.backward())
        .map_err(e)?;
    let separate = reuse_loss(
        [&copies[0], &copies[1], &copies[2]],
        x,
        target,
        &Tape::new(),
    )
    .and_then(|l| l.backward())
    .map_err(e)?;
    let grad = |i: usize| separate.get(&copies[i].weight).ok_or("no gradient");
    let mut sum = grad(2)?.clone();
    sum.add_assign(grad(1)?).map_err(|e| e.to_string())?;
    sum.add_assign(grad(0)?).map_err(|e| e.to_string())?;
    if shared.get(&layer.weight) != Some(&sum) {
        return Err("W7: the shared weight's gradient differs from the sum of its uses".into());
    }
    eprintln!("W7: shared weight gradient equals the sum of its three uses (bit-exact)");
    Ok(())
}

/// Fixed random labels in 0..10.
fn rand_labels(rng: &mut StdRng, n: usize) -> Vec<usize> {
    (0..n).map(|_| rng.gen_range(0..10)).collect()
}

/// W8: conv–BN–ReLU–conv–BN, plus the input, ReLU, mean over H and W, linear head.
fn resnet_block(rng: &mut StdRng) -> Result<Workload, Box<dyn std::error::Error>> {
    let same = Conv2dParams {
        padding: [1, 1],
        ..Default::default()
    };
    let conv = |rng: &mut StdRng| Conv2d::with_options(64, 64, [3, 3], same, false, rng);
    let (conv1, conv2) = (conv(rng)?, conv(rng)?);
    let (bn1, bn2) = (BatchNorm2d::new(64)?, BatchNorm2d::new(64)?);
    let fc = Linear::new(64, 10, rng)?;
    let mut params = Vec::new();
    for m in [&conv1 as &dyn Module<f32>, &bn1, &conv2, &bn2, &fc] {
        params.extend(m.parameters());
    }
    let (x, labels) = (rand_tensor(rng, &[32, 64, 16, 16]), rand_labels(rng, 32));
    let loss: Loss = Box::new(move |tape| {
        let x = tape.constant(x.clone());
        let h = bn1.forward(&conv1.forward(&x)?)?.relu();
        let h = bn2.forward(&conv2.forward(&h)?)?;
        let pooled = h.add(&x)?.relu().mean_dims(&[2, 3], false)?;
        fc.forward(&pooled)?.cross_entropy(&labels, Reduction::Mean)
    });
    Ok(Workload::new(loss, params, Some(32)))
}

/// W9: a one-layer LSTM 28→128 over 28 steps, a linear head on the last output.
fn lstm(rng: &mut StdRng) -> Result<Workload, Box<dyn std::error::Error>> {
    let lstm = Lstm::new(28, 128, RnnConfig::default(), rng)?;
    let fc = Linear::new(128, 10, rng)?;
    let mut params = lstm.parameters();
    params.extend(fc.parameters());
    let (x, labels) = (rand_tensor(rng, &[28, 64, 28]), rand_labels(rng, 64));
    let loss: Loss = Box::new(move |tape| {
        // One layer, one direction: h_n `[1, n, 128]` is the last step's output.
        let (_, (h, _)) = lstm.forward_with(&tape.constant(x.clone()), None)?;
        fc.forward(&h.squeeze(Some(0))?)?
            .cross_entropy(&labels, Reduction::Mean)
    });
    Ok(Workload::new(loss, params, Some(64)))
}

/// W10: one post-norm transformer encoder layer (d 128, 4 heads, GELU feed-forward
/// 256, no dropout), mean over the sequence, linear head.
fn transformer(rng: &mut StdRng) -> Result<Workload, Box<dyn std::error::Error>> {
    let config = TransformerConfig {
        dim_feedforward: 256,
        dropout: 0.0,
        activation: FeedForwardActivation::Gelu,
        batch_first: true,
        ..TransformerConfig::default()
    };
    let layer = TransformerEncoderLayer::new(128, 4, config, rng)?;
    let fc = Linear::new(128, 10, rng)?;
    let mut params = layer.parameters();
    params.extend(fc.parameters());
    let (x, labels) = (rand_tensor(rng, &[32, 64, 128]), rand_labels(rng, 32));
    let loss: Loss = Box::new(move |tape| {
        let h = layer.forward(&tape.constant(x.clone()))?;
        fc.forward(&h.mean_dims(&[1], false)?)?
            .cross_entropy(&labels, Reduction::Mean)
    });
    Ok(Workload::new(loss, params, Some(32)))
}

/// Builds workload `id` (W1…W10) with inputs drawn from `rng`.
pub fn build(id: &str, rng: &mut StdRng) -> Result<Workload, Box<dyn std::error::Error>> {
    Ok(match id {
        "W1" => {
            let net = Sequential::new()
                .push(Conv2d::new(1, 3, [5, 5], rng)?)
                .push(ReLU)
                .push(MaxPool2d::new([2, 2]))
                .push(Flatten::default())
                .push(Linear::new(432, 10, rng)?);
            classifier(net, &[64, 1, 28, 28], rng)
        }
        "W2" => {
            let net = Sequential::new()
                .push(Conv2d::new(1, 32, [3, 3], rng)?)
                .push(ReLU)
                .push(Conv2d::new(32, 64, [3, 3], rng)?)
                .push(ReLU)
                .push(MaxPool2d::new([2, 2]))
                .push(Flatten::default())
                .push(Linear::new(9216, 128, rng)?)
                .push(ReLU)
                .push(Linear::new(128, 10, rng)?);
            classifier(net, &[64, 1, 28, 28], rng)
        }
        "W3" => {
            let net = Sequential::new()
                .push(Linear::new(784, 512, rng)?)
                .push(ReLU)
                .push(Linear::new(512, 512, rng)?)
                .push(ReLU)
                .push(Linear::new(512, 10, rng)?);
            classifier(net, &[128, 784], rng)
        }
        "W4" => {
            let (a, b) = (
                Param::new(rand_tensor(rng, &[1024, 1024])),
                Param::new(rand_tensor(rng, &[1024, 1024])),
            );
            let params = vec![a.clone(), b.clone()];
            let loss: Loss =
                Box::new(move |tape| Ok(tape.param(&a).matmul(&tape.param(&b))?.sum()));
            Workload {
                flops: Some(3.0 * 2.0 * 1024f64.powi(3)),
                ..Workload::new(loss, params, None)
            }
        }
        "W5" => {
            let x = Param::new(rand_tensor(rng, &[32, 64, 32, 32])); // gets a gradient, not updated
            let w = Param::new(rand_tensor(rng, &[64, 64, 3, 3]).scale(0.05));
            let b = Param::new(rand_tensor(rng, &[64]));
            let params = vec![w.clone(), b.clone()];
            let same = Conv2dParams {
                padding: [1, 1],
                ..Default::default()
            };
            let loss: Loss = Box::new(move |tape| {
                Ok(tape
                    .param(&x)
                    .conv2d(&tape.param(&w), Some(&tape.param(&b)), same)?
                    .sum())
            });
            Workload {
                flops: Some(3.0 * 2.0 * 32.0 * 64.0 * 64.0 * 9.0 * 32.0 * 32.0),
                ..Workload::new(loss, params, Some(32))
            }
        }
        "W6" => {
            let h0 = rand_tensor(rng, &[16]);
            let layers: Vec<(Param, Param)> = (0..1000)
                .map(|_| {
                    (
                        Param::new(rand_tensor(rng, &[16])),
                        Param::new(rand_tensor(rng, &[16]).scale(0.1)),
                    )
                })
                .collect();
            let params = layers
                .iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()])
                .collect();
            let loss: Loss = Box::new(move |tape| {
                let mut h = tape.constant(h0.clone());
                for (w, b) in &layers {
                    h = ((&h * &tape.param(w))? + &tape.param(b))?.tanh();
                }
                Ok(h.sum())
            });
            Workload {
                ops: Some(3000),
                ..Workload::new(loss, params, None)
            }
        }
        "W7" => {
            let (layer, x, target) = (
                Linear::new(256, 256, rng)?,
                rand_tensor(rng, &[64, 256]),
                rand_tensor(rng, &[64, 256]),
            );
            verify_reuse(&layer, &x, &target)?;
            let params = layer.parameters();
            let loss: Loss = Box::new(move |tape| reuse_loss([&layer; 3], &x, &target, tape));
            Workload::new(loss, params, Some(64))
        }
        "W8" => resnet_block(rng)?,
        "W9" => lstm(rng)?,
        "W10" => transformer(rng)?,
        other => return Err(format!("unknown workload {other} (W1…W10)").into()),
    })
}
