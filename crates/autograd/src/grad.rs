//! `grad`: the gradients of chosen outputs with respect to chosen inputs, optionally
//! recorded so they can be differentiated again (PyTorch's `torch.autograd.grad`).

use std::collections::HashMap;

use chainrule_tensor::{Element, Tensor};

use crate::backward::{self, Pass};
use crate::error::InOp;
use crate::{Error, Operand, Result, Site, Var};

/// Options of [`grad`], as PyTorch's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GradOptions {
    /// Keep the records for another backward pass; `None` means "as `create_graph`".
    pub retain_graph: Option<bool>,
    /// Record the backward computation, so the gradients are `Var`s that can be
    /// differentiated again (Hessian-vector products, gradient penalties, MAML).
    pub create_graph: bool,
    /// An input the outputs do not depend on gets a zero gradient instead of an error.
    pub allow_unused: bool,
}

impl GradOptions {
    /// `create_graph` on (and so `retain_graph`).
    pub fn create_graph() -> Self {
        GradOptions {
            create_graph: true,
            ..GradOptions::default()
        }
    }

    /// This with `retain_graph` set.
    pub fn retain_graph(self, on: bool) -> Self {
        GradOptions {
            retain_graph: Some(on),
            ..self
        }
    }

    /// This with `allow_unused` set.
    pub fn allow_unused(self, on: bool) -> Self {
        GradOptions {
            allow_unused: on,
            ..self
        }
    }
}

/// The gradient of `Σ_k <outputs[k], grad_outputs[k]>` with respect to each of `inputs`
/// — parameters (`tape.param(&w)`), leaves or intermediate values — as PyTorch's
/// `torch.autograd.grad`. Only the records on a path from the inputs to the outputs
/// run. An empty `grad_outputs` means ones, for one-element outputs.
///
/// With [`GradOptions::create_graph`] the backward computation is recorded on the same
/// tape: each returned `Var` is tracked and can be differentiated again, to any order.
/// Without it, the returned `Var`s are untracked values.
///
/// Choices where PyTorch differs: an unused input with `allow_unused` gets zeros (as
/// PyTorch's `materialize_grads=True`), not `None`, so the result is one `Var` per
/// input.
///
/// A Hessian-vector product:
///
/// ```
/// use chainrule_autograd::{grad, GradOptions, Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
/// let y = x.powf(3.0).sum(); // ∇y = 3x², H = diag(6x)
/// let g = grad(&[&y], &[&x], &[], GradOptions::create_graph())?;
/// let u = tape.constant(Tensor::from_vec(vec![1.0, 1.0], &[2])?);
/// let gu = (&g[0] * &u)?.sum();
/// let hvp = grad(&[&gu], &[&x], &[], GradOptions::default())?;
/// assert_eq!(hvp[0].value().data(), &[6.0, 12.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::BackwardCall`] for no outputs, values on different tapes, an untracked
/// output, a `grad_outputs` of the wrong length or shape, or a many-element output
/// without one; [`Error::UnusedInput`] for an input the outputs do not depend on
/// (unless `allow_unused`); [`Error::GraphFreed`] when an earlier backward freed a
/// record on the path; [`Error::NotDifferentiable`] when `create_graph` meets a
/// first-order custom rule; a rule's error, named by the op and its recording line.
#[track_caller]
pub fn grad<T: Element>(
    outputs: &[&Var<T>],
    inputs: &[&Var<T>],
    grad_outputs: &[&Var<T>],
    options: GradOptions,
) -> Result<Vec<Var<T>>> {
    let site = Site::caller();
    let call = |reason: String| Error::BackwardCall { site, reason };
    let Some(first) = outputs.first() else {
        return Err(call("grad needs at least one output".into()));
    };
    let tape = first.tape();
    let same = |v: &&Var<T>| v.tape().id() == tape.id();
    if !(outputs.iter().all(same) && inputs.iter().all(same) && grad_outputs.iter().all(same)) {
        return Err(call(
            "outputs, inputs and grad_outputs must be on one tape".into(),
        ));
    }
    if !grad_outputs.is_empty() && grad_outputs.len() != outputs.len() {
        return Err(call(format!(
            "{} grad_outputs for {} outputs",
            grad_outputs.len(),
            outputs.len()
        )));
    }
    let mut seeds = Vec::with_capacity(outputs.len());
    for (k, out) in outputs.iter().enumerate() {
        let Some(node) = out.node() else {
            return Err(call(format!(
                "output {k} does not depend on any parameter or leaf (it was computed from constants, detached, or under no_grad)"
            )));
        };
        let seed = match grad_outputs.get(k) {
            Some(g) if g.shape() != out.shape() => {
                return Err(call(format!(
                    "grad_outputs[{k}] has shape {}, output {k} has {}",
                    g.shape(),
                    out.shape()
                )))
            }
            Some(g) if options.create_graph => Operand::Var(Box::new((*g).clone())),
            Some(g) => Operand::Tensor(g.value().clone()),
            None if out.value().numel() != 1 => {
                return Err(call(format!(
                    "output {k} has shape {}; a many-element output needs grad_outputs",
                    out.shape()
                )))
            }
            None => {
                let ones = Tensor::full(out.dims(), T::ONE).in_op("grad", site)?;
                if options.create_graph {
                    Operand::Var(Box::new(tape.constant(ones)))
                } else {
                    Operand::Tensor(ones)
                }
            }
        };
        seeds.push((node, seed));
    }
    let root = seeds.iter().map(|s| s.0).max().unwrap_or(0);
    let wanted: Vec<usize> = inputs.iter().filter_map(|v| v.node()).collect();
    let reach = backward::reach(tape, root, &wanted);
    let mut slot_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, v) in inputs.iter().enumerate() {
        if let Some(n) = v.node() {
            slot_of.entry(n).or_default().push(k);
        }
    }
    let mut found: Vec<Option<Operand<T>>> = vec![None; inputs.len()];
    let pass = Pass {
        reach: Some(&reach),
        retain_graph: options.retain_graph.unwrap_or(options.create_graph),
    };
    backward::run(tape, seeds, pass, |r| {
        if let Some(slots) = slot_of.get(&r.node) {
            slots.iter().for_each(|&k| found[k] = Some(r.grad.clone()));
        }
    })?;
    inputs
        .iter()
        .zip(found)
        .enumerate()
        .map(|(k, (input, g))| match g {
            Some(Operand::Var(v)) => Ok(*v),
            Some(Operand::Tensor(t)) => Ok(tape.constant(t)),
            None if options.allow_unused => Ok(tape.constant(input.value().zeros_like())),
            None => Err(Error::UnusedInput { index: k, site }),
        })
        .collect()
}
