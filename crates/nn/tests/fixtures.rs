//! Runs every optimizer trajectory of `optim.json` and `optim2.json`, every clipping
//! case of `clip.json`, every schedule of `schedule.json` and every initializer case of
//! `init.json` (PyTorch 2.15) from `FIXTURES_DIR` (default: the project's copy).

use chainrule_autograd::{Gradients, Param, Tape, Tensor};
use chainrule_nn::init::{self, FanMode, Nonlinearity};
use chainrule_nn::optim::{
    clip_grad_norm, clip_grad_value, AdagradOptions, AdagradRule, AdamOptions, AdamRule,
    CosineAnnealingLr, CosineAnnealingWarmRestarts, ExponentialLr, LinearLr, LrSchedule,
    MultiStepLr, NAdamOptions, NAdamRule, OneCycleLr, Optimizer, ParamGroup, PlateauMode,
    PlateauOptions, RAdamOptions, RAdamRule, ReduceLrOnPlateau, RmsPropOptions, RmsPropRule,
    RuleOptimizer, Scheduler, SequentialLr, Sgd, SgdOptions, SgdRule, UpdateRule,
};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::Value;

fn fixtures_dir() -> std::path::PathBuf {
    std::env::var_os("FIXTURES_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"))
}

fn read(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn tensor(v: &Value) -> Tensor<f64> {
    let dims: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    Tensor::from_vec(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect(),
        &dims,
    )
    .unwrap()
}

/// Gradients for `params` with the given values, made through a real backward pass:
/// `loss = Σ p·g` has gradient `g` with respect to `p`.
fn gradients(params: &[Param<f64>], grads: &[Tensor<f64>]) -> Gradients<f64> {
    let tape = Tape::new();
    let mut loss = tape.constant(Tensor::scalar(0.0));
    for (p, g) in params.iter().zip(grads) {
        let term = (&tape.param(p) * &tape.constant(g.clone())).unwrap().sum();
        loss = (&loss + &term).unwrap();
    }
    loss.backward().unwrap()
}

/// The hyperparameters of one group: the case's `hyper` overridden by the group's own
/// keys (PyTorch's rule for `param_groups`).
fn merged(case: &Value, group: Option<&Value>) -> Value {
    let mut h = case["hyper"].clone();
    if let Some(Value::Object(g)) = group {
        for (k, v) in g.iter().filter(|(k, _)| *k != "params") {
            h[k] = v.clone();
        }
    }
    h
}

fn betas(h: &Value, default: (f64, f64)) -> (f64, f64) {
    h["betas"]
        .as_array()
        .map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
        .unwrap_or(default)
}

/// Builds the case's optimizer with one group per `groups` entry (or one group).
fn build<R: UpdateRule + 'static>(
    case: &Value,
    params: &[Param<f64>],
    options: impl Fn(&Value) -> R::Options,
) -> Result<Box<dyn Optimizer<f64>>, String> {
    let groups = match case["groups"].as_array() {
        Some(groups) => groups
            .iter()
            .map(|g| {
                let members = g["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| params[i.as_u64().unwrap() as usize].clone());
                ParamGroup::new(members, options(&merged(case, Some(g))))
            })
            .collect(),
        None => vec![ParamGroup::new(
            params.to_vec(),
            options(&merged(case, None)),
        )],
    };
    Ok(Box::new(
        RuleOptimizer::<f64, R>::with_groups(groups).map_err(|e| e.to_string())?,
    ))
}

fn optimizer(case: &Value, params: &[Param<f64>]) -> Result<Box<dyn Optimizer<f64>>, String> {
    let f = |h: &Value, k: &str, default: f64| h[k].as_f64().unwrap_or(default);
    let b = |h: &Value, k: &str| h[k].as_bool().unwrap_or(false);
    match case["optimizer"].as_str().unwrap() {
        "sgd" => build::<SgdRule>(case, params, |h| SgdOptions {
            lr: f(h, "lr", 1e-3),
            momentum: f(h, "momentum", 0.0),
            dampening: f(h, "dampening", 0.0),
            nesterov: b(h, "nesterov"),
            weight_decay: f(h, "weight_decay", 0.0),
        }),
        name @ ("adam" | "adamw") => build::<AdamRule>(case, params, |h| AdamOptions {
            lr: f(h, "lr", 1e-3),
            betas: betas(h, (0.9, 0.999)),
            eps: f(h, "eps", 1e-8),
            weight_decay: f(h, "weight_decay", if name == "adamw" { 1e-2 } else { 0.0 }),
            decoupled: name == "adamw",
            amsgrad: b(h, "amsgrad"),
        }),
        "rmsprop" => build::<RmsPropRule>(case, params, |h| RmsPropOptions {
            lr: f(h, "lr", 1e-2),
            alpha: f(h, "alpha", 0.99),
            eps: f(h, "eps", 1e-8),
            weight_decay: f(h, "weight_decay", 0.0),
            momentum: f(h, "momentum", 0.0),
            centered: b(h, "centered"),
        }),
        "adagrad" => build::<AdagradRule>(case, params, |h| AdagradOptions {
            lr: f(h, "lr", 1e-2),
            lr_decay: f(h, "lr_decay", 0.0),
            weight_decay: f(h, "weight_decay", 0.0),
            initial_accumulator_value: f(h, "initial_accumulator_value", 0.0),
            eps: f(h, "eps", 1e-10),
        }),
        "nadam" => build::<NAdamRule>(case, params, |h| NAdamOptions {
            lr: f(h, "lr", 2e-3),
            betas: betas(h, (0.9, 0.999)),
            eps: f(h, "eps", 1e-8),
            weight_decay: f(h, "weight_decay", 0.0),
            momentum_decay: f(h, "momentum_decay", 4e-3),
            decoupled: b(h, "decoupled_weight_decay"),
        }),
        "radam" => build::<RAdamRule>(case, params, |h| RAdamOptions {
            lr: f(h, "lr", 1e-3),
            betas: betas(h, (0.9, 0.999)),
            eps: f(h, "eps", 1e-8),
            weight_decay: f(h, "weight_decay", 0.0),
            decoupled: b(h, "decoupled_weight_decay"),
        }),
        other => Err(format!("unknown optimizer {other}")),
    }
}

fn run_optim_case(case: &Value) -> Result<(), String> {
    let params: Vec<Param<f64>> = case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Param::new(tensor(p)))
        .collect();
    let mut opt = optimizer(case, &params)?;
    for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let grads: Vec<Tensor<f64>> = step["grads"]
            .as_array()
            .unwrap()
            .iter()
            .map(tensor)
            .collect();
        opt.step(&gradients(&params, &grads))
            .map_err(|e| e.to_string())?;
        for (k, (p, want)) in params
            .iter()
            .zip(step["params_after"].as_array().unwrap())
            .enumerate()
        {
            let want = tensor(want);
            for (i, (g, w)) in p.value().data().iter().zip(want.data()).enumerate() {
                if (g - w).abs().is_nan() || (g - w).abs() > 1e-9 + 1e-7 * w.abs() {
                    return Err(format!(
                        "step {s} param {k} element {i}: got {g:e}, want {w:e}"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn run_clip_case(case: &Value) -> Result<(), String> {
    let grads: Vec<Tensor<f64>> = case["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    let params: Vec<Param<f64>> = grads.iter().map(|g| Param::new(g.zeros_like())).collect();
    let mut got = gradients(&params, &grads);
    let e = |e: chainrule_nn::Error| e.to_string();
    match case["kind"].as_str().unwrap() {
        "norm" => {
            let p = match &case["norm_type"] {
                Value::String(s) if s == "inf" => f64::INFINITY,
                v => v.as_f64().unwrap(),
            };
            let total = clip_grad_norm(&mut got, &params, case["max_norm"].as_f64().unwrap(), p)
                .map_err(e)?;
            let want = case["total_norm"].as_f64().unwrap();
            if (total - want).abs() > 1e-9 + 1e-7 * want.abs() {
                return Err(format!("total norm {total:e}, want {want:e}"));
            }
        }
        "value" => {
            clip_grad_value(&mut got, &params, case["clip_value"].as_f64().unwrap()).map_err(e)?
        }
        other => return Err(format!("unknown clip kind {other}")),
    }
    for (k, (p, want)) in params
        .iter()
        .zip(case["clipped"].as_array().unwrap())
        .enumerate()
    {
        let want = tensor(want);
        let g = got.get(p).ok_or(format!("gradient {k} missing"))?;
        for (i, (g, w)) in g.data().iter().zip(want.data()).enumerate() {
            if (g - w).abs().is_nan() || (g - w).abs() > 1e-9 + 1e-7 * w.abs() {
                return Err(format!("gradient {k} element {i}: got {g:e}, want {w:e}"));
            }
        }
    }
    Ok(())
}

fn schedule(name: &str, h: &Value) -> Result<Box<dyn LrSchedule>, String> {
    let f = |k: &str| h[k].as_f64().ok_or(format!("{name}: no {k}"));
    let u = |k: &str| {
        h[k].as_u64()
            .map(|v| v as usize)
            .ok_or(format!("{name}: no {k}"))
    };
    let or = |k: &str, d: f64| h[k].as_f64().unwrap_or(d);
    Ok(match name {
        "StepLR" => Box::new(chainrule_nn::optim::StepLr {
            step_size: u("step_size")?,
            gamma: or("gamma", 0.1),
        }),
        "MultiStepLR" => Box::new(MultiStepLr {
            milestones: h["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect(),
            gamma: or("gamma", 0.1),
        }),
        "ExponentialLR" => Box::new(ExponentialLr { gamma: f("gamma")? }),
        "CosineAnnealingLR" => Box::new(CosineAnnealingLr {
            t_max: u("T_max")?,
            eta_min: or("eta_min", 0.0),
        }),
        "LinearLR" => Box::new(LinearLr {
            start_factor: or("start_factor", 1.0 / 3.0),
            end_factor: or("end_factor", 1.0),
            total_iters: h["total_iters"].as_u64().unwrap_or(5) as usize,
        }),
        "OneCycleLR" => Box::new(OneCycleLr::new(f("max_lr")?, u("total_steps")?)),
        "CosineAnnealingWarmRestarts" => Box::new(CosineAnnealingWarmRestarts {
            t_0: u("T_0")?,
            t_mult: h["T_mult"].as_u64().unwrap_or(1) as usize,
            eta_min: or("eta_min", 0.0),
        }),
        "SequentialLR" => Box::new(SequentialLr {
            schedules: h["schedulers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| schedule(s[0].as_str().unwrap(), &s[1]))
                .collect::<Result<_, _>>()?,
            milestones: h["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect(),
        }),
        other => return Err(format!("unknown schedule {other}")),
    })
}

fn run_schedule_case(case: &Value) -> Result<(), String> {
    let name = case["scheduler"].as_str().unwrap();
    let h = &case["hyper"];
    let w = Param::new(Tensor::<f64>::zeros(&[1]).unwrap());
    let mut opt = Sgd::new(vec![w.clone()], case["base_lr"].as_f64().unwrap())
        .and_then(|o| o.momentum(case["momentum"].as_f64().unwrap()))
        .map_err(|e| e.to_string())?;
    let want_lrs = floats(&case["lrs"]);
    let want_momenta = case.get("momenta").map(floats);
    let grads = gradients(std::slice::from_ref(&w), &[Tensor::ones(&[1]).unwrap()]);
    let check = |k: usize, what: &str, got: f64, want: f64| {
        if (got - want).abs().is_nan() || (got - want).abs() > 1e-12 + 1e-9 * want.abs() {
            return Err(format!("step {k}: {what} {got:e}, want {want:e}"));
        }
        Ok(())
    };
    if name == "ReduceLROnPlateau" {
        let mut plateau = ReduceLrOnPlateau::new(PlateauOptions {
            mode: if h["mode"] == "max" {
                PlateauMode::Max
            } else {
                PlateauMode::Min
            },
            factor: h["factor"].as_f64().unwrap_or(0.1),
            patience: h["patience"].as_u64().unwrap_or(10) as usize,
            threshold: h["threshold"].as_f64().unwrap_or(1e-4),
            ..PlateauOptions::default()
        })
        .map_err(|e| e.to_string())?;
        for (k, (metric, want)) in floats(&case["metrics"])
            .into_iter()
            .zip(want_lrs)
            .enumerate()
        {
            opt.step(&grads).map_err(|e| e.to_string())?;
            plateau.step(metric, &mut opt);
            check(k, "lr", opt.lr(), want)?;
        }
        return Ok(());
    }
    let mut sched = Scheduler::new(schedule(name, h)?, &mut opt).map_err(|e| e.to_string())?;
    for (k, want) in want_lrs.into_iter().enumerate() {
        opt.step(&grads).map_err(|e| e.to_string())?;
        sched.step(&mut opt).map_err(|e| e.to_string())?;
        check(k, "lr", opt.lr(), want)?;
        if let Some(m) = &want_momenta {
            check(k, "momentum", opt.momenta()[0].unwrap(), m[k])?;
        }
    }
    Ok(())
}

fn close(name: &str, got: f64, want: f64) -> Result<(), String> {
    if (got - want).abs() > 1e-12 {
        return Err(format!("{name}: got {got:e}, want {want:e}"));
    }
    Ok(())
}

/// Mean and standard deviation of samples within a few standard errors of the target.
fn check_samples(t: &Tensor<f64>, std: f64, bound: Option<f64>) -> Result<(), String> {
    let n = t.numel() as f64;
    let mean = t.data().iter().sum::<f64>() / n;
    let var = t.data().iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // standard error of the mean is std/√n; of the std about std/√(2n)
    if mean.abs() > 5.0 * std / n.sqrt() {
        return Err(format!(
            "sample mean {mean:e} too far from 0 (std {std:e}, n {n})"
        ));
    }
    // uniform: Var(s²) = 0.8σ⁴/n, so SE(s) = σ·√(0.2/n); normal: SE(s) = σ/√(2n)
    let std_err = if bound.is_some() {
        std * (0.2 / n).sqrt()
    } else {
        std / (2.0 * n).sqrt()
    };
    if (var.sqrt() - std).abs() > 5.0 * std_err {
        return Err(format!("sample std {:e}, want {std:e}", var.sqrt()));
    }
    if let Some(b) = bound {
        if let Some(v) = t.data().iter().find(|v| v.abs() > b) {
            return Err(format!("sample {v} outside ±{b}"));
        }
    }
    Ok(())
}

fn run_init_case(case: &Value, rng: &mut StdRng) -> Result<(), String> {
    let dims: Vec<usize> = case["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let (fan_in, fan_out) = init::fans(&dims).map_err(|e| e.to_string())?;
    close("fan_in", fan_in as f64, case["fan_in"].as_f64().unwrap())?;
    close("fan_out", fan_out as f64, case["fan_out"].as_f64().unwrap())?;
    let e = |e: chainrule_nn::Error| e.to_string();
    let kaiming = || -> Result<(FanMode, Nonlinearity), String> {
        let mode = if case["mode"] == "fan_in" {
            FanMode::FanIn
        } else {
            FanMode::FanOut
        };
        let nl =
            Nonlinearity::from_name(case["nonlinearity"].as_str().unwrap(), case["a"].as_f64())
                .map_err(e)?;
        Ok((mode, nl))
    };
    let (std, sample, bound) = match case["init"].as_str().unwrap() {
        "xavier_uniform" => {
            let gain = case["gain"].as_f64().unwrap();
            let std = init::xavier_std(&dims, gain).map_err(e)?;
            close("bound", 3f64.sqrt() * std, case["bound"].as_f64().unwrap())?;
            (
                std,
                init::xavier_uniform(&dims, gain, rng).map_err(e)?,
                Some(3f64.sqrt() * std),
            )
        }
        "xavier_normal" => {
            let gain = case["gain"].as_f64().unwrap();
            let std = init::xavier_std(&dims, gain).map_err(e)?;
            close("std", std, case["std"].as_f64().unwrap())?;
            (std, init::xavier_normal(&dims, gain, rng).map_err(e)?, None)
        }
        "kaiming_uniform" => {
            let (mode, nl) = kaiming()?;
            let std = init::kaiming_std(&dims, mode, nl).map_err(e)?;
            close("bound", 3f64.sqrt() * std, case["bound"].as_f64().unwrap())?;
            (
                std,
                init::kaiming_uniform(&dims, mode, nl, rng).map_err(e)?,
                Some(3f64.sqrt() * std),
            )
        }
        "kaiming_normal" => {
            let (mode, nl) = kaiming()?;
            let std = init::kaiming_std(&dims, mode, nl).map_err(e)?;
            close("std", std, case["std"].as_f64().unwrap())?;
            (
                std,
                init::kaiming_normal(&dims, mode, nl, rng).map_err(e)?,
                None,
            )
        }
        other => return Err(format!("unknown initializer {other}")),
    };
    if sample.dims() != dims.as_slice() {
        return Err(format!("sample shape {:?}", sample.dims()));
    }
    check_samples(&sample, std, bound)
}

#[test]
fn fixtures_optimizers_and_initializers_match_pytorch() {
    let (mut passed, mut failed) = (0, 0);
    let mut tally = |name: &str, r: Result<(), String>| match r {
        Ok(()) => passed += 1,
        Err(m) => {
            failed += 1;
            println!("FAILED {name}: {m}");
        }
    };
    for file in ["optim.json", "optim2.json"] {
        for case in read(file)["cases"].as_array().unwrap() {
            tally(case["name"].as_str().unwrap(), run_optim_case(case));
        }
    }
    for (i, case) in read("clip.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = format!("clip[{i}] {} {}", case["kind"], case["norm_type"]);
        tally(&name, run_clip_case(case));
    }
    for case in read("schedule.json")["cases"].as_array().unwrap() {
        tally(case["name"].as_str().unwrap(), run_schedule_case(case));
    }
    let mut rng = StdRng::seed_from_u64(2015);
    for (i, case) in read("init.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = format!("init[{i}] {} {}", case["init"], case["shape"]);
        tally(&name, run_init_case(case, &mut rng));
    }
    println!("fixtures f64: {passed} passed, {failed} failed");
    assert!(passed > 0, "no cases found in {}", fixtures_dir().display());
    assert_eq!(failed, 0);
}

#[test]
fn calculate_gain_matches_pytorch() {
    for g in read("init.json")["gains"].as_array().unwrap() {
        let nl = Nonlinearity::from_name(g["nonlinearity"].as_str().unwrap(), g["param"].as_f64())
            .unwrap();
        let got = init::calculate_gain(nl);
        let want = g["gain"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{nl:?}: got {got}, want {want}");
    }
}
