//! Losses with fused rules: softmax cross-entropy (label smoothing, ignored labels), NLL,
//! MSE and binary cross-entropy with logits.

use chainrule_tensor::kernels::softmax::check_labels;
use chainrule_tensor::{AsIntTensor, Element, IntTensor, Shape, Tensor, TensorError, TensorResult};

use crate::error::InOp;
use std::sync::Arc;

use crate::ops::one;
use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

/// How per-element losses are combined, as PyTorch's `reduction` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over elements (PyTorch's default); for class losses, over the rows not
    /// ignored.
    #[default]
    Mean,
    /// The sum over elements.
    Sum,
    /// No reduction: one loss per element (per row for class losses).
    None,
    /// The sum divided by the first dim's extent (the batch size): `kl_div`'s
    /// `'batchmean'`, the mathematically right KL divergence per example.
    BatchMean,
}

impl Reduction {
    /// What a sum of per-element losses of shape `dims` is divided by (`counted` of
    /// them counting, for class losses with ignored rows).
    fn divisor(self, dims: &[usize], counted: usize) -> f64 {
        match self {
            Reduction::Mean => counted as f64,
            Reduction::BatchMean => dims.first().copied().unwrap_or(1) as f64,
            Reduction::Sum | Reduction::None => 1.0,
        }
    }
}

/// Combines per-element losses of shape `dims` into the op's output; `counted` is the
/// mean's divisor.
fn reduce<T: Element>(
    losses: Vec<T>,
    dims: &[usize],
    counted: usize,
    r: Reduction,
) -> TensorResult<Tensor<T>> {
    // a mean over no losses is 0/0 = NaN, as in PyTorch
    // f64 accumulator: an f32 mean over 2e6 rows summed in f32 is off in the 3rd digit
    let sum = || losses.iter().map(|v| v.to_f64()).sum::<f64>();
    match r {
        Reduction::None => Tensor::from_vec(losses, dims),
        _ => Ok(Tensor::scalar(T::from_f64(
            sum() / r.divisor(dims, counted),
        ))),
    }
}

/// The upstream gradient reaching per-element loss `i`.
fn weight<T: Element>(g: &Tensor<T>, r: Reduction, divisor: f64, i: usize) -> T {
    match r {
        Reduction::None => g.data()[i],
        _ => g.data()[0] / T::from_f64(divisor),
    }
}

/// The upstream gradient reaching each per-element loss, as an operand that broadcasts
/// against losses of shape `dims` (`[n, 1]` for class losses over rows).
fn weights<T: Element>(
    g: &Operand<T>,
    r: Reduction,
    divisor: f64,
    dims: &[usize],
) -> Result<Operand<T>> {
    match r {
        Reduction::None => g.reshape(dims),
        _ => Ok(g.scale(1.0 / divisor)),
    }
}

/// Per-element losses (a recorded `Var`) reduced as `r` asks, for losses composed of
/// recorded ops.
#[track_caller]
pub(crate) fn reduce_var<T: Element>(losses: Var<T>, r: Reduction) -> Result<Var<T>> {
    match r {
        Reduction::None => Ok(losses),
        Reduction::Sum => Ok(losses.sum()),
        Reduction::Mean => losses.mean(),
        Reduction::BatchMean => {
            let divisor = r.divisor(losses.dims(), 0);
            Ok(losses.sum().mul_scalar(1.0 / divisor))
        }
    }
}

/// The options of [`Var::cross_entropy_with`], PyTorch's keyword arguments.
///
/// ```
/// use chainrule_autograd::{CrossEntropyOptions, Reduction};
/// let o = CrossEntropyOptions::default();
/// assert_eq!((o.reduction, o.label_smoothing, o.ignore_index), (Reduction::Mean, 0.0, Some(-100)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropyOptions {
    /// How the per-row losses combine; the mean is over rows not ignored.
    pub reduction: Reduction,
    /// ε in `[0, 1]`: the target is `(1 − ε)·one_hot + ε/classes`.
    pub label_smoothing: f64,
    /// Rows with this label add no loss and get no gradient. PyTorch's default is
    /// −100, so a label of −100 is ignored unless this is `None`.
    pub ignore_index: Option<i64>,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            ignore_index: Some(-100),
        }
    }
}

/// Labels checked against `[n, c]` scores: each row's class (0 for an ignored row),
/// whether the row counts, and how many do.
struct Classes {
    class: Vec<usize>,
    counted: Vec<bool>,
    count: usize,
}

