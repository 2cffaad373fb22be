//! Small reference models on MNIST, each with a PyTorch twin under `benches/peers/`
//! (same layers, parameter names and recipe) and an example that trains it
//! (`cargo run --release --example lstm_rows`).

mod lstm_rows;

pub use lstm_rows::LstmRows;
