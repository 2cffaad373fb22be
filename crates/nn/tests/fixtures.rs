//! Runs every optimizer trajectory of `optim.json` and every initializer case of
//! `init.json` (PyTorch 2.15) from `FIXTURES_DIR` (default: the project's copy).

use chainrule_autograd::{Gradients, Param, Tape, Tensor};
use chainrule_nn::init::{self, FanMode, Nonlinearity};
use chainrule_nn::optim::{Adam, Optimizer, Sgd};
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

fn run_optim_case(case: &Value) -> Result<(), String> {
    let h = &case["hyper"];
    let f = |k: &str, default: f64| h[k].as_f64().unwrap_or(default);
    let params: Vec<Param<f64>> = case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Param::new(tensor(p)))
        .collect();
    let mut opt: Box<dyn Optimizer<f64>> = match case["optimizer"].as_str().unwrap() {
        "sgd" => Box::new(
            Sgd::new(params.clone(), f("lr", 1e-3))
                .and_then(|o| o.momentum(f("momentum", 0.0)))
                .and_then(|o| o.dampening(f("dampening", 0.0)))
                .and_then(|o| o.nesterov(h["nesterov"].as_bool().unwrap_or(false)))
                .and_then(|o| o.weight_decay(f("weight_decay", 0.0)))
                .map_err(|e| e.to_string())?,
        ),
        name @ ("adam" | "adamw") => {
            let betas = h["betas"]
                .as_array()
                .map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
                .unwrap_or((0.9, 0.999));
            let base = if name == "adam" {
                Adam::new(params.clone(), f("lr", 1e-3))
                    .and_then(|o| o.weight_decay(f("weight_decay", 0.0)))
            } else {
                Adam::adamw(params.clone(), f("lr", 1e-3), f("weight_decay", 1e-2))
            };
            Box::new(
                base.and_then(|o| o.betas(betas.0, betas.1))
                    .and_then(|o| o.eps(f("eps", 1e-8)))
                    .map_err(|e| e.to_string())?
                    .amsgrad(h["amsgrad"].as_bool().unwrap_or(false)),
            )
        }
        other => return Err(format!("unknown optimizer {other}")),
    };
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
    for case in read("optim.json")["cases"].as_array().unwrap() {
        tally(case["name"].as_str().unwrap(), run_optim_case(case));
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
