//! Data parallelism inside one process: a batch's micro-batches run forward and
//! backward on rayon threads, each on its own tape over the one shared model, and
//! their gradients are summed in a fixed tree order.

use chainrule_autograd::{Element, Gradients, Tape, Var};
use rayon::prelude::*;

use crate::{Error, ModuleState, Result};

/// Runs `loss(tape, micro)` for every micro-batch on rayon's threads, each on a tape
/// of its own, and returns `Σ wᵢ·lossᵢ` and `Σ wᵢ·∇lossᵢ` — with `lossᵢ` a mean over
/// micro-batch `i` and `wᵢ` its share of the batch's rows, the loss and gradient of the
/// whole batch.
///
/// The sum is a fixed pairwise tree over micro-batch indices ((0+1)+(2+3))…, so the
/// result is bitwise the same run to run and for every thread count, given the same
/// split; it differs from the unsplit batch only by the order of floating-point sums.
/// Kernel threads still run inside each micro-batch. Models run concurrently need only
/// be `Sync`, as every `ModuleState` is; models with buffers (BatchNorm's running
/// statistics) are refused, since every micro-batch would update them at once.
///
/// ```
/// use chainrule_autograd::{Reduction, Tensor};
/// use chainrule_nn::{layers::Linear, parallel, Module, ModuleState};
/// use rand::SeedableRng;
/// let net = Linear::<f64>::new(3, 2, &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let halves = [
///     (Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.5, 0.1, 0.2], &[2, 3])?, vec![0, 1]),
///     (Tensor::from_vec(vec![-1.0, 0.0, 2.0], &[1, 3])?, vec![1]),
/// ];
/// let (loss, grads) = parallel::micro_batch_gradients(&net, &halves, &[2.0 / 3.0, 1.0 / 3.0], |tape, (x, y)| {
///     net.forward(&tape.constant(x.clone()))?.cross_entropy(y, Reduction::Mean)
/// })?;
/// assert!(loss > 0.0 && grads.get(&net.weight).is_some());
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
///
/// # Errors
/// `weights` and `micro` differ in length, a weight is not finite, the model has
/// buffers, or a micro-batch's forward or backward fails (the first failure by index).
pub fn micro_batch_gradients<T, B, F>(
    model: &dyn ModuleState<T>,
    micro: &[B],
    weights: &[f64],
    loss: F,
) -> Result<(f64, Gradients<T>)>
where
    T: Element,
    B: Sync,
    F: Fn(&Tape<T>, &B) -> Result<Var<T>> + Sync,
{
    let invalid = |reason: String| Error::Invalid {
        what: "micro_batch_gradients",
        reason,
    };
    if micro.is_empty() || weights.len() != micro.len() {
        return Err(invalid(format!(
            "{} micro-batches and {} weights (one weight per micro-batch, at least one)",
            micro.len(),
            weights.len()
        )));
    }
    if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
        return Err(invalid(format!("weight {w} is not finite")));
    }
    if let Some((name, _)) = model.named_buffers().first() {
        return Err(invalid(format!(
            "the model has buffers ({name}): every micro-batch would update them at once"
        )));
    }
    let parts: Vec<Result<(f64, Gradients<T>)>> = micro
        .par_iter()
        .zip(weights)
        .map(|(b, &w)| {
            let tape = Tape::new();
            let l = loss(&tape, b)?;
            let value = l.value().item().map_or(f64::NAN, |v| v.to_f64());
            let mut g = l.backward()?;
            g.scale(T::from_f64(w));
            Ok((w * value, g))
        })
        .collect();
    let mut level = parts.into_iter().collect::<Result<Vec<_>>>()?;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some((la, mut ga)) = it.next() {
            if let Some((lb, gb)) = it.next() {
                ga.accumulate(gb)?;
                next.push((la + lb, ga));
            } else {
                next.push((la, ga));
            }
        }
        level = next;
    }
    Ok(level.pop().expect("at least one micro-batch"))
}
