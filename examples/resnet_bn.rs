//! A small ResNet with batch norm on MNIST (`chainrule::nn::models::ResNetBn`, 31k
//! parameters): a 16-channel stem, three basic blocks (16, 24, 32 channels), global
//! average pooling; Adam with a one-cycle schedule (peak 1e-2), batch 64, 3 epochs.
//! Batch statistics in training, running statistics at test time. The PyTorch twin is
//! `benches/peers/pytorch_models.py --model resnet_bn`; `docs/models.md` compares them.
//!
//! `cargo run --release --example resnet_bn -- [--epochs 3] [--max-lr 1e-2] [--seed 0] [--threads N]`

#[path = "common/train.rs"]
mod train;

use chainrule::nn::models::ResNetBn;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    train::run(1e-2, ResNetBn::new)
}
