//! TransformerEncoderLayer, ConvTranspose2d and Upsample against PyTorch 2.15 (f64):
//! the same parameter names in the same order, and the same outputs for parameters set
//! by a formula (`tests/data/make_more_layers.py` writes `more_layers.json`). Plus
//! ModuleList naming and train/eval reaching boxed modules.

use chainrule_autograd::{ConvTranspose2dParams, InterpolateMode, InterpolateSize, Tape, Tensor};
use chainrule_nn::layers::{
    ConvTranspose2d, Dropout, FeedForwardActivation, Linear, ModuleList, TransformerConfig,
    TransformerEncoderLayer, Upsample,
};
use chainrule_nn::{Module, ModuleState};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/more_layers.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect()
}

/// The script's formula, in PyTorch's parameter order; returns the names.
fn fill(m: &dyn ModuleState<f64>) -> Vec<String> {
    m.named_parameters()
        .into_iter()
        .enumerate()
        .map(|(k, (name, p))| {
            let v = (0..p.numel())
                .map(|i| ((i as f64) * 0.37 + k as f64).sin() * 0.5)
                .collect();
            p.set(Tensor::from_vec(v, &p.dims()).unwrap());
            name
        })
        .collect()
}

fn wave(dims: &[usize]) -> Tensor<f64> {
    let n = dims.iter().product::<usize>();
    Tensor::from_vec((0..n).map(|i| (i as f64 * 0.3).sin()).collect(), dims).unwrap()
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-12,
            "{what} element {i}: chainrule {g}, PyTorch {w}"
        );
    }
}

#[test]
fn transformer_encoder_layers_match_pytorch() {
    let mut seen = 0;
    for case in cases().iter().filter(|c| c["kind"] == "transformer") {
        let k = &case["kwargs"];
        let config = TransformerConfig {
            dim_feedforward: k["dim_feedforward"].as_u64().unwrap() as usize,
            activation: if k["activation"] == "gelu" {
                FeedForwardActivation::Gelu
            } else {
                FeedForwardActivation::Relu
            },
            norm_first: k["norm_first"].as_bool().unwrap_or(false),
            batch_first: k["batch_first"].as_bool().unwrap_or(false),
            ..TransformerConfig::default()
        };
        let d = k["d_model"].as_u64().unwrap() as usize;
        let layer = TransformerEncoderLayer::<f64>::new(
            d,
            k["nhead"].as_u64().unwrap() as usize,
            config,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        let names = fill(&layer);
        let want_names: Vec<String> = case["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, want_names);
        layer.eval();
        let tape = Tape::new();
        let x = tape.constant(wave(&usizes(&case["input"])));
        let y = layer
            .forward_with(&x, None, case["causal"].as_bool().unwrap())
            .unwrap();
        assert_eq!(y.dims(), usizes(&case["input"]).as_slice());
        close(
            case["name"].as_str().unwrap(),
            y.value().data(),
            &floats(&case["out"]),
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    let case = cases()
        .into_iter()
        .find(|c| c["kind"] == "conv_transpose")
        .unwrap();
    let params = ConvTranspose2dParams {
        stride: [2, 1],
        padding: [1, 0],
        output_padding: [1, 0],
        groups: 2,
        ..Default::default()
    };
    let conv = ConvTranspose2d::<f64>::with_options(
        4,
        6,
        [3, 2],
        params,
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    assert_eq!(conv.weight.dims(), usizes(&case["weight_shape"]));
    assert_eq!(fill(&conv), ["weight", "bias"]);
    let y = conv
        .forward(&Tape::new().constant(wave(&usizes(&case["input"]))))
        .unwrap();
    assert_eq!(y.dims(), usizes(&case["out_shape"]).as_slice());
    close("conv_transpose2d", y.value().data(), &floats(&case["out"]));
    // PyTorch's rule: the output padding must be smaller than the stride
    let bad = ConvTranspose2dParams {
        output_padding: [1, 1],
        ..Default::default()
    };
    let err = ConvTranspose2d::<f64>::with_options(
        2,
        2,
        [3, 3],
        bad,
        true,
        &mut StdRng::seed_from_u64(0),
    )
    .map(drop)
    .unwrap_err();
    assert!(err.to_string().contains("output_padding [1, 1]"), "{err}");
}

#[test]
fn upsample_matches_pytorch() {
    let mut seen = 0;
    for case in cases().iter().filter(|c| c["kind"] == "upsample") {
        let up = if case["mode"] == "nearest" {
            Upsample {
                size: InterpolateSize::Scale([2.0, 2.0]),
                mode: InterpolateMode::Nearest,
            }
        } else {
            Upsample {
                size: InterpolateSize::Size([5, 7]),
                mode: InterpolateMode::Bilinear {
                    align_corners: false,
                },
            }
        };
        let y = Module::<f64>::forward(&up, &Tape::new().constant(wave(&usizes(&case["input"]))))
            .unwrap();
        assert_eq!(y.dims(), usizes(&case["out_shape"]).as_slice());
        close(
            case["mode"].as_str().unwrap(),
            y.value().data(),
            &floats(&case["out"]),
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn a_module_list_names_by_position_and_eval_reaches_boxed_modules() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut list: ModuleList<Box<dyn Module<f64>>> = ModuleList::new();
    list.push(Box::new(Linear::new(3, 3, &mut rng).unwrap()));
    list.push(Box::new(Dropout::new(1.0, 0).unwrap()));
    list.push(Box::new(Linear::new(3, 2, &mut rng).unwrap()));
    let names: Vec<String> = list
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    let tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[1, 3]).unwrap());
    let run = || {
        list.iter()
            .try_fold(x.clone(), |h, m| m.forward(&h))
            .unwrap()
    };
    // p = 1 drops everything in training mode; eval turns the boxed dropout off
    assert!(run()
        .value()
        .data()
        .iter()
        .zip(list[2].parameters()[1].value().data())
        .all(|(y, b)| y == b));
    list.eval();
    assert!(run()
        .value()
        .data()
        .iter()
        .zip(list[2].parameters()[1].value().data())
        .any(|(y, b)| y != b));
}
