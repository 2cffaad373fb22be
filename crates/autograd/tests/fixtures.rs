//! Runs every case of the PyTorch fixtures (forward values, vector-Jacobian products and
//! Hessian-vector products computed by PyTorch 2.15 in float64; format version 2) in
//! f64 and again in f32, with the tolerances of `fixtures/README.md`. `FIXTURES_DIR`
//! overrides the directory. Ops (or attributes) the engine does not have yet are
//! listed on a `not yet supported` line, never counted as passed.

mod common;

use chainrule_autograd::{
    grad, AttentionOptions, AvgPool2dParams, BatchNormOptions, Conv2dParams, ConvTranspose2dParams,
    Element, GradOptions, IntTensor, InterpolateMode, InterpolateSize, MaxPool2dParams, PadMode,
    Reduction, RnnWeights, RunningStats, Tape, Tensor, Var,
};
use serde_json::Value;

/// Files that belong to the nn crate's fixture test.
const NOT_ENGINE: [&str; 5] = [
    "optim.json",
    "optim2.json",
    "init.json",
    "clip.json",
    "schedule.json",
];

/// The attributes each op of the engine implements; `None` for an op it lacks.
fn implemented_attrs(op: &str) -> Option<&'static [&'static str]> {
    Some(match op {
        "neg" | "exp" | "log" | "sqrt" | "relu" | "sigmoid" | "tanh" | "abs" | "square" | "add"
        | "sub" | "mul" | "div" | "maximum" | "matmul" | "linear" => &[],
        "silu" | "log_sigmoid" | "minimum" | "where" => &[],
        "gather" | "index_select" | "scatter_add" | "stack" | "squeeze" | "unsqueeze" => &["dim"],
        "embedding" => &["padding_idx"],
        "argmax" => &["dim", "keepdim"],
        "var" | "std" => &["dims", "correction", "keepdim"],
        "norm" => &["p", "dims", "keepdim"],
        "cumsum" => &["dim"],
        "batch_norm" => &["training", "momentum", "eps"],
        "conv_transpose2d" => &["stride", "padding", "output_padding", "dilation", "groups"],
        "layer_norm" => &["normalized_shape", "eps"],
        "group_norm" => &["num_groups", "eps"],
        "pad" => &["pad", "mode", "value"],
        "interpolate" => &["size", "scale_factor", "mode", "align_corners"],
        "scaled_dot_product_attention" => &["is_causal", "scale"],
        "lstm" | "gru" => &["hidden_size"],
        "gelu" => &["approximate"],
        "softplus" => &["beta", "threshold"],
        "elu" => &["alpha"],
        "clamp" => &["min", "max"],
        "leaky_relu" => &["negative_slope"],
        "powf" => &["exponent"],
        "sum" | "mean" => &["dims", "keepdim"],
        "max" | "logsumexp" => &["dim", "keepdim"],
        "reshape" | "broadcast_to" => &["shape"],
        "transpose" => &["dim0", "dim1"],
        "permute" => &["dims"],
        "concat" | "softmax" | "log_softmax" => &["dim"],
        "narrow" => &["dim", "start", "length"],
        "flatten" => &["start_dim"],
        "conv2d" => &["stride", "padding", "dilation", "groups"],
        "max_pool2d" => &["kernel_size", "stride", "padding", "dilation", "ceil_mode"],
        "avg_pool2d" => &[
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
        ],
        "adaptive_avg_pool2d" => &["output_size"],
        "nll_loss" | "mse_loss" | "bce_with_logits" | "l1_loss" | "binary_cross_entropy" => {
            &["reduction"]
        }
        "cross_entropy" => &["reduction", "label_smoothing", "ignore_index"],
        "smooth_l1_loss" => &["reduction", "beta"],
        "huber_loss" => &["reduction", "delta"],
        "kl_div" => &["reduction", "log_target"],
        "cosine_similarity" => &["dim", "eps"],
        _ => return None,
    })
}

