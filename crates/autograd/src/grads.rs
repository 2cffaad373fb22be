use std::collections::HashMap;

use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::{Param, ParamId, Var};

/// The gradients one backward pass delivered: one per [`Param`] used in the forward
/// pass (the sum over all its uses), and one per leaf or retained [`Var`].
///
/// Returning gradients, instead of adding them into the parameters as PyTorch does,
/// removes the forgotten-`zero_grad` bug: a new backward starts from nothing. To
/// accumulate over several passes (gradient accumulation), add them explicitly with
/// [`Gradients::accumulate`].
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0], &[1])?);
/// let tape = Tape::new();
/// let wv = tape.param(&w);
/// let loss = (&wv * &wv)?.sum();
/// let grads = loss.backward()?;
/// assert_eq!(grads.get(&w).unwrap().data(), &[6.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Gradients<T: Element = f32> {
    tape_id: u64,
    params: HashMap<ParamId, Tensor<T>>,
    vars: HashMap<usize, Tensor<T>>,
}

impl<T: Element> Gradients<T> {
    pub(crate) fn new(tape_id: u64) -> Self {
        Gradients {
            tape_id,
            params: HashMap::new(),
            vars: HashMap::new(),
        }
    }

    pub(crate) fn insert_param(&mut self, id: ParamId, g: Tensor<T>) {
        self.params.insert(id, g);
    }

    pub(crate) fn insert_var(&mut self, node: usize, g: Tensor<T>) {
        self.vars.insert(node, g);
    }

    /// The gradient of a parameter, or `None` if the loss did not depend on it.
    pub fn get(&self, param: &Param<T>) -> Option<&Tensor<T>> {
        self.params.get(&param.id())
    }

    /// The gradient by parameter id.
    pub fn get_by_id(&self, id: ParamId) -> Option<&Tensor<T>> {
        self.params.get(&id)
    }

    /// Removes and returns a parameter's gradient.
    pub fn take(&mut self, param: &Param<T>) -> Option<Tensor<T>> {
        self.params.remove(&param.id())
    }

    /// The gradient of a leaf var, or of an intermediate on which
    /// [`Var::retain_grad`] was called before backward.
    pub fn wrt(&self, var: &Var<T>) -> Option<&Tensor<T>> {
        if var.tape().id() != self.tape_id {
            return None;
        }
        self.vars.get(&var.node()?)
    }

    /// Adds another pass's parameter gradients into these (gradient accumulation).
    /// Var gradients are per tape and are not merged.
    ///
    /// # Errors
    /// A parameter's two gradients have different shapes.
    pub fn accumulate(&mut self, other: Gradients<T>) -> TensorResult<()> {
        for (id, g) in other.params {
            match self.params.get_mut(&id) {
                Some(acc) => acc.add_assign(&g)?,
                None => {
                    self.params.insert(id, g);
                }
            }
        }
        Ok(())
    }

    /// Multiplies every parameter gradient by `c` (for averaging accumulated passes).
    pub fn scale(&mut self, c: T) {
        for g in self.params.values_mut() {
            *g = g.scale(c);
        }
    }

    /// Parameter gradients, in no particular order.
    pub fn params(&self) -> impl Iterator<Item = (ParamId, &Tensor<T>)> {
        self.params.iter().map(|(k, v)| (*k, v))
    }

    /// Number of parameter gradients.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when no parameter received a gradient.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}
