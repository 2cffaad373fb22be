use std::collections::{BTreeMap, HashMap};

use chainrule_tensor::{Element, Tensor, TensorError, TensorResult};

use crate::{Param, ParamId, Var};

/// The gradients one backward pass delivered: one per [`Param`] used in the forward
/// pass (the sum over all its uses), and one per leaf or retained [`Var`].
///
/// Returning gradients, instead of adding them into the parameters as PyTorch does,
/// removes the forgotten-`zero_grad` bug: a new backward starts from nothing. To
/// accumulate over several passes (gradient accumulation), add them explicitly with
/// [`Gradients::accumulate`].
///
/// Gradients are editable per parameter ([`Gradients::get_mut`], [`Gradients::insert`],
/// [`Gradients::remove`]) and iterate in parameter-creation order, which is a model's
/// definition order; [`Gradients::flatten`] lays them out as one contiguous vector.
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
    // ordered: ParamIds are handed out in creation order
    params: BTreeMap<ParamId, Tensor<T>>,
    vars: HashMap<usize, Tensor<T>>,
}

impl<T: Element> Gradients<T> {
    pub(crate) fn new(tape_id: u64) -> Self {
        Gradients {
            tape_id,
            params: BTreeMap::new(),
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

    /// Removes a parameter's gradient (an optimizer then skips it, as PyTorch skips a
    /// `None` grad); the same as [`Gradients::take`].
    pub fn remove(&mut self, param: &Param<T>) -> Option<Tensor<T>> {
        self.take(param)
    }

    /// The gradient of a parameter, to edit in place (clip, mask).
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0, -4.0], &[2])?);
    /// let tape = Tape::new();
    /// let mut grads = tape.param(&w).square().sum().backward()?;
    /// for g in grads.get_mut(&w).unwrap().data_mut() {
    ///     *g = g.clamp(-1.0, 1.0); // clip_grad_value_
    /// }
    /// assert_eq!(grads.get(&w).unwrap().data(), &[1.0, -1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_mut(&mut self, param: &Param<T>) -> Option<&mut Tensor<T>> {
        self.params.get_mut(&param.id())
    }

    /// Sets a parameter's gradient, returning the one it replaces.
    ///
    /// # Errors
    /// [`TensorError::Shape`] when `grad`'s shape differs from the parameter's.
    pub fn insert(&mut self, param: &Param<T>, grad: Tensor<T>) -> TensorResult<Option<Tensor<T>>> {
        if grad.dims() != param.dims() {
            return Err(TensorError::Shape(format!(
                "gradient {} for a parameter of shape {:?}",
                grad.shape(),
                param.dims()
            )));
        }
        Ok(self.params.insert(param.id(), grad))
    }

    /// The gradients of `params`, in that order, as one contiguous vector (PyTorch's
    /// `parameters_to_vector` over `.grad`); a parameter without a gradient contributes
    /// zeros of its size. Data-parallel code all-reduces this buffer.
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let a = Param::new(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])?);
    /// let b = Param::new(Tensor::<f64>::from_vec(vec![5.0], &[1])?);
    /// let tape = Tape::new();
    /// let mut grads = tape.param(&a).square().sum().backward()?;
    /// let flat = grads.flatten(&[a.clone(), b.clone()])?;
    /// assert_eq!(flat.data(), &[2.0, 4.0, 0.0]); // b got no gradient
    /// grads.unflatten(&[a.clone(), b.clone()], &flat.scale(0.5))?;
    /// assert_eq!(grads.get(&b).unwrap().data(), &[0.0]);
    /// assert_eq!(grads.get(&a).unwrap().data(), &[1.0, 2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The total size is too large, or a gradient's shape differs from its parameter's.
    pub fn flatten(&self, params: &[Param<T>]) -> TensorResult<Tensor<T>> {
        // each parameter's shape read once, so a concurrent change cannot split a slice
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.dims()).collect();
        let mut total = 0usize;
        for dims in &shapes {
            let n: usize = dims.iter().product();
            total = total.checked_add(n).ok_or_else(|| TensorError::TooLarge {
                dims: vec![total, n],
            })?;
        }
        let mut flat = Tensor::zeros(&[total])?;
        let out = flat.data_mut();
        let mut at = 0;
        for (p, dims) in params.iter().zip(&shapes) {
            let n: usize = dims.iter().product();
            if let Some(g) = self.params.get(&p.id()) {
                if g.dims() != dims.as_slice() {
                    return Err(TensorError::Shape(format!(
                        "gradient {} for a parameter of shape {dims:?}",
                        g.shape()
                    )));
                }
                out[at..at + n].copy_from_slice(g.data());
            }
            at += n;
        }
        Ok(flat)
    }

    /// The inverse of [`Gradients::flatten`]: sets the gradient of each of `params`, in
    /// order, from consecutive slices of `flat`.
    ///
    /// # Errors
    /// `flat` is not 1-D with exactly the parameters' total size.
    pub fn unflatten(&mut self, params: &[Param<T>], flat: &Tensor<T>) -> TensorResult<()> {
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.dims()).collect();
        let total = shapes
            .iter()
            .try_fold(0usize, |a, d| a.checked_add(d.iter().product()));
        if flat.ndim() != 1 || total != Some(flat.numel()) {
            return Err(TensorError::Shape(format!(
                "a flat gradient {} for parameters of {} elements in all",
                flat.shape(),
                total.map_or("too many".to_string(), |t| t.to_string())
            )));
        }
        let mut at = 0;
        for (p, dims) in params.iter().zip(&shapes) {
            let n: usize = dims.iter().product();
            let piece = Tensor::from_vec(flat.data()[at..at + n].to_vec(), dims)?;
            self.params.insert(p.id(), piece);
            at += n;
        }
        Ok(())
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

    /// Parameter gradients, in parameter-creation order (a model's definition order).
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
