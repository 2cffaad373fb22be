//! Differentiable collectives: ops on the tape whose backward rule is a collective too.

use chainrule_autograd::{InputGrads, Tensor, Var};

use crate::{Result, Wire, World};

/// The element-wise sum of `x` over every rank, recorded on `x`'s tape
/// (`torch.distributed.nn.all_reduce`). Each rank's output feeds that rank's loss, and
/// the objective is their sum, so the gradient reaching each rank's `x` is the sum of
/// every rank's output gradient: backward all-reduces too. Every rank must call it,
/// and run its backward, in the same order (the building block of synchronized batch
/// statistics).
///
/// ```no_run
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_distributed::{all_reduce, World};
/// let world = World::init()?;
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(vec![world.rank() as f64 + 1.0], &[1])?);
/// let total = all_reduce(&world, &x)?; // Σ over ranks of (rank + 1)
/// let grads = total.square().sum().backward()?; // d/dx Σ_ranks total² = size · 2 · total
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Ranks pass different lengths, or the communication thread has stopped. A failure of
/// the backward all-reduce ends the job on every rank ([`World::abort`]): a rule cannot
/// return a communication error, and this rank's peers would wait for it.
#[track_caller]
pub fn all_reduce<T: Wire>(world: &World, x: &Var<T>) -> Result<Var<T>> {
    let sum = world.all_reduce_sum(x.value().data().to_vec())?;
    let value = Tensor::from_vec(sum, x.value().dims())?;
    let world = world.clone();
    let dims = x.value().dims().to_vec();
    Ok(x.tape()
        .record_first_order("all_reduce", value, &[x], move |g: &Tensor<T>, _| {
            let sum = world
                .all_reduce_sum(g.data().to_vec())
                .unwrap_or_else(|e| world.abort(&e));
            Ok(InputGrads::from_iter([Some(Tensor::from_vec(sum, &dims)?)]))
        })?)
}
