//! The seven workloads of `WORKLOADS.md`, shared by `examples/workloads` and the
//! criterion benches (`benches/workloads.rs`).

use chainrule::nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use chainrule::nn::optim::{Optimizer, Sgd};
use chainrule::nn::Module;
use chainrule::{Conv2dParams, Gradients, Param, Reduction, Tape, Tensor, Var};
use rand::{rngs::StdRng, Rng};

/// One workload: builds its state once, then runs training steps.
pub trait Workload {
    /// Forward, loss, backward, update; returns the gradients for verification.
    fn step(&mut self) -> chainrule::Result<Gradients>;
    /// Images per step (None where the spec reports none).
    fn batch(&self) -> Option<usize>;
    /// Floating-point operations per step, for GFLOP/s.
    fn flops(&self) -> Option<f64> {
        None
    }
    /// Recorded ops per step, for µs per op.
    fn ops(&self) -> Option<usize> {
        None
    }
}

fn rand_tensor(rng: &mut StdRng, dims: &[usize]) -> Tensor<f32> {
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(), dims)
        .expect("length matches")
}

/// A classifier trained with SGD (lr 0.01) on fixed random inputs and labels.
struct Classifier {
    net: Sequential,
    opt: Sgd,
    x: Tensor<f32>,
    labels: Vec<usize>,
}

impl Classifier {
    fn new(net: Sequential, x_dims: &[usize], rng: &mut StdRng) -> Self {
        let x = rand_tensor(rng, x_dims);
        let labels = (0..x_dims[0]).map(|_| rng.gen_range(0..10)).collect();
        let opt = Sgd::new(net.parameters(), 0.01);
        Classifier {
            net,
            opt,
            x,
            labels,
        }
    }
}

impl Workload for Classifier {
    fn step(&mut self) -> chainrule::Result<Gradients> {
        let tape = Tape::new();
        let loss = self
            .net
            .forward(&tape.constant(self.x.clone()))?
            .cross_entropy(&self.labels, Reduction::Mean)?;
        let grads = loss.backward()?;
        self.opt
            .step(&grads)
            .map_err(|e| chainrule::Error::BackwardCall {
                site: chainrule::Site::caller(),
                reason: e.to_string(),
            })?;
        Ok(grads)
    }
    fn batch(&self) -> Option<usize> {
        Some(self.x.dims()[0])
    }
}

/// Applies `p -= 0.01·g` to every parameter with a gradient.
fn sgd_update(params: &[Param], grads: &Gradients) {
    for p in params {
        if let Some(g) = grads.get(p) {
            p.update(|w| {
                w.data_mut()
                    .iter_mut()
                    .zip(g.data())
                    .for_each(|(w, g)| *w -= 0.01 * g)
            });
        }
    }
}

struct Matmul {
    a: Param,
    b: Param,
}

impl Workload for Matmul {
    fn step(&mut self) -> chainrule::Result<Gradients> {
        let tape = Tape::new();
        let grads = tape
            .param(&self.a)
            .matmul(&tape.param(&self.b))?
            .sum()
            .backward()?;
        sgd_update(&[self.a.clone(), self.b.clone()], &grads);
        Ok(grads)
    }
    fn batch(&self) -> Option<usize> {
        None
    }
    fn flops(&self) -> Option<f64> {
        Some(3.0 * 2.0 * 1024f64.powi(3))
    }
}

struct Conv {
    x: Param,
    w: Param,
    b: Param,
}

impl Workload for Conv {
    fn step(&mut self) -> chainrule::Result<Gradients> {
        let tape = Tape::new();
        let p = Conv2dParams {
            padding: [1, 1],
            ..Default::default()
        };
        let (x, w, b) = (
            tape.param(&self.x),
            tape.param(&self.w),
            tape.param(&self.b),
        );
        let grads = x.conv2d(&w, Some(&b), p)?.sum().backward()?;
        sgd_update(&[self.w.clone(), self.b.clone()], &grads);
        Ok(grads)
    }
    fn batch(&self) -> Option<usize> {
        Some(32)
    }
    fn flops(&self) -> Option<f64> {
        Some(3.0 * 2.0 * 32.0 * 64.0 * 64.0 * 9.0 * 32.0 * 32.0)
    }
}

struct TapeOverhead {
    h0: Tensor<f32>,
    params: Vec<(Param, Param)>,
}

impl Workload for TapeOverhead {
    fn step(&mut self) -> chainrule::Result<Gradients> {
        let tape = Tape::new();
        let mut h = tape.constant(self.h0.clone());
        for (w, b) in &self.params {
            h = ((&h * &tape.param(w))? + &tape.param(b))?.tanh();
        }
        let grads = h.sum().backward()?;
        let all: Vec<Param> = self
            .params
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect();
        sgd_update(&all, &grads);
        Ok(grads)
    }
    fn batch(&self) -> Option<usize> {
        None
    }
    fn ops(&self) -> Option<usize> {
        Some(3 * self.params.len())
    }
}

