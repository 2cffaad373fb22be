//! Gradients of gradients, three ways users ask for them:
//!
//! (a) a Hessian-vector product, checked against finite differences of the gradient;
//! (b) a WGAN-GP-style gradient penalty: a critic trained on a 2-D toy distribution
//!     with `λ·(‖∇ₓD(x̂)‖ − 1)²`, the penalty going to its target of 0;
//! (c) one-step MAML on sine-wave regression: the meta-gradient flows through the
//!     inner SGD step, and the learned initialisation adapts far better in one step.
//!
//! `cargo run --release --example higher_order`

use chainrule::nn::layers::{Linear, Sequential, Tanh};
use chainrule::nn::optim::{Adam, Optimizer};
use chainrule::nn::{Module, ModuleState};
use chainrule::{grad, GradOptions, Param, Reduction, Result, Tape, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn randn(rng: &mut StdRng, dims: &[usize], scale: f64) -> Tensor<f64> {
    let n = dims.iter().product();
    let v = (0..n).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
    Tensor::from_vec(v, dims).expect("length matches dims")
}

/// (a): the largest |Hv − (∇f(x+εv) − ∇f(x−εv))/2ε| for a small network's loss.
pub fn hvp_error() -> Result<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    let (w1, w2) = (randn(&mut rng, &[8, 4], 0.5), randn(&mut rng, &[1, 8], 0.5));
    let x0 = randn(&mut rng, &[4], 1.0);
    let v = randn(&mut rng, &[4], 1.0);
    let f = |x: &Var<f64>| -> Result<Var<f64>> {
        let t = x.tape();
        let h = x
            .reshape(&[1, 4])?
            .linear(&t.constant(w1.clone()), None)?
            .tanh();
        Ok(h.linear(&t.constant(w2.clone()), None)?.square().sum())
    };
    let gradient = |x: &Tensor<f64>| -> Result<Tensor<f64>> {
        let tape = Tape::new();
        let x = tape.leaf(x.clone());
        Ok(grad(&[&f(&x)?], &[&x], &[], GradOptions::default())?[0]
            .value()
            .clone())
    };
    // Hv: differentiate <∇f, v> once more
    let tape = Tape::new();
    let x = tape.leaf(x0.clone());
    let g = grad(&[&f(&x)?], &[&x], &[], GradOptions::create_graph())?;
    let gv = (&g[0] * &tape.constant(v.clone()))?.sum();
    let hv = grad(&[&gv], &[&x], &[], GradOptions::default())?[0]
        .value()
        .clone();
    let eps = 1e-5;
    let shifted = |s: f64| x0.zip_map(&v, |x, v| x + s * v);
    let (up, down) = (gradient(&shifted(eps)?)?, gradient(&shifted(-eps)?)?);
    let numeric = up.zip_map(&down, |a, b| (a - b) / (2.0 * eps))?;
    Ok(hv
        .data()
        .iter()
        .zip(numeric.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max))
}

/// What (b) printed: per report step, the step, the critic's Wasserstein estimate
/// E[D(real)] − E[D(fake)], the mean gradient norm at the interpolates and the penalty.
pub type PenaltyLog = Vec<(usize, f64, f64, f64)>;

