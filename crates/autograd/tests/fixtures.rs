//! Runs every case of the PyTorch fixtures (forward values and vector-Jacobian products
//! computed by PyTorch 2.15 in float64) in f64 and again in f32, with the tolerances of
//! `fixtures/README.md`. `FIXTURES_DIR` overrides the directory.

mod common;

use chainrule_autograd::{
    AvgPool2dParams, Conv2dParams, Element, MaxPool2dParams, Reduction, Tape, Tensor, Var,
};
use serde_json::Value;

/// Files that belong to the nn crate's fixture test.
const NOT_ENGINE: [&str; 2] = ["optim.json", "init.json"];

fn tensor<T: Element>(v: &Value) -> Result<Tensor<T>, String> {
    let dims: Vec<usize> = v["shape"]
        .as_array()
        .ok_or("no shape")?
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<T> = v["data"]
        .as_array()
        .ok_or("no data")?
        .iter()
        .map(|x| T::from_f64(x.as_f64().unwrap()))
        .collect();
    Tensor::from_vec(data, &dims).map_err(|e| e.to_string())
}

fn pair(v: &Value, key: &str) -> Result<[usize; 2], String> {
    let a = v[key]
        .as_array()
        .ok_or_else(|| format!("attr {key} missing"))?;
    Ok([
        a[0].as_u64().unwrap() as usize,
        a[1].as_u64().unwrap() as usize,
    ])
}

fn reduction(v: &Value) -> Result<Reduction, String> {
    match v["reduction"].as_str() {
        Some("mean") => Ok(Reduction::Mean),
        Some("sum") => Ok(Reduction::Sum),
        Some("none") => Ok(Reduction::None),
        r => Err(format!("unknown reduction {r:?}")),
    }
}

fn isize_list(v: &Value) -> Vec<isize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_i64().unwrap() as isize)
        .collect()
}

/// Applies the case's op to its inputs.
fn apply<T: Element>(
    op: &str,
    a: &Value,
    x: &[Option<Var<T>>],
    labels: &[usize],
) -> Result<Var<T>, String> {
    let v = |i: usize| {
        x[i].as_ref()
            .ok_or_else(|| format!("input {i} is not a float tensor"))
    };
    let e = |e: chainrule_autograd::Error| e.to_string();
    let f = |k: &str| a[k].as_f64().ok_or_else(|| format!("attr {k} missing"));
    let i = |k: &str| {
        a[k].as_i64()
            .ok_or_else(|| format!("attr {k} missing"))
            .map(|v| v as isize)
    };
    let b = |k: &str| a[k].as_bool().ok_or_else(|| format!("attr {k} missing"));
    Ok(match op {
        "neg" => v(0)?.neg(),
        "exp" => v(0)?.exp(),
        "log" => v(0)?.log(),
        "sqrt" => v(0)?.sqrt(),
        "relu" => v(0)?.relu(),
        "sigmoid" => v(0)?.sigmoid(),
        "tanh" => v(0)?.tanh(),
        "abs" => v(0)?.abs(),
        "square" => v(0)?.square(),
        "leaky_relu" => v(0)?.leaky_relu(f("negative_slope")?),
        "powf" => v(0)?.powf(f("exponent")?),
        "add" => v(0)?.add(v(1)?).map_err(e)?,
        "sub" => v(0)?.sub(v(1)?).map_err(e)?,
        "mul" => v(0)?.mul(v(1)?).map_err(e)?,
        "div" => v(0)?.div(v(1)?).map_err(e)?,
        "maximum" => v(0)?.maximum(v(1)?).map_err(e)?,
        "sum" | "mean" => {
            let keep = b("keepdim")?;
            let mean = op == "mean";
            match &a["dims"] {
                Value::Null if !keep && !mean => v(0)?.sum(),
                Value::Null if !keep => v(0)?.mean().map_err(e)?,
                Value::Null => {
                    let all: Vec<isize> = (0..v(0)?.dims().len() as isize).collect();
                    if mean {
                        v(0)?.mean_dims(&all, true)
                    } else {
                        v(0)?.sum_dims(&all, true)
                    }
                    .map_err(e)?
                }
                dims if mean => v(0)?.mean_dims(&isize_list(dims), keep).map_err(e)?,
                dims => v(0)?.sum_dims(&isize_list(dims), keep).map_err(e)?,
            }
        }
        "max" => v(0)?.max(i("dim")?, b("keepdim")?).map_err(e)?,
        "logsumexp" => v(0)?.logsumexp(i("dim")?, b("keepdim")?).map_err(e)?,
        "matmul" => v(0)?.matmul(v(1)?).map_err(e)?,
        "linear" => v(0)?
            .linear(v(1)?, x.get(2).and_then(Option::as_ref))
            .map_err(e)?,
        "reshape" => v(0)?.reshape(&isize_list(&a["shape"])).map_err(e)?,
        "transpose" => v(0)?.transpose(i("dim0")?, i("dim1")?).map_err(e)?,
        "permute" => v(0)?.permute(&isize_list(&a["dims"])).map_err(e)?,
        "broadcast_to" => {
            let s: Vec<usize> = isize_list(&a["shape"])
                .into_iter()
                .map(|d| d as usize)
                .collect();
            v(0)?.broadcast_to(&s).map_err(e)?
        }
        "concat" => {
            let parts: Vec<&Var<T>> = x.iter().flatten().collect();
            Var::concat(&parts, i("dim")?).map_err(e)?
        }
        "narrow" => v(0)?
            .narrow(i("dim")?, i("start")? as usize, i("length")? as usize)
            .map_err(e)?,
        "flatten" => v(0)?.flatten(i("start_dim")?).map_err(e)?,
        "conv2d" => {
            let p = Conv2dParams {
                stride: pair(a, "stride")?,
                padding: pair(a, "padding")?,
                dilation: pair(a, "dilation")?,
                groups: i("groups")? as usize,
            };
            v(0)?
                .conv2d(v(1)?, x.get(2).and_then(Option::as_ref), p)
                .map_err(e)?
        }
        "max_pool2d" => {
            let p = MaxPool2dParams {
                kernel_size: pair(a, "kernel_size")?,
                stride: pair(a, "stride")?,
                padding: pair(a, "padding")?,
                dilation: pair(a, "dilation")?,
                ceil_mode: b("ceil_mode")?,
            };
            v(0)?.max_pool2d(p).map_err(e)?
        }
        "avg_pool2d" => {
            let p = AvgPool2dParams {
                kernel_size: pair(a, "kernel_size")?,
                stride: pair(a, "stride")?,
                padding: pair(a, "padding")?,
                ceil_mode: b("ceil_mode")?,
                count_include_pad: b("count_include_pad")?,
            };
            v(0)?.avg_pool2d(p).map_err(e)?
        }
        "adaptive_avg_pool2d" => v(0)?
            .adaptive_avg_pool2d(pair(a, "output_size")?)
            .map_err(e)?,
        "softmax" => v(0)?.softmax(i("dim")?).map_err(e)?,
        "log_softmax" => v(0)?.log_softmax(i("dim")?).map_err(e)?,
        "cross_entropy" => v(0)?.cross_entropy(labels, reduction(a)?).map_err(e)?,
        "nll_loss" => v(0)?.nll_loss(labels, reduction(a)?).map_err(e)?,
        "mse_loss" => v(0)?.mse_loss(v(1)?, reduction(a)?).map_err(e)?,
        "bce_with_logits" => v(0)?.bce_with_logits(v(1)?, reduction(a)?).map_err(e)?,
        other => return Err(format!("unknown op {other}")),
    })
}

