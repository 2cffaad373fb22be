//! Losses: fused softmax-cross-entropy, NLL, MSE and binary cross-entropy with logits.

use chainrule_tensor::kernels::softmax::check_labels;
use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::error::InOp;
use std::sync::Arc;

use crate::ops::one;
use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

/// How per-element losses are combined, as PyTorch's `reduction` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over elements (PyTorch's default).
    #[default]
    Mean,
    /// The sum over elements.
    Sum,
    /// No reduction: one loss per element (per row for class losses).
    None,
}

/// Combines per-element losses into the op's output.
fn reduce<T: Element>(losses: Vec<T>, dims: &[usize], r: Reduction) -> TensorResult<Tensor<T>> {
    // a mean over no losses is 0/0 = NaN, as in PyTorch
    // f64 accumulator: an f32 mean over 2e6 rows summed in f32 is off in the 3rd digit
    let sum = || losses.iter().map(|v| v.to_f64()).sum::<f64>();
    match r {
        Reduction::None => Tensor::from_vec(losses, dims),
        Reduction::Sum => Ok(Tensor::scalar(T::from_f64(sum()))),
        Reduction::Mean => Ok(Tensor::scalar(T::from_f64(sum() / losses.len() as f64))),
    }
}

/// The upstream gradient reaching per-element loss `i`.
fn weight<T: Element>(g: &Tensor<T>, r: Reduction, count: usize, i: usize) -> T {
    match r {
        Reduction::None => g.data()[i],
        Reduction::Sum => g.data()[0],
        Reduction::Mean => g.data()[0] / T::from_f64(count as f64),
    }
}

/// The upstream gradient reaching each per-element loss, as an operand that broadcasts
/// against losses of shape `dims` (`[n, 1]` for class losses over rows).
fn weights<T: Element>(
    g: &Operand<T>,
    r: Reduction,
    count: usize,
    dims: &[usize],
) -> Result<Operand<T>> {
    match r {
        Reduction::None => g.reshape(dims),
        Reduction::Sum => Ok(g.clone()),
        Reduction::Mean => Ok(g.scale(1.0 / count as f64)),
    }
}

