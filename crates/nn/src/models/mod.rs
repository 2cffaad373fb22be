//! Small reference models on MNIST, each with a PyTorch twin under `benches/peers/`
//! (same layers, parameter names and recipe) and an example that trains it
//! (`cargo run --release --example lstm_rows`).

mod lstm_rows;
mod resnet_bn;
mod seed_cnn;
mod vit_tiny;

pub use lstm_rows::LstmRows;
pub use resnet_bn::{BasicBlock, ResNetBn};
pub use seed_cnn::seed_cnn;
pub use vit_tiny::VitTiny;
