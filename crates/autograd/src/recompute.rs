//! Gradient checkpointing: a segment of the forward pass keeps only its inputs and
//! output on the tape and is run again during backward (PyTorch's
//! `torch.utils.checkpoint`), trading compute for memory.

use std::rc::Rc;

use chainrule_tensor::Element;

use crate::{grad, Error, GradOptions, Grads, Operand, Param, Result, Saved, Site, Tape, Var};

/// Runs `f` on `inputs` without keeping its records: the tape gets one record, the
/// checkpoint, whose inputs are `inputs` and every parameter `f` used. Backward runs
/// `f` again from the saved inputs and differentiates that run, so the segment's
/// intermediate values live only while its backward runs. Results are the same as
/// without the checkpoint, to the bit when each segment input is used only inside
/// its segment (otherwise a value's contributions are added in another grouping).
/// Gradients of gradients (`create_graph`) work through it too.
///
/// `f` must compute the same thing when run again: a dropout inside draws new
/// masks (PyTorch restores the RNG state; chainrule does not).
///
/// ```
/// use chainrule_autograd::{checkpoint, Param, Tape, Tensor};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![0.5, -0.2, 0.1, 0.3], &[2, 2])?);
/// let tape = Tape::new();
/// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[1, 2])?);
/// let w2 = w.clone();
/// let block = move |v: &[chainrule_autograd::Var<f64>]| {
///     v[0].matmul(&v[0].tape().param(&w2))?.tanh().matmul(&v[0].tape().param(&w2))
/// };
/// let y = checkpoint(block, &[&x])?.sum();
/// assert_eq!(tape.len(), 4); // x, w, the checkpoint, the sum
/// let grads = y.backward()?;
/// assert_eq!(grads.get(&w).unwrap().dims(), &[2, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// No inputs, inputs on different tapes, or whatever `f` returns (now, or when run
/// again during backward).
#[track_caller]
pub fn checkpoint<T, F>(f: F, inputs: &[&Var<T>]) -> Result<Var<T>>
where
    T: Element,
    F: Fn(&[Var<T>]) -> Result<Var<T>> + 'static,
{
    let site = Site::caller();
    let Some(first) = inputs.first() else {
        return Err(Error::BackwardCall {
            site,
            reason: "checkpoint needs at least one input".into(),
        });
    };
    let tape = first.tape().clone();
    tape.check_inputs("checkpoint", site, inputs)?;
    // forward: values only, noting the parameters the segment uses
    let (value, params) = {
        let scratch = Tape::<T>::new();
        *scratch.inner.used_params.borrow_mut() = Some(Vec::new());
        let _off = scratch.no_grad();
        let xs: Vec<Var<T>> = inputs
            .iter()
            .map(|v| scratch.constant(v.value().clone()))
            .collect();
        let y = f(&xs)?;
        let params = scratch
            .inner
            .used_params
            .borrow_mut()
            .take()
            .unwrap_or_default();
        (y.value().clone(), params)
    };
    let param_vars: Vec<Var<T>> = params.iter().map(|p| tape.param(p)).collect();
    let mut all: Vec<&Var<T>> = inputs.to_vec();
    all.extend(param_vars.iter());
    let saved: Vec<Saved<T>> = inputs.iter().map(|v| Saved::of(v)).collect();
    let f = Rc::new(f);
    let rule = move |g: &Operand<T>, needs: &[bool]| -> Result<Grads<T>> {
        match g {
            Operand::Tensor(g) => rerun_fast(&*f, &saved, &params, g, needs),
            Operand::Var(gv) => {
                // recorded: run the segment again on this tape and differentiate it
                let xs: Vec<Var<T>> = saved
                    .iter()
                    .map(|s| match g.load(s) {
                        Operand::Var(v) => *v,
                        Operand::Tensor(t) => gv.tape().constant(t),
                    })
                    .collect();
                let y = f(&xs)?;
                let ps: Vec<Var<T>> = params.iter().map(|p| gv.tape().param(p)).collect();
                let wrt: Vec<&Var<T>> = xs.iter().chain(&ps).collect();
                let opts = GradOptions::create_graph().allow_unused(true);
                let gs = if y.is_tracked() {
                    grad(&[&y], &wrt, &[gv], opts)?
                } else {
                    wrt.iter()
                        .map(|v| gv.tape().constant(v.value().zeros_like()))
                        .collect()
                };
                Ok(gs
                    .into_iter()
                    .zip(needs)
                    .map(|(g, &n)| n.then(|| Operand::Var(Box::new(g))))
                    .collect())
            }
        }
    };
    tape.record_at("checkpoint", site, value, &all, rule)
}

/// A checkpointed segment: a function of its inputs.
type Segment<T> = dyn Fn(&[Var<T>]) -> Result<Var<T>>;

/// The fast path's backward of a checkpoint: the segment runs again on a tape of its
/// own, from leaves holding the saved inputs, and that tape's backward gives the
/// contributions to the inputs and to the parameters.
fn rerun_fast<T: Element>(
    f: &Segment<T>,
    saved: &[Saved<T>],
    params: &[Param<T>],
    g: &chainrule_tensor::Tensor<T>,
    needs: &[bool],
) -> Result<Grads<T>> {
    let scratch = Tape::<T>::new();
    let xs: Vec<Var<T>> = saved
        .iter()
        .map(|s| scratch.leaf(s.value().clone()))
        .collect();
    let y = f(&xs)?;
    if !y.is_tracked() {
        return Ok(needs.iter().map(|_| None).collect());
    }
    let grads = y.backward_with(g)?;
    let mut out: Grads<T> = xs
        .iter()
        .zip(needs)
        .map(|(x, &n)| {
            n.then(|| grads.wrt(x).cloned().map(Operand::Tensor))
                .flatten()
        })
        .collect();
    out.extend(params.iter().zip(&needs[xs.len()..]).map(|(p, &n)| {
        n.then(|| grads.get(p).cloned().map(Operand::Tensor))
            .flatten()
    }));
    Ok(out)
}