/// Why the engine cannot run this case yet (an op or a non-default attribute it
/// lacks), or `None` when it can.
fn unsupported(case: &Value) -> Option<String> {
    let op = case["op"].as_str().unwrap_or("?");
    let Some(known) = implemented_attrs(op) else {
        return Some(op.to_string());
    };
    let at_default = |_: &str, v: &Value| v.is_null();
    let extra: Vec<&str> = case["attrs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !at_default(k, v))
        .map(|(k, _)| k.as_str())
        .collect();
    (!extra.is_empty()).then(|| format!("{op}({})", extra.join(", ")))
}

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
        Some("batchmean") => Ok(Reduction::BatchMean),
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

/// Applies the case's op to its inputs (float ones in `x`, integer ones in `ints`).
fn apply<T: Element>(
    op: &str,
    a: &Value,
    x: &[Option<Var<T>>],
    ints: &[Option<IntTensor>],
    state: &mut Option<RunningStats<T>>,
) -> Result<Var<T>, String> {
    let v = |i: usize| {
        x[i].as_ref()
            .ok_or_else(|| format!("input {i} is not a float tensor"))
    };
    let int = |i: usize| {
        ints[i]
            .as_ref()
            .ok_or_else(|| format!("input {i} is not an integer tensor"))
    };
    // class labels: the one integer input
    let labels: Vec<usize> = ints
        .iter()
        .flatten()
        .flat_map(|t| t.data().iter().map(|&l| l as usize))
        .collect();
    let labels = &labels[..];
    let dim_or_none = |k: &str| a[k].as_i64().map(|d| d as isize);
    let opt = |i: usize| x.get(i).and_then(Option::as_ref);
    let usizes =
        |k: &str| -> Vec<usize> { isize_list(&a[k]).into_iter().map(|d| d as usize).collect() };
    // a state [1, n, h] of the one-layer recurrent fixtures as [n, h]
    let state0 = |i: usize| -> Result<Var<T>, String> {
        let s = v(i)?;
        s.reshape(&[s.dims()[1] as isize, s.dims()[2] as isize])
            .map_err(|e| e.to_string())
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
        "minimum" => v(0)?.minimum(v(1)?).map_err(e)?,
        "gelu" => match a["approximate"].as_str() {
            Some("none") => v(0)?.gelu(),
            Some("tanh") => v(0)?.gelu_tanh(),
            other => return Err(format!("gelu approximate {other:?}")),
        },
        "silu" => v(0)?.silu(),
        "log_sigmoid" => v(0)?.log_sigmoid(),
        "softplus" => v(0)?.softplus(f("beta")?, f("threshold")?),
        "elu" => v(0)?.elu(f("alpha")?),
        "clamp" => v(0)?.clamp(
            a["min"].as_f64().unwrap_or(f64::NEG_INFINITY),
            a["max"].as_f64().unwrap_or(f64::INFINITY),
        ),
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
        "cross_entropy" => {
            let opts = chainrule_autograd::CrossEntropyOptions {
                reduction: reduction(a)?,
                label_smoothing: a["label_smoothing"].as_f64().unwrap_or(0.0),
                ignore_index: Some(a["ignore_index"].as_i64().unwrap_or(-100)),
            };
            v(0)?.cross_entropy_with(int(1)?, opts).map_err(e)?
        }
        "l1_loss" => v(0)?.l1_loss(v(1)?, reduction(a)?).map_err(e)?,
        "smooth_l1_loss" => v(0)?
            .smooth_l1_loss(v(1)?, reduction(a)?, f("beta")?)
            .map_err(e)?,
        "huber_loss" => v(0)?
            .huber_loss(v(1)?, reduction(a)?, f("delta")?)
            .map_err(e)?,
        "binary_cross_entropy" => v(0)?
            .binary_cross_entropy(v(1)?, reduction(a)?)
            .map_err(e)?,
        "kl_div" => v(0)?
            .kl_div(v(1)?, reduction(a)?, b("log_target")?)
            .map_err(e)?,
        "cosine_similarity" => v(0)?
            .cosine_similarity(v(1)?, i("dim")?, f("eps")?)
            .map_err(e)?,
        "nll_loss" => v(0)?.nll_loss(labels, reduction(a)?).map_err(e)?,
        "mse_loss" => v(0)?.mse_loss(v(1)?, reduction(a)?).map_err(e)?,
        "bce_with_logits" => v(0)?.bce_with_logits(v(1)?, reduction(a)?).map_err(e)?,
        "where" => Var::where_cond(int(0)?, v(1)?, v(2)?).map_err(e)?,
        "gather" => v(0)?.gather(i("dim")?, int(1)?).map_err(e)?,
        "index_select" => v(0)?.index_select(i("dim")?, int(1)?).map_err(e)?,
        "scatter_add" => v(0)?.scatter_add(i("dim")?, int(1)?, v(2)?).map_err(e)?,
        "embedding" => {
            let pad = a["padding_idx"].as_i64().map(|p| p as usize);
            v(1)?.embedding(int(0)?, pad).map_err(e)?
        }
        "stack" => {
            let parts: Vec<&Var<T>> = x.iter().flatten().collect();
            Var::stack(&parts, i("dim")?).map_err(e)?
        }
        "squeeze" => v(0)?.squeeze(dim_or_none("dim")).map_err(e)?,
        "var" | "std" | "norm" => {
            let dims = (!a["dims"].is_null()).then(|| isize_list(&a["dims"]));
            let (dims, keep) = (dims.as_deref(), b("keepdim")?);
            match op {
                "var" => v(0)?.var(dims, i("correction")? as usize, keep),
                "std" => v(0)?.std(dims, i("correction")? as usize, keep),
                _ => v(0)?.norm(f("p")?, dims, keep),
            }
            .map_err(e)?
        }
        "cumsum" => v(0)?.cumsum(i("dim")?).map_err(e)?,
        "batch_norm" => {
            *state = Some(RunningStats {
                mean: v(1)?.value().clone(),
                var: v(2)?.value().clone(),
            });
            let opts = BatchNormOptions {
                training: b("training")?,
                momentum: f("momentum")?,
                eps: f("eps")?,
            };
            v(0)?
                .batch_norm(state.as_mut(), opt(3), opt(4), opts)
                .map_err(e)?
        }
        "conv_transpose2d" => {
            let p = ConvTranspose2dParams {
                stride: pair(a, "stride")?,
                padding: pair(a, "padding")?,
                output_padding: pair(a, "output_padding")?,
                dilation: pair(a, "dilation")?,
                groups: i("groups")? as usize,
            };
            v(0)?.conv_transpose2d(v(1)?, opt(2), p).map_err(e)?
        }
        "layer_norm" => v(0)?
            .layer_norm(&usizes("normalized_shape"), opt(1), opt(2), f("eps")?)
            .map_err(e)?,
        "group_norm" => v(0)?
            .group_norm(i("num_groups")? as usize, opt(1), opt(2), f("eps")?)
            .map_err(e)?,
        "pad" => {
            let mode = match a["mode"].as_str() {
                Some("constant") => PadMode::Constant,
                Some("reflect") => PadMode::Reflect,
                Some("replicate") => PadMode::Replicate,
                m => return Err(format!("pad mode {m:?}")),
            };
            v(0)?.pad(&usizes("pad"), mode, f("value")?).map_err(e)?
        }
        "interpolate" => {
            let size = if a["size"].is_null() {
                let s: Vec<f64> = a["scale_factor"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                InterpolateSize::Scale([s[0], s[1]])
            } else {
                let s = usizes("size");
                InterpolateSize::Size([s[0], s[1]])
            };
            let mode = match a["mode"].as_str() {
                Some("nearest") => InterpolateMode::Nearest,
                Some("bilinear") => InterpolateMode::Bilinear {
                    align_corners: b("align_corners")?,
                },
                m => return Err(format!("interpolate mode {m:?}")),
            };
            v(0)?.interpolate(size, mode).map_err(e)?
        }
        "scaled_dot_product_attention" => {
            let opts = AttentionOptions {
                is_causal: b("is_causal")?,
                scale: a["scale"].as_f64(),
                attn_mask: None,
            };
            v(0)?
                .scaled_dot_product_attention(v(1)?, v(2)?, &opts)
                .map_err(e)?
        }
        "lstm" => {
            let w = RnnWeights {
                w_ih: v(3)?,
                w_hh: v(4)?,
                b_ih: opt(5),
                b_hh: opt(6),
            };
            v(0)?.lstm(&state0(1)?, &state0(2)?, &w).map_err(e)?.0
        }
        "gru" => {
            let w = RnnWeights {
                w_ih: v(2)?,
                w_hh: v(3)?,
                b_ih: opt(4),
                b_hh: opt(5),
            };
            v(0)?.gru(&state0(1)?, &w).map_err(e)?.0
        }
        "unsqueeze" => v(0)?.unsqueeze(i("dim")?).map_err(e)?,
        other => return Err(format!("unknown op {other}")),
    })
}

/// Ops whose output is an integer tensor (no gradients): the output compared exactly.
fn integer_output<T: Element>(
    op: &str,
    a: &Value,
    x: &[Option<Var<T>>],
    want: &Value,
) -> Option<Result<(), String>> {
    let got = match op {
        "argmax" => {
            let (dim, keep) = (a["dim"].as_i64()? as isize, a["keepdim"].as_bool()?);
            x[0].as_ref()?.argmax(dim, keep).map_err(|e| e.to_string())
        }
        _ => return None,
    };
    Some(got.and_then(|got| {
        let want_data: Vec<i64> = want["data"]
            .as_array()
            .ok_or("no output data")?
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let want_dims: Vec<usize> = want["shape"]
            .as_array()
            .ok_or("no output shape")?
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        if got.dims() != want_dims || got.data() != want_data {
            return Err(format!(
                "output {got:?}, want {want_data:?} of shape {want_dims:?}"
            ));
        }
        Ok(())
    }))
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

/// What one case gave: the forward and first-order check, and the second-order check
/// when the case has `hvp`.
struct Outcome {
    first: Result<(), String>,
    hvp: Option<Result<(), String>>,
}

fn run_case<T: Element>(case: &Value, atol: f64, rtol: f64) -> Outcome {
    let tape = Tape::<T>::new();
    let inputs = match leaves::<T>(&tape, case) {
        Ok(i) => i,
        Err(m) => {
            return Outcome {
                first: Err(m),
                hvp: None,
            }
        }
    };
    let first = first_order::<T>(case, &inputs, atol, rtol);
    let has_hvp = case["hvp"]
        .as_array()
        .is_some_and(|h| h.iter().any(|v| !v.is_null()));
    let hvp = has_hvp.then(|| {
        let tape = Tape::<T>::new();
        second_order::<T>(case, &leaves::<T>(&tape, case)?, atol, rtol)
    });
    Outcome { first, hvp }
}

/// The case's inputs by position: float tensors as leaves, integer ones (labels,
/// indices, conditions) as integer tensors.
type Inputs<T> = (Vec<Option<Var<T>>>, Vec<Option<IntTensor>>);

fn leaves<T: Element>(tape: &Tape<T>, case: &Value) -> Result<Inputs<T>, String> {
    let mut inputs = Vec::new();
    let mut ints = Vec::new();
    for inp in case["inputs"].as_array().ok_or("no inputs")? {
        if inp["dtype"].as_str() == Some("i64") {
            let data = inp["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_i64().unwrap())
                .collect();
            let dims: Vec<usize> = inp["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            ints.push(Some(
                IntTensor::from_vec(data, &dims).map_err(|e| e.to_string())?,
            ));
            inputs.push(None);
        } else {
            ints.push(None);
            inputs.push(Some(tape.leaf(tensor::<T>(inp)?)));
        }
    }
    Ok((inputs, ints))
}

fn wide<T: Element>(t: &Tensor<T>) -> Vec<f64> {
    t.data().iter().map(|v| v.to_f64()).collect()
}

/// Compares a computed per-input list (gradients or hvps) with the case's `key` list.
fn compare_list<T: Element>(
    case: &Value,
    key: &str,
    inputs: &[Option<Var<T>>],
    got: impl Fn(usize, &Var<T>) -> Result<Tensor<T>, String>,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    for (k, want) in case[key]
        .as_array()
        .ok_or(format!("no {key}"))?
        .iter()
        .enumerate()
    {
        if want.is_null() {
            continue;
        }
        let var = inputs[k]
            .as_ref()
            .ok_or(format!("{key} for an integer input"))?;
        let want = tensor::<f64>(want)?;
        let got = got(k, var)?;
        if got.dims() != want.dims() {
            return Err(format!(
                "{key} {k} shape {:?}, want {:?}",
                got.dims(),
                want.dims()
            ));
        }
        close(&wide(&got), want.data(), atol, rtol).map_err(|m| format!("{key} {k} {m}"))?;
    }
    Ok(())
}

fn first_order<T: Element>(
    case: &Value,
    (inputs, ints): &Inputs<T>,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let op = case["op"].as_str().ok_or("no op")?;
    if let Some(r) = integer_output(op, &case["attrs"], inputs, &case["output"]) {
        return r;
    }
    let mut state = None;
    let y = apply::<T>(op, &case["attrs"], inputs, ints, &mut state)?;
    // batch norm's running statistics after its update
    if let (Some(want), Some(got)) = (case.get("state_after"), &state) {
        for (key, t) in [("running_mean", &got.mean), ("running_var", &got.var)] {
            let w = tensor::<f64>(&want[key])?;
            close(&wide(t), w.data(), atol, rtol).map_err(|m| format!("{key} {m}"))?;
        }
    }
    let want_y = tensor::<f64>(&case["output"])?;
    if y.dims() != want_y.dims() {
        return Err(format!(
            "output shape {:?}, want {:?}",
            y.dims(),
            want_y.dims()
        ));
    }
    close(&wide(y.value()), want_y.data(), atol, rtol).map_err(|m| format!("output {m}"))?;
    let grads = y
        .backward_with(&tensor::<T>(&case["grad_output"])?)
        .map_err(|e| e.to_string())?;
    let got = |_: usize, var: &Var<T>| {
        Ok(grads
            .wrt(var)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(var.dims()).unwrap()))
    };
    compare_list(case, "grads", inputs, got, atol, rtol)
}

/// `hvp[i] = ∂/∂inputs[i] Σ_j <grads[j], u_j>`, with the gradients recorded
/// (`create_graph`) and differentiated again, as the fixtures' README defines it.
fn second_order<T: Element>(
    case: &Value,
    (inputs, ints): &Inputs<T>,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let e = |e: chainrule_autograd::Error| e.to_string();
    let op = case["op"].as_str().ok_or("no op")?;
    let y = apply::<T>(op, &case["attrs"], inputs, ints, &mut None)?;
    let tape = y.tape().clone();
    let v = tape.constant(tensor::<T>(&case["grad_output"])?);
    let floats: Vec<&Var<T>> = inputs.iter().flatten().collect();
    let opts = GradOptions::create_graph().allow_unused(true);
    let grads = grad(&[&y], &floats, &[&v], opts).map_err(e)?;
    // Σ_j <grads[j], u_j> over the inputs that have a direction
    let mut total: Option<Var<T>> = None;
    let mut float_pos = 0;
    for (k, dir) in case["hvp_dirs"]
        .as_array()
        .ok_or("no hvp_dirs")?
        .iter()
        .enumerate()
    {
        if inputs[k].is_none() {
            continue;
        }
        let g = &grads[float_pos];
        float_pos += 1;
        if dir.is_null() {
            continue;
        }
        let u = tape.constant(tensor::<T>(dir)?);
        let term = g.mul(&u).map_err(e)?.sum();
        total = Some(match total {
            None => term,
            Some(t) => t.add(&term).map_err(e)?,
        });
    }
    let total = total.ok_or("no hvp directions")?;
    let hvps = if total.is_tracked() {
        grad(
            &[&total],
            &floats,
            &[],
            GradOptions::default().allow_unused(true),
        )
        .map_err(e)?
    } else {
        // the gradients do not depend on the inputs at all: every hvp is zero
        floats
            .iter()
            .map(|x| tape.constant(x.value().zeros_like()))
            .collect()
    };
    let position = |k: usize| inputs[..k].iter().flatten().count();
    let got = |k: usize, _: &Var<T>| Ok(hvps[position(k)].value().clone());
    compare_list(case, "hvp", inputs, got, atol, rtol)
}

/// Pass and fail counts of one kind of check.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, r: &Result<(), String>, label: &str, name: &str) {
        match r {
            Ok(()) => self.passed += 1,
            Err(m) => {
                self.failed += 1;
                println!("FAILED {label} {name}: {m}");
            }
        }
    }
}

