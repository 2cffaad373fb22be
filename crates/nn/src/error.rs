//! The nn crate reports errors with the engine's one [`Error`] type: its files,
//! initializers and hyperparameters have variants there (`Io`, `Checkpoint`, `Data`,
//! `Invalid`), so a user's `?` needs no conversion between crates.

pub use chainrule_autograd::{Error, Result};
