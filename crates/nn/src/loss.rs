//! Losses as functions (PyTorch's `F.cross_entropy(logits, labels)` order) and as
//! small structs holding the reduction. All are the engine's fused, stable ops.
//!
//! ```
//! use chainrule_autograd::{Reduction, Tape, Tensor};
//! use chainrule_nn::loss;
//! let tape = Tape::<f64>::new();
//! let logits = tape.leaf(Tensor::zeros(&[2, 4])?);
//! let l = loss::cross_entropy(&logits, &[0, 3], Reduction::Mean)?;
//! assert!((l.value().item().unwrap() - 4f64.ln()).abs() < 1e-12);
//! # Ok::<(), chainrule_autograd::Error>(())
//! ```

use chainrule_autograd::{Element, Reduction, Result, Var};

/// Softmax cross-entropy of logits `[n, classes]` against labels in `0..classes`.
///
/// # Errors
/// See [`Var::cross_entropy`].
#[track_caller]
pub fn cross_entropy<T: Element>(
    logits: &Var<T>,
    labels: &[usize],
    reduction: Reduction,
) -> Result<Var<T>> {
    logits.cross_entropy(labels, reduction)
}

/// Negative log-likelihood of log-probabilities `[n, classes]`.
///
/// # Errors
/// See [`Var::nll_loss`].
#[track_caller]
pub fn nll_loss<T: Element>(
    log_probs: &Var<T>,
    labels: &[usize],
    reduction: Reduction,
) -> Result<Var<T>> {
    log_probs.nll_loss(labels, reduction)
}

/// Squared error.
///
/// # Errors
/// See [`Var::mse_loss`].
#[track_caller]
pub fn mse_loss<T: Element>(
    input: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Result<Var<T>> {
    input.mse_loss(target, reduction)
}

/// Binary cross-entropy on logits.
///
/// # Errors
/// See [`Var::bce_with_logits`].
#[track_caller]
pub fn bce_with_logits<T: Element>(
    logits: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Result<Var<T>> {
    logits.bce_with_logits(target, reduction)
}

/// `nn.CrossEntropyLoss`: holds the reduction.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropyLoss(pub Reduction);

impl CrossEntropyLoss {
    /// The loss of `logits` against `labels`.
    ///
    /// # Errors
    /// See [`Var::cross_entropy`].
    #[track_caller]
    pub fn forward<T: Element>(&self, logits: &Var<T>, labels: &[usize]) -> Result<Var<T>> {
        logits.cross_entropy(labels, self.0)
    }
}

/// `nn.NLLLoss`: holds the reduction.
#[derive(Clone, Copy, Debug, Default)]
pub struct NllLoss(pub Reduction);

impl NllLoss {
    /// The loss of `log_probs` against `labels`.
    ///
    /// # Errors
    /// See [`Var::nll_loss`].
    #[track_caller]
    pub fn forward<T: Element>(&self, log_probs: &Var<T>, labels: &[usize]) -> Result<Var<T>> {
        log_probs.nll_loss(labels, self.0)
    }
}

/// `nn.MSELoss`: holds the reduction.
#[derive(Clone, Copy, Debug, Default)]
pub struct MseLoss(pub Reduction);

impl MseLoss {
    /// The loss of `input` against `target`.
    ///
    /// # Errors
    /// See [`Var::mse_loss`].
    #[track_caller]
    pub fn forward<T: Element>(&self, input: &Var<T>, target: &Var<T>) -> Result<Var<T>> {
        input.mse_loss(target, self.0)
    }
}

/// `nn.BCEWithLogitsLoss`: holds the reduction.
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogitsLoss(pub Reduction);

impl BceWithLogitsLoss {
    /// The loss of `logits` against 0/1 `target`.
    ///
    /// # Errors
    /// See [`Var::bce_with_logits`].
    #[track_caller]
    pub fn forward<T: Element>(&self, logits: &Var<T>, target: &Var<T>) -> Result<Var<T>> {
        logits.bce_with_logits(target, self.0)
    }
}
