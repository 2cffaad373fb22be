//! A tiny vision transformer on MNIST (`chainrule::nn::models::VitTiny`): 7×7 patches,
//! 2 pre-norm encoder layers of width 64 with 4 heads and GELU, mean pooling; Adam with
//! a one-cycle schedule (peak 2e-3), batch 64, 3 epochs. The PyTorch twin is
//! `benches/peers/pytorch_models.py --model vit_tiny`; `docs/models.md` compares them.
//!
//! `cargo run --release --example vit_tiny -- [--epochs 3] [--max-lr 2e-3] [--seed 0] [--threads N]`

#[path = "common/train.rs"]
mod train;

use chainrule::nn::models::VitTiny;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    train::run(2e-3, VitTiny::new)
}