impl<T: Element> Var<T> {
    /// Softmax cross-entropy of logits `[n, classes]` against integer labels, fused and
    /// shifted by each row's maximum so logits in the thousands stay finite.
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let logits = tape.leaf(Tensor::from_vec(vec![1000.0, 0.0], &[1, 2])?);
    /// let loss = logits.cross_entropy(&[1], Reduction::Mean)?;
    /// assert_eq!(loss.value().item(), Some(1000.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Logits not 2-D, a label count other than `n`, a label outside `0..classes`, or
    /// a mean over no rows.
    #[track_caller]
    pub fn cross_entropy(&self, labels: &[usize], reduction: Reduction) -> Result<Var<T>> {
        let site = Site::caller();
        let (losses, probs) = self
            .value()
            .cross_entropy_rows(labels)
            .in_op("cross_entropy", site)?;
        let n = losses.len();
        let y = reduce(losses, &[n], reduction).in_op("cross_entropy", site)?;
        let labels = labels.to_vec();
        let xs = Saved::of(self);
        // dx = g_i · (softmax(x_i) − one_hot(label_i))
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let c = probs.dims()[1];
            Ok(one(match g {
                Operand::Tensor(g) => {
                    let mut dx = probs.clone();
                    for (i, row) in dx.data_mut().chunks_mut(c.max(1)).enumerate() {
                        let w = weight(g, reduction, n, i);
                        row[labels[i]] -= T::ONE;
                        row.iter_mut().for_each(|v| *v *= w);
                    }
                    Operand::Tensor(dx)
                }
                Operand::Var(_) => {
                    let mut hot = Tensor::zeros(probs.dims())?;
                    for (i, &l) in labels.iter().enumerate() {
                        hot.data_mut()[i * c + l] = T::ONE;
                    }
                    let p = g.load(&xs).softmax(1)?;
                    p.sub(&g.constant(hot))?
                        .mul(&weights(g, reduction, n, &[n, 1])?)?
                }
            }))
        };
        self.tape()
            .record_at("cross_entropy", site, y, &[self], rule)
    }

    /// Negative log-likelihood of log-probabilities `[n, classes]`: `−x[i, label_i]`.
    ///
    /// # Errors
    /// As [`Var::cross_entropy`].
    #[track_caller]
    pub fn nll_loss(&self, labels: &[usize], reduction: Reduction) -> Result<Var<T>> {
        let site = Site::caller();
        let (n, c) = check_labels(self.value(), labels).in_op("nll_loss", site)?;
        let losses = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| -self.value().data()[i * c + l])
            .collect();
        let y = reduce(losses, &[n], reduction).in_op("nll_loss", site)?;
        let (labels, full) = (labels.to_vec(), self.shape().clone());
        // dx[i, label_i] = −g_i
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => {
                    let mut dx = vec![T::ZERO; n * c];
                    for (i, &l) in labels.iter().enumerate() {
                        dx[i * c + l] = -weight(g, reduction, n, i);
                    }
                    Operand::Tensor(Tensor::from_vec(dx, full.dims())?)
                }
                Operand::Var(_) => {
                    let w = weights(g, reduction, n, &[n])?.broadcast_to(&[n])?;
                    let index: Arc<[usize]> =
                        labels.iter().enumerate().map(|(i, &l)| i * c + l).collect();
                    w.scatter_add_flat(index, full.clone())?.neg()
                }
            }))
        };
        self.tape().record_at("nll_loss", site, y, &[self], rule)
    }

    /// Mean (or summed) squared error against a target of the same shape; both sides
    /// receive gradients.
    ///
    /// # Errors
    /// Shapes differ; different tapes; a mean over no elements.
    #[track_caller]
    pub fn mse_loss(&self, target: &Var<T>, reduction: Reduction) -> Result<Var<T>> {
        let site = Site::caller();
        self.tape()
            .check_inputs("mse_loss", site, &[self, target])?;
        let diff = self
            .value()
            .zip_map(target.value(), |x, t| x - t)
            .in_op("mse_loss", site)?;
        let y = reduce(
            diff.data().iter().map(|&d| d * d).collect(),
            self.dims(),
            reduction,
        )
        .in_op("mse_loss", site)?;
        let n = diff.numel();
        let (xs, ts, dims) = (Saved::of(self), Saved::of(target), self.dims().to_vec());
        // dx = 2·(x − t)·g_i,  dt = −dx
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let dx = match g {
                Operand::Tensor(g) => {
                    let two = T::from_f64(2.0);
                    let mut dx = diff.clone();
                    dx.data_mut()
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, d)| *d = two * *d * weight(g, reduction, n, i));
                    Operand::Tensor(dx)
                }
                Operand::Var(_) => {
                    let d = g.load(&xs).sub(&g.load(&ts))?;
                    d.scale(2.0).mul(&weights(g, reduction, n, &dims)?)?
                }
            };
            let dt = dx.neg();
            Ok(Grads::from_iter([Some(dx), Some(dt)]))
        };
        self.tape()
            .record_at("mse_loss", site, y, &[self, target], rule)
    }

    /// Binary cross-entropy of logits against 0/1 targets, in the stable form
    /// `max(x, 0) − x·t + log(1 + e^−|x|)`. As in the PyTorch fixtures, the target
    /// receives no gradient.
    ///
    /// # Errors
    /// Shapes differ; different tapes; a mean over no elements.
    #[track_caller]
    pub fn bce_with_logits(&self, target: &Var<T>, reduction: Reduction) -> Result<Var<T>> {
        let site = Site::caller();
        self.tape()
            .check_inputs("bce_with_logits", site, &[self, target])?;
        let (xs, x, t) = (
            Saved::of(self),
            self.value().clone(),
            target.value().clone(),
        );
        let dims = self.dims().to_vec();
        let losses = x
            .zip_map(&t, |x, t| x.max(T::ZERO) - x * t + (-x.abs()).exp().ln_1p())
            .in_op("bce_with_logits", site)?;
        let n = losses.numel();
        let y = reduce(losses.into_vec(), self.dims(), reduction).in_op("bce_with_logits", site)?;
        // dx = (σ(x) − t)·g_i
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let dx = match g {
                Operand::Tensor(g) => {
                    let mut dx = x.zip_map(&t, |x, t| Unary::Sigmoid.forward(x) - t)?;
                    dx.data_mut()
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, d)| *d *= weight(g, reduction, n, i));
                    Operand::Tensor(dx)
                }
                // the target is data here, as in the first-order rule
                Operand::Var(_) => {
                    let p = g.load(&xs).unary(Unary::Sigmoid);
                    p.sub(&g.constant(t.clone()))?
                        .mul(&weights(g, reduction, n, &dims)?)?
                }
            };
            Ok(Grads::from_iter([Some(dx), None]))
        };
        self.tape()
            .record_at("bce_with_logits", site, y, &[self, target], rule)
    }
}
