//! Reads each MNIST image as 28 rows of 28 pixels with an LSTM(28 → 128) and classifies
//! its last hidden state (`chainrule::nn::models::LstmRows`); Adam with a one-cycle
//! schedule (peak 5e-3), batch 64, 3 epochs. The PyTorch twin is
//! `benches/peers/pytorch_models.py --model lstm_rows`; `docs/models.md` compares them.
//!
//! `cargo run --release --example lstm_rows -- [--epochs 3] [--max-lr 5e-3] [--seed 0] [--threads N]`

#[path = "common/train.rs"]
mod train;

use chainrule::nn::models::LstmRows;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    train::run(5e-3, LstmRows::new)
}