fn classes<T: Element>(
    scores: &Tensor<T>,
    labels: &IntTensor,
    ignore_index: Option<i64>,
) -> TensorResult<Classes> {
    if labels.dims().len() != 1 {
        return Err(TensorError::Shape(format!(
            "labels must be 1-D, got shape {}",
            labels.shape()
        )));
    }
    let counted: Vec<bool> = labels
        .data()
        .iter()
        .map(|&l| Some(l) != ignore_index)
        .collect();
    let class: Vec<usize> = labels
        .data()
        .iter()
        .zip(&counted)
        .map(|(&l, &c)| {
            if c {
                usize::try_from(l).unwrap_or(usize::MAX)
            } else {
                0
            }
        })
        .collect();
    // the shape checks and the range check (a negative label maps to usize::MAX)
    check_labels(scores, &class).map_err(|e| match e {
        TensorError::LabelOutOfRange { index, classes, .. } => TensorError::LabelOutOfRange {
            label: labels.data()[index],
            index,
            classes,
        },
        other => other,
    })?;
    let count = counted.iter().filter(|&&c| c).count();
    Ok(Classes {
        class,
        counted,
        count,
    })
}

impl<T: Element> Var<T> {
    /// Softmax cross-entropy of logits `[n, classes]` against integer labels (an
    /// [`IntTensor`] or `usize` values), fused and shifted by each row's maximum so
    /// logits in the thousands stay finite. With PyTorch's defaults for the other
    /// options ([`CrossEntropyOptions`]).
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
    /// Logits not 2-D, a label count other than `n`, or a label outside `0..classes`.
    #[track_caller]
    pub fn cross_entropy(
        &self,
        labels: &(impl AsIntTensor + ?Sized),
        reduction: Reduction,
    ) -> Result<Var<T>> {
        let options = CrossEntropyOptions {
            reduction,
            ..Default::default()
        };
        self.cross_entropy_with(labels, options)
    }