/// (b): trains a critic with the gradient penalty for `steps` steps.
pub fn gradient_penalty(steps: usize) -> Result<PenaltyLog> {
    const BATCH: usize = 64;
    const LAMBDA: f64 = 10.0;
    let mut rng = StdRng::seed_from_u64(2);
    let critic = Sequential::<f64>::new()
        .push(Linear::new(2, 32, &mut rng)?)
        .push(Tanh)
        .push(Linear::new(32, 32, &mut rng)?)
        .push(Tanh)
        .push(Linear::new(32, 1, &mut rng)?);
    let mut opt = Adam::new(critic.parameters(), 1e-3)?;
    let mut log = PenaltyLog::new();
    for step in 0..=steps {
        // real: a ring of radius 2; fake: a blob at the origin
        let mut real = Vec::with_capacity(2 * BATCH);
        let mut fake = Vec::with_capacity(2 * BATCH);
        let mut mix = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            real.extend([2.0 * a.cos(), 2.0 * a.sin()]);
            fake.extend([rng.gen_range(-0.5..0.5), rng.gen_range(-0.5..0.5)]);
            mix.push(rng.gen_range(0.0..1.0));
        }
        let real = Tensor::from_vec(real, &[BATCH, 2])?;
        let fake = Tensor::from_vec(fake, &[BATCH, 2])?;
        let mix = Tensor::from_vec(mix, &[BATCH, 1])?;
        let tape = Tape::new();
        let (r, f) = (tape.constant(real), tape.constant(fake));
        let m = tape.constant(mix);
        // x̂ = m·real + (1 − m)·fake, a leaf: the penalty differentiates D with respect to it
        let blend = ((&m * &r)? + (&m.neg().add_scalar(1.0) * &f)?)?;
        let x_hat = tape.leaf(blend.value().clone());
        let d_hat = critic.forward(&x_hat)?.sum();
        let g = grad(&[&d_hat], &[&x_hat], &[], GradOptions::create_graph())?;
        let norm = g[0]
            .square()
            .sum_dims(&[1], false)?
            .add_scalar(1e-12)
            .sqrt();
        let penalty = norm.add_scalar(-1.0).square().mean()?;
        let w_estimate = (critic.forward(&r)?.mean()? - critic.forward(&f)?.mean()?)?;
        let loss = (&w_estimate.neg() + &penalty.mul_scalar(LAMBDA))?;
        if step % (steps / 6).max(1) == 0 {
            let mean_norm = norm.value().data().iter().sum::<f64>() / BATCH as f64;
            let item = |v: &Var<f64>| v.value().item().unwrap_or(f64::NAN);
            log.push((step, item(&w_estimate), mean_norm, item(&penalty)));
        }
        // the parameters' gradient flows through the recorded ∇ₓD
        opt.step(&loss.backward()?)?;
    }
    Ok(log)
}

/// A sine task: y = a·sin(x + φ).
struct Task {
    amplitude: f64,
    phase: f64,
}

impl Task {
    fn sample(rng: &mut StdRng) -> Task {
        Task {
            amplitude: rng.gen_range(0.1..5.0),
            phase: rng.gen_range(0.0..std::f64::consts::PI),
        }
    }

    /// `k` points of this task as `[k, 1]` inputs and targets.
    fn batch(&self, rng: &mut StdRng, k: usize) -> Result<(Tensor<f64>, Tensor<f64>)> {
        let x: Vec<f64> = (0..k).map(|_| rng.gen_range(-5.0..5.0)).collect();
        let y = x
            .iter()
            .map(|x| self.amplitude * (x + self.phase).sin())
            .collect();
        Ok((Tensor::from_vec(x, &[k, 1])?, Tensor::from_vec(y, &[k, 1])?))
    }
}

/// The regression network written over weight `Var`s, so it can run on adapted
/// weights θ' = θ − α∇L that are values of the tape, not parameters.
fn sine_net(x: &Var<f64>, w: &[Var<f64>]) -> Result<Var<f64>> {
    let h = x.linear(&w[0], Some(&w[1]))?.tanh();
    let h = h.linear(&w[2], Some(&w[3]))?.tanh();
    h.linear(&w[4], Some(&w[5]))
}

const INNER_LR: f64 = 0.01;
const K: usize = 10;

/// The query loss after one inner SGD step on a task's support set, recorded so the
/// meta-gradient flows through the step (`create_graph`).
fn adapted_loss(
    tape: &Tape<f64>,
    theta: &[Var<f64>],
    task: &Task,
    rng: &mut StdRng,
) -> Result<Var<f64>> {
    let (xs, ys) = task.batch(rng, K)?;
    let (xq, yq) = task.batch(rng, K)?;
    let support =
        sine_net(&tape.constant(xs), theta)?.mse_loss(&tape.constant(ys), Reduction::Mean)?;
    let refs: Vec<&Var<f64>> = theta.iter().collect();
    let g = grad(&[&support], &refs, &[], GradOptions::create_graph())?;
    let adapted: Vec<Var<f64>> = theta
        .iter()
        .zip(&g)
        .map(|(t, g)| t - &g.mul_scalar(INNER_LR))
        .collect::<Result<_>>()?;
    sine_net(&tape.constant(xq), &adapted)?.mse_loss(&tape.constant(yq), Reduction::Mean)
}

