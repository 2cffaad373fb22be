//! NaN, ±inf, signed zeros, ties and zero-size tensors through the ops and their
//! gradients, against the values (or errors) PyTorch computed (`tests/data/make_special_values.py` writes
//! `tests/data/special_values.json`). NaN must match NaN, an infinity the same infinity,
//! and finite values agree to 1e-12 (f64) or 1e-5 (f32) relative.

use chainrule_autograd::{
    Conv2dParams, Element, MaxPool2dParams, Reduction, Result, Tape, Tensor, Var,
};
use serde_json::Value;

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().expect("a number or nan/inf/-inf"),
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(number).collect()
}

fn tensor<T: Element>(v: &Value) -> Tensor<T> {
    let dims: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = numbers(&v["data"]).into_iter().map(T::from_f64).collect();
    Tensor::from_vec(data, &dims).unwrap()
}

/// The op of a case applied to its inputs.
fn apply<T: Element>(op: &str, attrs: &Value, xs: &[Var<T>]) -> Result<Var<T>> {
    let dim = || attrs["dim"].as_i64().unwrap() as isize;
    let reduction = || match attrs["reduction"].as_str() {
        Some("sum") => Reduction::Sum,
        _ => Reduction::Mean,
    };
    let x = &xs[0];
    Ok(match op {
        "relu" => x.relu(),
        "abs" => x.abs(),
        "neg" => x.neg(),
        "exp" => x.exp(),
        "tanh" => x.tanh(),
        "sigmoid" => x.sigmoid(),
        "square" => x.square(),
        "log" => x.log(),
        "sqrt" => x.sqrt(),
        "leaky_relu" => x.leaky_relu(attrs["negative_slope"].as_f64().unwrap()),
        "powf" => x.powf(attrs["exponent"].as_f64().unwrap()),
        "maximum" => x.maximum(&xs[1])?,
        "minimum" => x.minimum(&xs[1])?,
        "erf" => x.erf(),
        "gelu" if attrs["approximate"] == "tanh" => x.gelu_tanh(),
        "gelu" => x.gelu(),
        "silu" => x.silu(),
        "log_sigmoid" => x.log_sigmoid(),
        "softplus" => x.softplus(1.0, 20.0),
        "elu" => x.elu(1.0),
        "clamp" => x.clamp(-1.0, 1.0),
        "norm" => x.norm(2.0, Some(&[1]), false)?,
        "cumsum" => x.cumsum(0)?,
        "add" => x.add(&xs[1])?,
        "matmul" => x.matmul(&xs[1])?,
        "max" => x.max(dim(), false)?,
        "logsumexp" => x.logsumexp(dim(), false)?,
        "softmax" => x.softmax(dim())?,
        "log_softmax" => x.log_softmax(dim())?,
        "sum" => x.sum(),
        "mean" => x.mean()?,
        "mean_dims" => {
            let dims: Vec<isize> = attrs["dims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap() as isize)
                .collect();
            x.mean_dims(&dims, false)?
        }
        "cross_entropy" => x.cross_entropy(&[], reduction())?,
        "mse_loss" => x.mse_loss(&xs[1], reduction())?,
        "conv2d" => x.conv2d(&xs[1], None, Conv2dParams::default())?,
        "max_pool2d" => x.max_pool2d(MaxPool2dParams::new([2, 2]))?,
        "concat" => Var::concat(&[x, &xs[1]], dim())?,
        other => panic!("special_values.json has an op this test does not know: {other}"),
    })
}

/// `None` when `got` matches `want` under the special-value rules.
fn mismatch(got: &[f64], want: &[f64], rtol: f64) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("{} values, want {}", got.len(), want.len()));
    }
    got.iter().zip(want).enumerate().find_map(|(i, (&g, &w))| {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            g.is_finite() && (g - w).abs() <= rtol * w.abs().max(1.0)
        };
        (!ok).then(|| format!("element {i}: got {g}, PyTorch {w}"))
    })
}

fn run_all<T: Element>(rtol: f64) -> Vec<String> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/special_values.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut failures = Vec::new();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 39, "the file holds {} cases", cases.len());
    for case in cases {
        let (op, attrs) = (case["op"].as_str().unwrap(), &case["attrs"]);
        let label = format!("{op} {attrs}");
        let tape = Tape::<T>::new();
        let xs: Vec<Var<T>> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| tape.leaf(tensor(v)))
            .collect();
        let y = match (apply(op, attrs, &xs), case.get("error")) {
            (Err(_), Some(_)) => continue, // PyTorch raises too
            (Ok(_), Some(e)) => {
                failures.push(format!(
                    "{label}: PyTorch raises ({e}), chainrule returned a value"
                ));
                continue;
            }
            (Err(e), None) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
            (Ok(y), None) => y,
        };
        let got: Vec<f64> = y.value().data().iter().map(|v| v.to_f64()).collect();
        if let Some(m) = mismatch(&got, &numbers(&case["output"]["data"]), rtol) {
            failures.push(format!("{label} forward: {m}"));
        }
        let seed: Vec<T> = numbers(&case["grad_out"])
            .into_iter()
            .map(T::from_f64)
            .collect();
        let grads = y
            .backward_with(&Tensor::from_vec(seed, y.dims()).unwrap())
            .unwrap();
        for (i, (x, want)) in xs.iter().zip(case["grads"].as_array().unwrap()).enumerate() {
            let got: Vec<f64> = grads
                .wrt(x)
                .expect("every input gets a gradient")
                .data()
                .iter()
                .map(|v| v.to_f64())
                .collect();
            if let Some(m) = mismatch(&got, &numbers(want), rtol) {
                failures.push(format!("{label} gradient of input {i}: {m}"));
            }
        }
    }
    failures
}

#[test]
fn special_values_match_pytorch_in_f64() {
    let failures = run_all::<f64>(1e-12);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn special_values_match_pytorch_in_f32() {
    let failures = run_all::<f32>(1e-5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
