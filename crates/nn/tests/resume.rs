//! Resuming training: 5 steps, save the model and the optimizer state, load both into a
//! fresh process, 5 more steps — the parameters must equal 10 uninterrupted steps bit
//! for bit, for every optimizer (with two parameter groups and a schedule).
//!
//! A test without the default harness: run plainly it is the parent; with
//! `--resume-child DIR NAME` it is the fresh process that loads and continues.

use std::path::{Path, PathBuf};
use std::process::Command;

use chainrule_autograd::{Reduction, Tape, Tensor};
use chainrule_nn::layers::{Linear, Sequential, Tanh};
use chainrule_nn::optim::{
    Adagrad, Adam, LinearLr, NAdam, Optimizer, OptimizerState, ParamGroup, RAdam, RAdamOptions,
    RmsProp, Scheduler, Sgd, SgdOptions,
};
use chainrule_nn::{checkpoint, Module, ModuleState};
use rand::{rngs::StdRng, Rng, SeedableRng};

const OPTIMIZERS: [&str; 8] = [
    "sgd",
    "sgd_groups",
    "adam",
    "adamw_amsgrad",
    "rmsprop",
    "adagrad",
    "nadam",
    "radam_groups",
];
const STEPS: usize = 10;
const SAVED_AT: usize = 5;

fn net(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Linear::new(6, 8, &mut rng).unwrap())
        .push(Tanh)
        .push(Linear::new(8, 3, &mut rng).unwrap())
}

fn optimizer(name: &str, net: &Sequential) -> Box<dyn Optimizer> {
    let p = net.parameters();
    match name {
        "sgd" => Box::new(
            Sgd::new(p, 0.1)
                .unwrap()
                .momentum(0.9)
                .unwrap()
                .nesterov(true)
                .unwrap(),
        ),
        "sgd_groups" => {
            let base = SgdOptions {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 1e-3,
                ..SgdOptions::default()
            };
            Box::new(
                Sgd::with_groups(vec![
                    ParamGroup::new(p[..2].to_vec(), SgdOptions { lr: 0.05, ..base }),
                    ParamGroup::new(
                        p[2..].to_vec(),
                        SgdOptions {
                            dampening: 0.1,
                            ..base
                        },
                    ),
                ])
                .unwrap(),
            )
        }
        "adam" => Box::new(Adam::new(p, 0.01).unwrap().weight_decay(1e-2).unwrap()),
        "adamw_amsgrad" => Box::new(Adam::adamw(p, 0.01, 0.05).unwrap().amsgrad(true)),
        "rmsprop" => Box::new(
            RmsProp::new(p, 0.01)
                .unwrap()
                .momentum(0.5)
                .unwrap()
                .centered(true),
        ),
        "adagrad" => Box::new(Adagrad::new(p, 0.1).unwrap()),
        // RAdam's rectification starts at step 6 (ρₜ > 5 with β₂ = 0.999): mid-run
        "radam_groups" => Box::new(
            RAdam::with_groups(vec![
                ParamGroup::new(
                    p[..2].to_vec(),
                    RAdamOptions {
                        lr: 0.01,
                        ..RAdamOptions::default()
                    },
                ),
                ParamGroup::new(
                    p[2..].to_vec(),
                    RAdamOptions {
                        lr: 0.02,
                        decoupled: true,
                        weight_decay: 0.1,
                        ..RAdamOptions::default()
                    },
                ),
            ])
            .unwrap(),
        ),
        "nadam" => Box::new(NAdam::new(p, 0.01).unwrap()),
        other => panic!("unknown optimizer {other}"),
    }
}

/// The batch of step `k`: the same in every process.
fn batch(k: usize) -> (Tensor<f32>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(100 + k as u64);
    let x: Vec<f32> = (0..16 * 6).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let labels = (0..16).map(|_| rng.gen_range(0..3)).collect();
    (Tensor::from_vec(x, &[16, 6]).unwrap(), labels)
}

