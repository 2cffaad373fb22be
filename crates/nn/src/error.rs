/// Errors of the nn crate: the engine's, plus checkpoints, data files and initializers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op failed inside a forward or backward pass.
    #[error(transparent)]
    Engine(#[from] chainrule_autograd::Error),
    /// A tensor-level failure outside a recorded op (an optimizer update, say).
    #[error(transparent)]
    Tensor(#[from] chainrule_autograd::TensorError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint is malformed or does not match the module; lists every problem.
    #[error("checkpoint {path}: {}", problems.join("; "))]
    Checkpoint {
        /// The file.
        path: String,
        /// Each mismatch or defect found.
        problems: Vec<String>,
    },
    /// A data file is not what its format says.
    #[error("data file {path}: {reason}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An initializer cannot be applied to a shape, or a hyperparameter is invalid.
    #[error("{what}: {reason}")]
    Invalid {
        /// The initializer or optimizer.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The nn crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
