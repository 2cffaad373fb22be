//! A model saved by PyTorch (`tests/data/make_pytorch_model.py`: BatchNorm2d with its
//! running statistics, LayerNorm, Embedding with padding_idx, LSTM, MultiheadAttention,
//! Conv2d, Linear) loads by name into the same model written with `#[derive(Module)]`,
//! and gives PyTorch's eval-mode outputs on the same input within 1e-6 — in f32, and in
//! f64 through `LoadOptions::cast`.

use chainrule_autograd::{Conv2dParams, Element, IntTensor, Result, Tape, Tensor};
use chainrule_nn::checkpoint::{self, LoadOptions};
use chainrule_nn::layers::{
    BatchNorm2d, Conv2d, Embedding, LayerNorm, Linear, Lstm, MultiheadAttention, RnnConfig,
};
use chainrule_nn::{BufferValue, Module, ModuleState};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::Value;

#[derive(Module)]
struct Mixed<T: Element> {
    emb: Embedding<T>,
    lstm: Lstm<T>,
    attn: MultiheadAttention<T>,
    norm: LayerNorm<T>,
    conv: Conv2d<T>,
    bn: BatchNorm2d<T>,
    head: Linear<T>,
}

impl<T: Element> Mixed<T> {
    fn new(seed: u64) -> Self {
        let rng = &mut StdRng::seed_from_u64(seed);
        let batch_first = RnnConfig {
            batch_first: true,
            ..RnnConfig::default()
        };
        let padded = Conv2dParams {
            padding: [1, 1],
            ..Conv2dParams::default()
        };
        Mixed {
            emb: Embedding::new(20, 8, Some(0), rng).unwrap(),
            lstm: Lstm::new(8, 8, batch_first, rng).unwrap(),
            attn: MultiheadAttention::new(8, 2, true, rng).unwrap(),
            norm: LayerNorm::new(&[8], 1e-5, true).unwrap(),
            conv: Conv2d::with_options(1, 4, [3, 3], padded, true, rng).unwrap(),
            bn: BatchNorm2d::new(4).unwrap(),
            head: Linear::new(12, 5, rng).unwrap(),
        }
    }

    /// PyTorch's `Mixed.forward`.
    fn forward(&self, tape: &Tape<T>, ids: &IntTensor, img: Tensor<T>) -> Result<Tensor<T>> {
        let h = self.emb.forward_ids(tape, ids)?;
        let (h, _) = self.lstm.forward_with(&h, None)?;
        let a = self.attn.forward_with(&h, &h, &h, None, false)?;
        let h = self.norm.forward(&h.add(&a)?)?.mean_dims(&[1], false)?;
        let c = self.bn.forward(&self.conv.forward(&tape.constant(img))?)?;
        let c = c.relu().mean_dims(&[2, 3], false)?;
        let out = self
            .head
            .forward(&chainrule_autograd::Var::concat(&[&h, &c], 1)?)?;
        Ok(out.value().clone())
    }
}

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn dims(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Loads the PyTorch file into a fresh model and returns its eval output and PyTorch's.
fn run<T: Element>(options: &LoadOptions) -> (Vec<f64>, Vec<f64>, Mixed<T>) {
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(data("pytorch_model.json")).unwrap())
            .unwrap();
    let model = Mixed::<T>::new(1);
    let report = checkpoint::load_with(&model, data("pytorch_model.safetensors"), options).unwrap();
    assert_eq!(report, Default::default(), "every tensor matched by name");
    model.eval();
    let ids: Vec<i64> = case["ids"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let ids = IntTensor::from_vec(ids, &dims(&case["ids"])).unwrap();
    let img: Vec<T> = floats(&case["img"]).into_iter().map(T::from_f64).collect();
    let img = Tensor::from_vec(img, &dims(&case["img"])).unwrap();
    let tape = Tape::new();
    let out = model.forward(&tape, &ids, img).unwrap();
    assert_eq!(out.dims(), dims(&case["out"]).as_slice());
    let got = out.data().iter().map(|v| v.to_f64()).collect();
    (got, floats(&case["out"]), model)
}

fn assert_close(got: &[f64], want: &[f64]) {
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    println!("largest difference from PyTorch: {worst:e}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6,
            "output {i}: chainrule {g}, PyTorch {w} (all: {got:?})"
        );
    }
}

#[test]
fn a_pytorch_state_dict_loads_into_the_same_model_and_gives_its_outputs_in_f32() {
    let (got, want, model) = run::<f32>(&LoadOptions::default());
    assert_close(&got, &want);
    // the buffers came from the file: three training batches were tracked
    let buffers = model.named_buffers();
    let (_, tracked) = buffers
        .iter()
        .find(|(n, _)| n == "bn.num_batches_tracked")
        .unwrap();
    match tracked.get() {
        BufferValue::Int(t) => assert_eq!(t.data(), &[3]),
        BufferValue::Float(_) => panic!("num_batches_tracked must stay an integer"),
    }
}

#[test]
fn the_f32_file_loads_into_an_f64_model_with_cast() {
    let err = checkpoint::load(&Mixed::<f64>::new(1), data("pytorch_model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"emb.weight\" has dtype F32, the module expects F64"),
        "{err}"
    );
    let cast = LoadOptions {
        cast: true,
        ..LoadOptions::default()
    };
    let (got, want, _) = run::<f64>(&cast);
    assert_close(&got, &want);
}
