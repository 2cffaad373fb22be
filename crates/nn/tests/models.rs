//! The reference models train exactly as their PyTorch twins: from the initial weights
//! the twin saved, 20 steps in f64 on the first 20 MNIST batches (in order) with the
//! example's recipe give PyTorch's 20 losses within 1e-9 relative
//! (`python3 benches/peers/pytorch_models.py --model M --reference crates/nn/tests/data`
//! writes the files).

use chainrule_autograd::{Reduction, Tape, Tensor};
use chainrule_nn::checkpoint::{self, LoadOptions};
use chainrule_nn::mnist::{Mnist, Pixels};
use chainrule_nn::models::{LstmRows, ResNetBn, VitTiny};
use chainrule_nn::optim::{Adam, OneCycleLr, Optimizer, Scheduler};
use chainrule_nn::Module;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::Value;

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Trains `model` (already holding PyTorch's initial weights) 20 steps with Adam and a
/// one-cycle schedule over 3 epochs of steps, and compares each loss with PyTorch's.
fn matches_pytorch(model: &dyn Module<f64>, losses: &str, max_lr: f64) {
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(data(losses)).unwrap()).unwrap();
    let want: Vec<f64> = want["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mnist = Mnist::load_with(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"),
        Pixels::Unit,
    )
    .unwrap();
    let total = 3 * mnist.train.len().div_ceil(64);
    let mut opt = Adam::new(model.parameters(), max_lr).unwrap();
    let mut sched = Scheduler::new(OneCycleLr::new(max_lr, total), &mut opt).unwrap();
    let mut worst = 0.0f64;
    for (step, ((x, labels), want)) in mnist.train.batches(64, None).zip(&want).enumerate() {
        let x =
            Tensor::from_vec(x.data().iter().map(|&v| f64::from(v)).collect(), x.dims()).unwrap();
        let tape = Tape::new();
        let loss = model
            .forward(&tape.constant(x))
            .unwrap()
            .cross_entropy(&labels, Reduction::Mean)
            .unwrap();
        let got = loss.value().item().unwrap();
        let rel = (got - want).abs() / want.abs();
        worst = worst.max(rel);
        assert!(
            rel < 1e-9,
            "step {step}: loss {got}, PyTorch {want} (relative {rel:e})"
        );
        opt.step(&loss.backward().unwrap()).unwrap();
        sched.step(&mut opt).unwrap();
    }
    println!("{losses}: 20 losses within {worst:e} relative of PyTorch's");
}

#[test]
fn lstm_rows_trains_as_pytorch_does() {
    let model = LstmRows::<f64>::new(&mut StdRng::seed_from_u64(0)).unwrap();
    let cast = LoadOptions {
        cast: true,
        ..LoadOptions::default()
    };
    checkpoint::load_with(&model, data("lstm_rows_init.safetensors"), &cast).unwrap();
    matches_pytorch(&model, "lstm_rows_losses.json", 5e-3);
}

#[test]
fn vit_tiny_trains_as_pytorch_does() {
    let model = VitTiny::<f64>::new(&mut StdRng::seed_from_u64(0)).unwrap();
    let cast = LoadOptions {
        cast: true,
        ..LoadOptions::default()
    };
    checkpoint::load_with(&model, data("vit_tiny_init.safetensors"), &cast).unwrap();
    matches_pytorch(&model, "vit_tiny_losses.json", 2e-3);
}

#[test]
fn resnet_bn_trains_as_pytorch_does() {
    let model = ResNetBn::<f64>::new(&mut StdRng::seed_from_u64(0)).unwrap();
    let cast = LoadOptions {
        cast: true,
        ..LoadOptions::default()
    };
    checkpoint::load_with(&model, data("resnet_bn_init.safetensors"), &cast).unwrap();
    matches_pytorch(&model, "resnet_bn_losses.json", 1e-2);
}
