//! The reverse pass: one loop over the tape, the one place where gradients are summed.

use chainrule_tensor::{Element, Shape, Tensor};
use smallvec::SmallVec;

use crate::anomaly;
use crate::hooks::{self, HookRef};
use crate::tape::Node;
use crate::{Error, Operand, Param, ParamId, Result, Site, Tape};

/// One record's final gradient, handed to the caller as the loop passes it.
pub(crate) struct Reached<'a, T: Element> {
    pub(crate) node: usize,
    pub(crate) param: Option<ParamId>,
    /// The parameter, when it has hooks (for its post-accumulate hooks).
    pub(crate) hooked: Option<&'a Param<T>>,
    pub(crate) retain: bool,
    pub(crate) grad: &'a Operand<T>,
}

/// What one pass does besides the chain rule.
pub(crate) struct Pass<'a> {
    /// Records that lead to an input asked for; `None`: every record (a full backward).
    pub(crate) reach: Option<&'a [bool]>,
    /// Keep every rule for another pass instead of freeing what it saved.
    pub(crate) retain_graph: bool,
}

/// Runs the chain rule from the records in `seeds`, each with its output gradient, and
/// hands every record's final gradient to `deliver`. The seeds' kind decides the pass:
/// tensors for the fast path, `Var`s to record the backward computation itself.
pub(crate) fn run<T: Element>(
    tape: &Tape<T>,
    seeds: Vec<(usize, Operand<T>)>,
    pass: Pass<'_>,
    mut deliver: impl FnMut(Reached<'_, T>),
) -> Result<()> {
    let Some(root) = seeds.iter().map(|s| s.0).max() else {
        return Ok(());
    };
    tape.anomaly()?;
    let recorded = seeds.iter().any(|s| s.1.is_recorded());
    let inner = &tape.inner;
    let watch = inner.anomaly_mode.get();
    let shape_of = |i: usize| inner.nodes.borrow()[i].shape.clone();
    let mut pending: Vec<Option<Operand<T>>> = (0..=root).map(|_| None).collect();
    for (i, seed) in seeds {
        accumulate(&mut pending[i], seed, &shape_of(i), recorded).map_err(|e| {
            let nodes = inner.nodes.borrow();
            in_backward(e, &nodes[i])
        })?;
    }
    // Creation order is a topological order, so one reverse loop visits every record
    // after all the records that use it. No recursion: depth costs no stack. A
    // recorded pass appends records past `root`, which this loop never visits.
    //
    // The records stay borrowed through the loop; the borrow is let go only while user
    // hooks run and, on a recorded pass, while rules and sums record new ops.
    let mut nodes = inner.nodes.borrow_mut();
    for i in (0..=root).rev() {
        let Some(mut g) = pending[i].take() else {
            continue;
        }; // not on the path to a seed
        if has_hooks(&nodes[i]) {
            drop(nodes);
            g = run_hooks(tape, i, g)?;
            nodes = inner.nodes.borrow_mut();
        }
        let node = &mut nodes[i];
        if node.freed {
            return Err(Error::GraphFreed {
                op: node.op,
                site: node.site,
            });
        }
        deliver(Reached {
            node: i,
            param: node.param,
            hooked: node.hooks.as_ref().and_then(|h| h.param.as_ref()),
            retain: node.retain,
            grad: &g,
        });
        let Some(rule) = node.rule.take() else {
            continue;
        }; // a leaf
           // Without retain_graph the rule runs once: dropping it releases what it saved,
           // so memory falls as backward proceeds and parameters are no longer shared
           // with the tape when the optimizer updates them.
        node.freed = !pass.retain_graph;
        let wanted = |j: &Option<usize>| j.is_some_and(|j| pass.reach.is_none_or(|r| r[j]));
        let needs: SmallVec<[bool; 3]> = node.inputs.iter().map(wanted).collect();
        if !needs.contains(&true) {
            if pass.retain_graph {
                node.rule = Some(rule);
            }
            continue;
        }
        let (op, site) = (node.op, node.site);
        let at = |e: Error| in_backward_at(e, op, site);
        if let (Some(slice), false, Operand::Tensor(part), Some(j)) =
            (node.slice, recorded, &g, node.inputs[0])
        {
            if pass.retain_graph {
                node.rule = Some(rule);
            }
            if let Some(kind) = watch.then(|| anomaly::non_finite(part)).flatten() {
                return Err(Error::Anomaly {
                    op,
                    site,
                    what: format!("{kind} in the gradient for input 0"),
                });
            }
            accumulate_slice(&mut pending[j], part, &nodes[j].shape, slice).map_err(at)?;
            continue;
        }
        let result = if recorded {
            drop(nodes);
            // the records this rule makes name the line that recorded the op
            let outer = inner.backward_site.replace(Some(site));
            let result = rule.backward(&g, &needs);
            inner.backward_site.set(outer);
            nodes = inner.nodes.borrow_mut();
            result
        } else {
            rule.backward_owned(g, &needs)
        };
        if pass.retain_graph {
            nodes[i].rule = Some(rule);
        } else {
            drop(rule);
        }
        let contributions = result.map_err(at)?;
        if contributions.len() != needs.len() {
            return Err(Error::Backward {
                op,
                site,
                source: chainrule_tensor::TensorError::Shape(format!(
                    "backward rule returned {} gradients for {} inputs",
                    contributions.len(),
                    needs.len()
                )),
            });
        }
        for (k, c) in contributions.into_iter().enumerate() {
            let (Some(j), Some(c), true) = (nodes[i].inputs[k], c, needs[k]) else {
                continue;
            };
            if let Some(kind) = watch.then(|| anomaly::non_finite(c.value())).flatten() {
                return Err(Error::Anomaly {
                    op,
                    site,
                    what: format!("{kind} in the gradient for input {k}"),
                });
            }
            if recorded {
                // the sum is itself recorded
                let shape = nodes[j].shape.clone();
                drop(nodes);
                accumulate(&mut pending[j], c, &shape, recorded).map_err(at)?;
                nodes = inner.nodes.borrow_mut();
            } else {
                accumulate(&mut pending[j], c, &nodes[j].shape, recorded).map_err(at)?;
            }
        }
    }
    Ok(())
}

/// Records that lie on a path from a wanted record up to `root`: the only ones a
/// `grad` call needs to run.
pub(crate) fn reach<T: Element>(tape: &Tape<T>, root: usize, wanted: &[usize]) -> Vec<bool> {
    let nodes = tape.inner.nodes.borrow();
    let mut reach = vec![false; root + 1];
    wanted
        .iter()
        .filter(|&&w| w <= root)
        .for_each(|&w| reach[w] = true);
    for i in 0..=root {
        if !reach[i] {
            reach[i] = nodes[i].inputs.iter().flatten().any(|&j| reach[j]);
        }
    }
    reach
}

/// True when record `node`'s gradient has hooks to run.
fn has_hooks<T: Element>(node: &Node<T>) -> bool {
    node.hooks.is_some()
}

/// Applies the hooks on record `i`'s gradient: the value's own, then its parameter's.
fn run_hooks<T: Element>(tape: &Tape<T>, i: usize, g: Operand<T>) -> Result<Operand<T>> {
    let (var_hooks, param_hooks, shape, op) = {
        let nodes = tape.inner.nodes.borrow();
        let node = &nodes[i];
        let Some(hooks) = &node.hooks else {
            return Ok(g);
        };
        let param_hooks = hooks.param.as_ref().map(Param::grad_hooks);
        (
            hooks.var.clone(),
            param_hooks.unwrap_or_default(),
            node.shape.clone(),
            node.op,
        )
    };
    // no borrow is held while user code runs
    let all = var_hooks
        .iter()
        .map(|(s, h)| -> HookRef<'_, T> { (*s, &**h) })
        .chain(
            param_hooks
                .iter()
                .map(|(s, h)| -> HookRef<'_, T> { (*s, &**h) }),
        );
    let out = hooks::apply(all, g.value().clone(), &shape, op)?;
    Ok(match &g {
        Operand::Tensor(_) => Operand::Tensor(out),
        Operand::Var(_) if out.same_buffer(g.value()) => g,
        Operand::Var(_) => g.constant(out),
    })
}

fn in_backward<T: Element>(e: Error, node: &Node<T>) -> Error {
    in_backward_at(e, node.op, node.site)
}

/// A kernel error inside a rule, reported with the op and the line that recorded it.
fn in_backward_at(e: Error, op: &'static str, site: Site) -> Error {
    match e {
        Error::Op { source, .. } | Error::Tensor(source) => Error::Backward { op, site, source },
        other => other,
    }
}

/// Adds one contribution to an input's gradient, first summing away any broadcast.
/// A value used k times receives k contributions here.
fn accumulate<T: Element>(
    slot: &mut Option<Operand<T>>,
    contribution: Operand<T>,
    shape: &Shape,
    recorded: bool,
) -> Result<()> {
    // a fast pass stays on tensors whatever a rule returns
    let c = match contribution {
        Operand::Var(v) if !recorded => Operand::Tensor(v.value().clone()),
        c => c,
    };
    let c = if c.shape() == shape {
        c
    } else {
        c.sum_to(shape)?
    };
    match (slot.as_mut(), c) {
        (None, c) => *slot = Some(c),
        (Some(Operand::Tensor(acc)), Operand::Tensor(c)) => acc.add_assign(&c)?,
        (Some(acc), c) => *acc = acc.add(&c)?,
    }
    Ok(())
}

/// Adds the gradient of a slice (`Node::slice`) into the region of its input's sum it
/// came from; the first contribution is the zero-padded slice, as the rule would give.
fn accumulate_slice<T: Element>(
    slot: &mut Option<Operand<T>>,
    part: &Tensor<T>,
    shape: &Shape,
    (dim, start): (usize, usize),
) -> Result<()> {
    match slot {
        Some(Operand::Tensor(acc)) => acc.add_narrowed(part, dim, start)?,
        Some(acc) => *acc = acc.add(&Operand::Tensor(part.unnarrow(shape, dim, start)?))?,
        None => *slot = Some(Operand::Tensor(part.unnarrow(shape, dim, start)?)),
    }
    Ok(())
}