/// Mean query loss after one inner step, over `tasks` fresh tasks.
fn evaluate(params: &[Param<f64>], tasks: usize, rng: &mut StdRng) -> Result<f64> {
    let mut total = 0.0;
    for _ in 0..tasks {
        let tape = Tape::new();
        let theta: Vec<Var<f64>> = params.iter().map(|p| tape.param(p)).collect();
        let task = Task::sample(rng);
        total += adapted_loss(&tape, &theta, &task, rng)?
            .value()
            .item()
            .unwrap_or(f64::NAN);
    }
    Ok(total / tasks as f64)
}

/// What (c) measured: the one-step-adapted query loss of three initialisations.
pub struct MamlReport {
    /// The random initialisation.
    pub random: f64,
    /// Trained as long on the same tasks, without the inner step (plain multi-task
    /// regression: no meta-gradient).
    pub pretrained: f64,
    /// Trained by MAML: the meta-gradient flows through the inner step.
    pub maml: f64,
}

/// The random initialisation, shared by both trainings.
fn sine_params() -> Vec<Param<f64>> {
    let mut rng = StdRng::seed_from_u64(3);
    let mut params = Vec::new();
    for [o, i] in [[40, 1], [40, 40], [1, 40]] {
        let bound = (1.0 / i as f64).sqrt();
        params.push(Param::new(randn(&mut rng, &[o, i], bound)));
        params.push(Param::new(randn(&mut rng, &[o], bound)));
    }
    params
}

/// (c): trains for `meta_steps` steps of 4 tasks each, with and without the inner
/// step, and evaluates each initialisation's one-step adaptation on 100 new tasks.
pub fn maml(meta_steps: usize) -> Result<MamlReport> {
    let random = evaluate(&sine_params(), 100, &mut StdRng::seed_from_u64(4))?;
    let mut trained = [0.0; 2];
    for (slot, through_the_step) in trained.iter_mut().zip([false, true]) {
        let params = sine_params();
        let mut rng = StdRng::seed_from_u64(5);
        let mut opt = Adam::new(params.clone(), 1e-3)?;
        for _ in 0..meta_steps {
            let tape = Tape::new();
            let theta: Vec<Var<f64>> = params.iter().map(|p| tape.param(p)).collect();
            let mut meta = tape.constant(Tensor::scalar(0.0));
            for _ in 0..4 {
                let task = Task::sample(&mut rng);
                let loss = if through_the_step {
                    adapted_loss(&tape, &theta, &task, &mut rng)?
                } else {
                    let (x, y) = task.batch(&mut rng, K)?;
                    sine_net(&tape.constant(x), &theta)?
                        .mse_loss(&tape.constant(y), Reduction::Mean)?
                };
                meta = (&meta + &loss.mul_scalar(0.25))?;
            }
            opt.step(&meta.backward()?)?;
        }
        *slot = evaluate(&params, 100, &mut StdRng::seed_from_u64(4))?;
    }
    Ok(MamlReport {
        random,
        pretrained: trained[0],
        maml: trained[1],
    })
}

#[allow(dead_code)]
fn main() -> Result<()> {
    println!("(a) Hessian-vector product vs finite differences of the gradient:");
    println!("    largest difference {:.2e}", hvp_error()?);
    println!("(b) critic with gradient penalty λ·(‖∇D(x̂)‖ − 1)², λ = 10:");
    println!("    step   E[D(real)]−E[D(fake)]   mean ‖∇D(x̂)‖   penalty");
    for (step, w, norm, penalty) in gradient_penalty(600)? {
        println!("    {step:>4}   {w:>21.4}   {norm:>14.4}   {penalty:>8.5}");
    }
    println!("(c) one-step MAML on sine waves (query MSE after one SGD step, 100 new tasks):");
    let r = maml(4000)?;
    println!("    random initialisation               {:.3}", r.random);
    println!(
        "    trained without the inner step      {:.3}",
        r.pretrained
    );
    println!("    MAML (meta-gradient through it)     {:.3}", r.maml);
    Ok(())
}