fn train(
    net: &Sequential,
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler<LinearLr>,
    steps: std::ops::Range<usize>,
) {
    for k in steps {
        let (x, labels) = batch(k);
        let tape = Tape::new();
        let logits = net.forward(&tape.constant(x)).unwrap();
        let grads = logits
            .cross_entropy(&labels, Reduction::Mean)
            .unwrap()
            .backward()
            .unwrap();
        opt.step(&grads).unwrap();
        sched.step(opt).unwrap();
    }
}

fn warmup() -> LinearLr {
    LinearLr {
        start_factor: 0.5,
        end_factor: 1.0,
        total_iters: 8,
    }
}

fn bits(net: &Sequential) -> Vec<Vec<u32>> {
    net.parameters()
        .iter()
        .map(|p| p.value().data().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// The fresh process: a differently initialised model and a new optimizer, then the
/// saved model, optimizer state and schedule position, then the remaining steps.
fn child(dir: &Path, name: &str) {
    let net = net(99);
    let mut opt = optimizer(name, &net);
    checkpoint::load(&net, dir.join("model.safetensors")).unwrap();
    opt.load_state_dict(&OptimizerState::load(dir.join("optimizer.safetensors")).unwrap())
        .unwrap();
    let base: Vec<f64> = std::fs::read_to_string(dir.join("base_lrs"))
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let mut sched = Scheduler::resume(warmup(), base, SAVED_AT, &mut *opt).unwrap();
    train(&net, &mut *opt, &mut sched, SAVED_AT..STEPS);
    checkpoint::save(&net, dir.join("resumed.safetensors")).unwrap();
}

fn parent(name: &str) -> Result<(), String> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("chainrule-resume-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let whole = net(1);
    let mut opt = optimizer(name, &whole);
    let mut sched = Scheduler::new(warmup(), &mut *opt).unwrap();
    train(&whole, &mut *opt, &mut sched, 0..STEPS);

    let first = net(1);
    let mut opt = optimizer(name, &first);
    let mut sched = Scheduler::new(warmup(), &mut *opt).unwrap();
    train(&first, &mut *opt, &mut sched, 0..SAVED_AT);
    checkpoint::save(&first, dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    opt.state_dict()
        .save(dir.join("optimizer.safetensors"))
        .map_err(|e| e.to_string())?;
    let base: Vec<String> = sched.base_lrs().iter().map(|v| format!("{v:e}")).collect();
    std::fs::write(dir.join("base_lrs"), base.join(" ")).map_err(|e| e.to_string())?;

    let status = Command::new(std::env::current_exe().unwrap())
        .arg("--resume-child")
        .arg(&dir)
        .arg(name)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the child process failed: {status}"));
    }
    let resumed = net(7);
    checkpoint::load(&resumed, dir.join("resumed.safetensors")).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).ok();
    let (want, got) = (bits(&whole), bits(&resumed));
    if want != got {
        let differing = want
            .iter()
            .flatten()
            .zip(got.iter().flatten())
            .filter(|(a, b)| a != b)
            .count();
        return Err(format!(
            "{differing} parameter values differ from the uninterrupted run"
        ));
    }
    // and the interruption mattered: 5 steps alone end elsewhere
    if bits(&first) == want {
        return Err("5 steps already equal 10 steps: the test would prove nothing".into());
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--resume-child") {
        child(Path::new(&args[i + 1]), &args[i + 2]);
        return;
    }
    let mut failed = 0;
    for name in OPTIMIZERS {
        match parent(name) {
            Ok(()) => println!("resume {name}: 5 + 5 steps equal 10 steps bitwise"),
            Err(e) => {
                failed += 1;
                println!("resume {name}: FAILED: {e}");
            }
        }
    }
    println!(
        "resume: {} passed, {failed} failed",
        OPTIMIZERS.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