    /// [`Var::cross_entropy`] with label smoothing and an ignored label (PyTorch's
    /// `F.cross_entropy(x, y, reduction=, label_smoothing=, ignore_index=)`).
    ///
    /// ```
    /// use chainrule_autograd::{CrossEntropyOptions, IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![2.0, 0.0, 0.0, 2.0], &[2, 2])?);
    /// let opts = CrossEntropyOptions { ignore_index: Some(1), ..Default::default() };
    /// let both = x.cross_entropy_with(&IntTensor::from(vec![0, 0]), opts)?;
    /// let first = x.cross_entropy_with(&IntTensor::from(vec![0, 1]), opts)?;
    /// // the ignored row adds nothing, and the mean is over the one row left
    /// assert!((first.value().item().unwrap() - 0.126_928_011).abs() < 1e-9);
    /// assert!(both.value().item().unwrap() > first.value().item().unwrap());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::cross_entropy`]; a `label_smoothing` outside `[0, 1]`.
    #[track_caller]
    pub fn cross_entropy_with(
        &self,
        labels: &(impl AsIntTensor + ?Sized),
        options: CrossEntropyOptions,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "cross_entropy";
        let CrossEntropyOptions {
            reduction,
            label_smoothing: eps,
            ignore_index,
        } = options;
        if !(0.0..=1.0).contains(&eps) {
            return Err(crate::Error::Op {
                op,
                site,
                source: TensorError::Attr {
                    attr: "label_smoothing",
                    reason: format!("{eps} is outside [0, 1]"),
                },
            });
        }
        let labels = labels.as_int_tensor();
        let x = self.value();
        let Classes {
            class,
            counted,
            count,
        } = classes(x, &labels, ignore_index).in_op(op, site)?;
        let (nll, probs) = x.cross_entropy_rows(&class).in_op(op, site)?;
        let (n, c) = (nll.len(), x.dims()[1]);
        // −Σ_c log p_c / C = logsumexp − mean(x) = nll + x[label] − mean(x)
        let losses = (0..n)
            .map(|i| {
                if !counted[i] {
                    return T::ZERO;
                }
                if eps == 0.0 {
                    return nll[i];
                }
                let row = &x.data()[i * c..(i + 1) * c];
                let mean = row.iter().map(|v| v.to_f64()).sum::<f64>() / c as f64;
                let smooth = nll[i].to_f64() + row[class[i]].to_f64() - mean;
                T::from_f64((1.0 - eps) * nll[i].to_f64() + eps * smooth)
            })
            .collect();
        let y = reduce(losses, &[n], count, reduction).in_op(op, site)?;
        let divisor = reduction.divisor(&[n], count);
        let xs = Saved::of(self);
        // the target distribution q, zero on ignored rows, and the row mask
        let on = T::from_f64(1.0 - eps + eps / c as f64);
        let off = T::from_f64(eps / c as f64);
        // dx = g_i · counted_i · (softmax(x_i) − q_i)
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => {
                    let mut dx = probs.clone();
                    for (i, row) in dx.data_mut().chunks_mut(c.max(1)).enumerate() {
                        if !counted[i] {
                            row.fill(T::ZERO);
                            continue;
                        }
                        let w = weight(g, reduction, divisor, i);
                        if eps != 0.0 {
                            row.iter_mut().for_each(|v| *v -= off);
                        }
                        row[class[i]] -= on - off;
                        row.iter_mut().for_each(|v| *v *= w);
                    }
                    Operand::Tensor(dx)
                }
                Operand::Var(_) => {
                    let mut q = Tensor::zeros(probs.dims())?;
                    let mut mask = Tensor::zeros(&[n, 1])?;
                    for i in (0..n).filter(|&i| counted[i]) {
                        let row = &mut q.data_mut()[i * c..(i + 1) * c];
                        row.fill(off);
                        row[class[i]] = on;
                        mask.data_mut()[i] = T::ONE;
                    }
                    let p = g.load(&xs).softmax(1)?;
                    let w = weights(g, reduction, divisor, &[n, 1])?.mul(&g.constant(mask))?;
                    p.sub(&g.constant(q))?.mul(&w)?
                }
            }))
        };
        self.tape().record_at(op, site, y, &[self], rule)
    }

    /// Negative log-likelihood of log-probabilities `[n, classes]`: `−x[i, label_i]`;
    /// rows labelled −100 are ignored, as PyTorch's default `ignore_index`.
    ///
    /// ```
    /// use chainrule_autograd::{Reduction, Tape, Tensor};
    /// let x = Tape::<f64>::new().leaf(Tensor::from_vec(vec![-0.5, -1.0, -2.0, -0.1], &[2, 2])?);
    /// assert_eq!(x.nll_loss(&[1, 0], Reduction::Sum)?.value().item(), Some(3.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::cross_entropy`].
    #[track_caller]
    pub fn nll_loss(
        &self,
        labels: &(impl AsIntTensor + ?Sized),
        reduction: Reduction,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let labels = labels.as_int_tensor();
        let ignore = CrossEntropyOptions::default().ignore_index;
        let Classes {
            class,
            counted,
            count,
        } = classes(self.value(), &labels, ignore).in_op("nll_loss", site)?;
        let (n, c) = (class.len(), self.dims()[1]);
        let losses = (0..n)
            .map(|i| {
                if counted[i] {
                    -self.value().data()[i * c + class[i]]
                } else {
                    T::ZERO
                }
            })
            .collect();
        let y = reduce(losses, &[n], count, reduction).in_op("nll_loss", site)?;
        let divisor = reduction.divisor(&[n], count);
        let full = self.shape().clone();
        let rows: Vec<usize> = (0..n).filter(|&i| counted[i]).collect();
        // dx[i, label_i] = −g_i
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => {
                    let mut out = Tensor::zeros(full.dims())?;
                    let dx = out.data_mut();
                    for &i in &rows {
                        dx[i * c + class[i]] = -weight(g, reduction, divisor, i);
                    }
                    Operand::Tensor(out)
                }
                Operand::Var(_) => {
                    let w = weights(g, reduction, divisor, &[n])?.broadcast_to(&[n])?;
                    let picked: Arc<[usize]> = rows.iter().copied().collect();
                    let w = w.take_flat(picked, Shape::new(&[rows.len()])?)?;
                    let index: Arc<[usize]> = rows.iter().map(|&i| i * c + class[i]).collect();
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
        let n = diff.numel();
        let y = reduce(
            diff.data().iter().map(|&d| d * d).collect(),
            self.dims(),
            n,
            reduction,
        )
        .in_op("mse_loss", site)?;
        let divisor = reduction.divisor(self.dims(), n);
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
                        .for_each(|(i, d)| *d = two * *d * weight(g, reduction, divisor, i));
                    Operand::Tensor(dx)
                }
                Operand::Var(_) => {
                    let d = g.load(&xs).sub(&g.load(&ts))?;
                    d.scale(2.0).mul(&weights(g, reduction, divisor, &dims)?)?
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
        let divisor = reduction.divisor(self.dims(), n);
        let y =
            reduce(losses.into_vec(), self.dims(), n, reduction).in_op("bce_with_logits", site)?;
        // dx = (σ(x) − t)·g_i
        let rule = move |g: &Operand<T>, _: &[bool]| {
            let dx = match g {
                Operand::Tensor(g) => {
                    let mut dx = x.zip_map(&t, |x, t| Unary::Sigmoid.forward(x) - t)?;
                    dx.data_mut()
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, d)| *d *= weight(g, reduction, divisor, i));
                    Operand::Tensor(dx)
                }
                // the target is data here, as in the first-order rule
                Operand::Var(_) => {
                    let p = g.load(&xs).unary(Unary::Sigmoid);
                    p.sub(&g.constant(t.clone()))?
                        .mul(&weights(g, reduction, divisor, &dims)?)?
                }
            };
            Ok(Grads::from_iter([Some(dx), None]))
        };
        self.tape()
            .record_at("bce_with_logits", site, y, &[self, target], rule)
    }
}
