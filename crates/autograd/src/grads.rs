use std::collections::HashMap;

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
    params: IdMap<Tensor<T>>,
    vars: HashMap<usize, Tensor<T>>,
}

/// A map from parameter to gradient, kept as a vector sorted by id: backward appends
/// (in reverse tape order) and sorts once, where a `BTreeMap` paid a node insertion per
/// parameter (W6: 2000 per step); lookups are binary searches.
#[derive(Clone, Debug)]
struct IdMap<V>(Vec<(ParamId, V)>);

impl<V> IdMap<V> {
    fn find(&self, id: ParamId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |e| e.0)
    }

    fn get(&self, id: &ParamId) -> Option<&V> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, id: &ParamId) -> Option<&mut V> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, id: ParamId, v: V) -> Option<V> {
        match self.find(id) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, v)),
            Err(i) => {
                self.0.insert(i, (id, v));
                None
            }
        }
    }

    fn remove(&mut self, id: &ParamId) -> Option<V> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }

    /// Appends without keeping the order; [`IdMap::sort`] restores it.
    fn push(&mut self, id: ParamId, v: V) {
        self.0.push((id, v));
    }

    /// Sorts after `push`es (each parameter is delivered once per pass).
    fn sort(&mut self) {
        self.0.sort_unstable_by_key(|e| e.0);
    }

    fn iter(&self) -> impl Iterator<Item = (&ParamId, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> IntoIterator for IdMap<V> {
    type Item = (ParamId, V);
    type IntoIter = std::vec::IntoIter<(ParamId, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Element> Gradients<T> {
    pub(crate) fn new(tape_id: u64) -> Self {
        Gradients {
            tape_id,
            params: IdMap(Vec::new()),
            vars: HashMap::new(),
        }
    }

    /// Adds a parameter's gradient during backward; [`Gradients::seal`] orders them.
    pub(crate) fn insert_param(&mut self, id: ParamId, g: Tensor<T>) {
        self.params.push(id, g);
    }

    /// Restores parameter order after backward's `insert_param`s.
    pub(crate) fn seal(&mut self) {
        self.params.sort();
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