fn close(got: &[f64], want: &[f64], atol: f64, rtol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} elements, want {}", got.len(), want.len()));
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs().is_nan() || (g - w).abs() > atol + rtol * w.abs() {
            return Err(format!("element {k}: got {g:e}, want {w:e}"));
        }
    }
    Ok(())
}

fn run_case<T: Element>(case: &Value, atol: f64, rtol: f64) -> Result<(), String> {
    let tape = Tape::<T>::new();
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for inp in case["inputs"].as_array().ok_or("no inputs")? {
        if inp["dtype"].as_str() == Some("i64") {
            labels = inp["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_i64().unwrap() as usize)
                .collect();
            inputs.push(None);
        } else {
            inputs.push(Some(tape.leaf(tensor::<T>(inp)?)));
        }
    }
    let op = case["op"].as_str().ok_or("no op")?;
    let y = apply::<T>(op, &case["attrs"], &inputs, &labels)?;
    let want_y = tensor::<f64>(&case["output"])?;
    if y.dims() != want_y.dims() {
        return Err(format!(
            "output shape {:?}, want {:?}",
            y.dims(),
            want_y.dims()
        ));
    }
    let wide = |t: &Tensor<T>| t.data().iter().map(|v| v.to_f64()).collect::<Vec<_>>();
    close(&wide(y.value()), want_y.data(), atol, rtol).map_err(|m| format!("output {m}"))?;
    let grads = y
        .backward_with(&tensor::<T>(&case["grad_output"])?)
        .map_err(|e| e.to_string())?;
    for (k, want) in case["grads"]
        .as_array()
        .ok_or("no grads")?
        .iter()
        .enumerate()
    {
        if want.is_null() {
            continue;
        }
        let var = inputs[k].as_ref().ok_or("gradient for an integer input")?;
        let want = tensor::<f64>(want)?;
        let got = grads
            .wrt(var)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(var.dims()).unwrap());
        if got.dims() != want.dims() {
            return Err(format!(
                "grad {k} shape {:?}, want {:?}",
                got.dims(),
                want.dims()
            ));
        }
        close(&wide(&got), want.data(), atol, rtol).map_err(|m| format!("grad {k} {m}"))?;
    }
    Ok(())
}

fn run_all<T: Element>(label: &str, atol: f64, rtol: f64) -> usize {
    let dir = common::fixtures_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !NOT_ENGINE.contains(&p.file_name().unwrap().to_str().unwrap()))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for path in files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for case in doc["cases"].as_array().expect("cases") {
            match run_case::<T>(case, atol, rtol) {
                Ok(()) => passed += 1,
                Err(m) => {
                    failed += 1;
                    println!(
                        "FAILED {label} {}: {m}",
                        case["name"].as_str().unwrap_or("?")
                    );
                }
            }
        }
    }
    println!("fixtures {label}: {passed} passed, {failed} failed");
    assert!(
        passed + failed > 0,
        "no fixture cases found in {}",
        dir.display()
    );
    failed
}

#[test]
fn fixtures_match_pytorch_in_f64_and_f32() {
    let failed64 = run_all::<f64>("f64", 1e-9, 1e-7);
    let failed32 = run_all::<f32>("f32", 1e-4, 1e-3);
    assert_eq!((failed64, failed32), (0, 0), "fixture cases failed");
}
