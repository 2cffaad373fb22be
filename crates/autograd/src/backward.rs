//! The reverse pass: one loop over the tape, the one place where gradients are summed.

use chainrule_tensor::{Element, Shape, Tensor, TensorResult};
use smallvec::SmallVec;

use crate::tape::TapeInner;
use crate::{Error, Gradients, Result};

/// Runs the chain rule from record `root`, whose output gradient is `seed`.
pub(crate) fn run<T: Element>(
    tape: &TapeInner<T>,
    root: usize,
    seed: Tensor<T>,
) -> Result<Gradients<T>> {
    let mut nodes = tape.nodes.borrow_mut();
    let mut pending: Vec<Option<Tensor<T>>> = (0..=root).map(|_| None).collect();
    pending[root] = Some(seed);
    let mut out = Gradients::new(tape.id);
    // Creation order is a topological order, so one reverse loop visits every record
    // after all the records that use it. No recursion: depth costs no stack.
    for i in (0..=root).rev() {
        let Some(g) = pending[i].take() else { continue }; // not on the path to the root
        if nodes[i].freed {
            return Err(Error::GraphFreed {
                op: nodes[i].op,
                site: nodes[i].site,
            });
        }
        // The rule runs once: dropping it releases what it saved (inputs, outputs), so
        // memory falls as backward proceeds and parameters are no longer shared with
        // the tape when the optimizer updates them in place.
        let rule = nodes[i].rule.take();
        nodes[i].freed = rule.is_some();
        let node = &nodes[i];
        let Some(rule) = rule else {
            match node.param {
                Some(id) => out.insert_param(id, g),
                None if node.retain => out.insert_var(i, g),
                None => {}
            }
            continue;
        };
        let needs: SmallVec<[bool; 3]> = node.inputs.iter().map(Option::is_some).collect();
        let contributions = rule
            .backward(&g, &needs)
            .map_err(|source| Error::Backward {
                op: node.op,
                site: node.site,
                source,
            })?;
        if contributions.len() != node.inputs.len() {
            return Err(Error::Backward {
                op: node.op,
                site: node.site,
                source: chainrule_tensor::TensorError::Shape(format!(
                    "backward rule returned {} gradients for {} inputs",
                    contributions.len(),
                    node.inputs.len()
                )),
            });
        }
        if node.retain {
            out.insert_var(i, g);
        }
        for (input, contribution) in node.inputs.iter().zip(contributions) {
            if let (Some(j), Some(c)) = (*input, contribution) {
                accumulate(&mut pending[j], c, &nodes[j].shape).map_err(|source| {
                    Error::Backward {
                        op: node.op,
                        site: node.site,
                        source,
                    }
                })?;
            }
        }
    }
    Ok(out)
}

/// Adds one contribution to an input's gradient, first summing away any broadcast.
/// A value used k times receives k contributions here.
fn accumulate<T: Element>(
    slot: &mut Option<Tensor<T>>,
    contribution: Tensor<T>,
    shape: &Shape,
) -> TensorResult<()> {
    let c = if contribution.shape() == shape {
        contribution
    } else {
        contribution.sum_to(shape)?
    };
    match slot {
        None => *slot = Some(c),
        Some(acc) => acc.add_assign(&c)?,
    }
    Ok(())
}