struct Reuse {
    layer: Linear,
    x: Tensor<f32>,
    target: Tensor<f32>,
}

impl Reuse {
    fn run(&self, layers: [&Linear; 3]) -> chainrule::Result<Gradients> {
        let tape = Tape::new();
        let mut h: Var = tape.constant(self.x.clone());
        for l in layers {
            h = l.forward(&h)?.tanh();
        }
        h.mse_loss(&tape.constant(self.target.clone()), Reduction::Mean)?
            .backward()
    }

    /// The shared weight's gradient must equal the sum of three copies' gradients.
    fn verify(&self) -> Result<(), String> {
        let copy = || {
            Linear::from_tensors(
                self.layer.weight.value(),
                self.layer.bias.as_ref().map(Param::value),
            )
        };
        let copies = [copy(), copy(), copy()];
        let shared = self.run([&self.layer; 3]).map_err(|e| e.to_string())?;
        let separate = self
            .run([&copies[0], &copies[1], &copies[2]])
            .map_err(|e| e.to_string())?;
        let mut sum = separate
            .get(&copies[2].weight)
            .ok_or("no gradient")?
            .clone();
        sum.add_assign(separate.get(&copies[1].weight).ok_or("no gradient")?)
            .map_err(|e| e.to_string())?;
        sum.add_assign(separate.get(&copies[0].weight).ok_or("no gradient")?)
            .map_err(|e| e.to_string())?;
        if shared.get(&self.layer.weight) != Some(&sum) {
            return Err("W7: the shared weight's gradient differs from the sum of its uses".into());
        }
        eprintln!("W7: shared weight gradient equals the sum of its three uses (bit-exact)");
        Ok(())
    }
}

impl Workload for Reuse {
    fn step(&mut self) -> chainrule::Result<Gradients> {
        let grads = self.run([&self.layer; 3])?;
        sgd_update(&self.layer.parameters(), &grads);
        Ok(grads)
    }
    fn batch(&self) -> Option<usize> {
        Some(64)
    }
}

pub fn build(id: &str, rng: &mut StdRng) -> Result<Box<dyn Workload>, String> {
    Ok(match id {
        "W1" => {
            let net = Sequential::new()
                .push(Conv2d::new(1, 3, [5, 5], rng))
                .push(ReLU)
                .push(MaxPool2d::new([2, 2]))
                .push(Flatten::default())
                .push(Linear::new(432, 10, rng));
            Box::new(Classifier::new(net, &[64, 1, 28, 28], rng))
        }
        "W2" => {
            let net = Sequential::new()
                .push(Conv2d::new(1, 32, [3, 3], rng))
                .push(ReLU)
                .push(Conv2d::new(32, 64, [3, 3], rng))
                .push(ReLU)
                .push(MaxPool2d::new([2, 2]))
                .push(Flatten::default())
                .push(Linear::new(9216, 128, rng))
                .push(ReLU)
                .push(Linear::new(128, 10, rng));
            Box::new(Classifier::new(net, &[64, 1, 28, 28], rng))
        }
        "W3" => {
            let net = Sequential::new()
                .push(Linear::new(784, 512, rng))
                .push(ReLU)
                .push(Linear::new(512, 512, rng))
                .push(ReLU)
                .push(Linear::new(512, 10, rng));
            Box::new(Classifier::new(net, &[128, 784], rng))
        }
        "W4" => Box::new(Matmul {
            a: Param::new(rand_tensor(rng, &[1024, 1024])),
            b: Param::new(rand_tensor(rng, &[1024, 1024])),
        }),
        "W5" => Box::new(Conv {
            x: Param::new(rand_tensor(rng, &[32, 64, 32, 32])),
            w: Param::new(rand_tensor(rng, &[64, 64, 3, 3]).scale(0.05)),
            b: Param::new(rand_tensor(rng, &[64])),
        }),
        "W6" => Box::new(TapeOverhead {
            h0: rand_tensor(rng, &[16]),
            params: (0..1000)
                .map(|_| {
                    (
                        Param::new(rand_tensor(rng, &[16])),
                        Param::new(rand_tensor(rng, &[16]).scale(0.1)),
                    )
                })
                .collect(),
        }),
        "W7" => {
            let w = Reuse {
                layer: Linear::new(256, 256, rng),
                x: rand_tensor(rng, &[64, 256]),
                target: rand_tensor(rng, &[64, 256]),
            };
            w.verify()?;
            Box::new(w)
        }
        other => return Err(format!("unknown workload {other} (W1…W7)")),
    })
}