/// Runs every case; returns the first-order and second-order tallies and the cases the
/// engine cannot run yet.
fn run_all<T: Element>(label: &str, atol: f64, rtol: f64) -> (Tally, Tally, Vec<String>) {
    let dir = common::fixtures_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !NOT_ENGINE.contains(&p.file_name().unwrap().to_str().unwrap()))
        .collect();
    files.sort();
    let (mut first, mut hvp, mut missing) = (Tally::default(), Tally::default(), Vec::new());
    for path in files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for case in doc["cases"].as_array().expect("cases") {
            if let Some(what) = unsupported(case) {
                if !missing.contains(&what) {
                    missing.push(what);
                }
                continue;
            }
            let name = case["name"].as_str().unwrap_or("?");
            let out = run_case::<T>(case, atol, rtol);
            first.add(&out.first, label, name);
            if let Some(h) = &out.hvp {
                hvp.add(h, &format!("hvp {label}"), name);
            }
        }
    }
    println!(
        "fixtures {label}: {} passed, {} failed",
        first.passed, first.failed
    );
    println!(
        "fixtures hvp {label}: {} passed, {} failed",
        hvp.passed, hvp.failed
    );
    assert!(
        first.passed + first.failed > 0,
        "no fixture cases found in {}",
        dir.display()
    );
    (first, hvp, missing)
}

#[test]
fn fixtures_match_pytorch_in_f64_and_f32() {
    let (first64, hvp64, mut missing) = run_all::<f64>("f64", 1e-9, 1e-7);
    let (first32, hvp32, _) = run_all::<f32>("f32", 1e-4, 1e-3);
    missing.sort_unstable();
    println!("not yet supported: [{}]", missing.join(", "));
    assert_eq!(
        (first64.failed, first32.failed, hvp64.failed, hvp32.failed),
        (0, 0, 0, 0),
        "fixture cases failed"
    );
    assert!(hvp64.passed > 0, "no second-order case ran");
}
