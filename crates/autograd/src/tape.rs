use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use chainrule_tensor::{Element, Shape, Tensor, TensorResult};
use smallvec::SmallVec;

use crate::anomaly::Anomaly;
use crate::hooks::VarHook;
use crate::{Error, Grads, Operand, Param, ParamId, Result, Site, Var};

/// What a first-order rule ([`Tape::record_first_order`]) returns: one optional
/// contribution per input, in input order.
pub type InputGrads<T> = SmallVec<[Option<Tensor<T>>; 3]>;

/// The chain rule of one recorded op: given the gradient of the op's output, return the
/// contribution to each input's gradient. `needs[i]` is false for inputs whose
/// contribution is not wanted (constants, or off the path to the inputs asked for);
/// those may be `None`.
///
/// The gradient and every value the rule computes with are [`Operand`]s: plain tensors
/// on the fast path, recorded [`Var`]s when the caller asked for `create_graph`, so one
/// rule body gives gradients of any order. Rules *return* contributions and never add
/// into shared state; the engine sums them.
/// Any `Fn(&Operand<T>, &[bool]) -> Result<Grads<T>>` closure is a rule.
pub trait BackwardRule<T: Element> {
    /// Computes the input contributions from the output gradient `grad`.
    ///
    /// # Errors
    /// A kernel error; the engine reports it with the op's name and recording line.
    fn backward(&self, grad: &Operand<T>, needs: &[bool]) -> Result<Grads<T>>;

    /// [`BackwardRule::backward`] handed the gradient itself, which the engine no
    /// longer needs: an elementwise rule may write its contribution into that buffer
    /// instead of a new one (when nothing else holds it), so a ReLU's backward costs
    /// no memory. The result must be the one `backward` gives, bit for bit.
    ///
    /// # Errors
    /// As [`BackwardRule::backward`].
    fn backward_owned(&self, grad: Operand<T>, needs: &[bool]) -> Result<Grads<T>> {
        self.backward(&grad, needs)
    }
}

impl<T: Element, F: Fn(&Operand<T>, &[bool]) -> Result<Grads<T>>> BackwardRule<T> for F {
    fn backward(&self, grad: &Operand<T>, needs: &[bool]) -> Result<Grads<T>> {
        self(grad, needs)
    }
}

/// A tensor-only rule: differentiable once. Asking for `create_graph` through it is
/// [`Error::NotDifferentiable`].
struct FirstOrder<F> {
    op: &'static str,
    site: Site,
    rule: F,
}

impl<T: Element, F: Fn(&Tensor<T>, &[bool]) -> TensorResult<InputGrads<T>>> BackwardRule<T>
    for FirstOrder<F>
{
    fn backward(&self, grad: &Operand<T>, needs: &[bool]) -> Result<Grads<T>> {
        match grad {
            Operand::Tensor(g) => Ok((self.rule)(g, needs)?
                .into_iter()
                .map(|c| c.map(Operand::Tensor))
                .collect()),
            Operand::Var(_) => Err(Error::NotDifferentiable {
                op: self.op,
                site: self.site,
            }),
        }
    }
}

/// The hooks on one record's gradient.
pub(crate) struct NodeHooks<T: Element> {
    /// [`Var::register_hook`]'s, in registration order.
    pub(crate) var: Vec<(Site, VarHook<T>)>,
    /// The parameter whose leaf this is, when it had hooks as it came onto the tape.
    pub(crate) param: Option<Param<T>>,
}

/// One record of the tape.
pub(crate) struct Node<T: Element> {
    pub(crate) op: &'static str,
    pub(crate) site: Site,
    /// Tape positions of the inputs, `None` for untracked inputs (constants).
    pub(crate) inputs: SmallVec<[Option<usize>; 3]>,
    /// `None` for leaves.
    pub(crate) rule: Option<Box<dyn BackwardRule<T>>>,
    pub(crate) param: Option<ParamId>,
    /// Hooks on this record's gradient; boxed, as almost no record has any.
    pub(crate) hooks: Option<Box<NodeHooks<T>>>,
    pub(crate) retain: bool,
    pub(crate) shape: Shape,
    /// Set when a backward pass ran this record's rule and dropped it with what it saved.
    pub(crate) freed: bool,
    /// `(dim, start)` when the value is a slice of the one input (`narrow`): the fast
    /// pass adds the gradient into that region of the input's sum instead of running the
    /// rule, whose zero-padded copy would cost the whole input per slice.
    pub(crate) slice: Option<(usize, usize)>,
}

/// Hashes a [`ParamId`], a sequential counter, by one multiplication (Fibonacci
/// hashing spreads consecutive ids over the table); `tape.param` looks one up per
/// parameter per step, where SipHash showed in profiles.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) struct TapeInner<T: Element> {
    pub(crate) id: u64,
    pub(crate) nodes: RefCell<Vec<Node<T>>>,
    grad_enabled: Cell<bool>,
    params: RefCell<HashMap<ParamId, usize, BuildHasherDefault<IdHasher>>>,
    /// While a recorded backward runs a rule, the line that recorded the op being
    /// differentiated: the records the rule makes carry it, not the library's.
    pub(crate) backward_site: Cell<Option<Site>>,
    /// On a checkpoint's scratch tape: every parameter brought in, in order.
    pub(crate) used_params: RefCell<Option<Vec<Param<T>>>>,
    /// Anomaly mode on ([`Tape::detect_anomaly`]), and the first anomaly it found.
    pub(crate) anomaly_mode: Cell<bool>,
    pub(crate) anomaly: RefCell<Option<Anomaly>>,
}

/// The record of one forward pass, in creation order.
///
/// Every op on a tracked [`Var`] computes its value at once and appends a record: the
/// op's name, its inputs, its backward rule with what the rule needs, and the caller's
/// source line. [`Var::backward`] walks the records once, in reverse.
///
/// A `Tape` is a cheap handle (clones share the same record); make a new one per
/// training step. Parameters live outside it and are brought in with [`Tape::param`].
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(vec![2.0], &[1])?);
/// let y = (&x * &x)?.sum();
/// assert_eq!(y.backward()?.wrt(&x).unwrap().data(), &[4.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tape<T: Element = f32> {
    pub(crate) inner: Rc<TapeInner<T>>,
}

impl<T: Element> Clone for Tape<T> {
    fn clone(&self) -> Self {
        Tape {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Tape {
            inner: Rc::new(TapeInner {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                nodes: RefCell::new(Vec::new()),
                grad_enabled: Cell::new(true),
                params: RefCell::new(HashMap::default()),
                backward_site: Cell::new(None),
                used_params: RefCell::new(None),
                anomaly_mode: Cell::new(false),
                anomaly: RefCell::new(None),
            }),
        }
    }

    /// A unique number for this tape.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.inner.nodes.borrow().len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A tracked input: its gradient is reported by [`crate::Gradients::wrt`].
    #[track_caller]
    pub fn leaf(&self, value: Tensor<T>) -> Var<T> {
        let site = Site::caller();
        self.watch("leaf", site, &value, "input");
        let node = self.push_leaf("leaf", site, value.shape().clone(), None, true);
        Var::new(self.clone(), node, value)
    }

    /// An untracked value (data, labels, targets): no record, no gradient.
    pub fn constant(&self, value: Tensor<T>) -> Var<T> {
        Var::new(self.clone(), None, value)
    }

    /// Brings a parameter onto the tape. Repeated calls return the same record, so
    /// every use of the parameter feeds one gradient, the sum of the uses'. A frozen
    /// parameter ([`Param::set_requires_grad`]) comes in as a constant.
    #[track_caller]
    pub fn param(&self, param: &Param<T>) -> Var<T> {
        let value = param.value();
        if !param.requires_grad() {
            return self.constant(value);
        }
        if let Some(&node) = self.inner.params.borrow().get(&param.id()) {
            return Var::new(self.clone(), Some(node), value);
        }
        if let Some(used) = self.inner.used_params.borrow_mut().as_mut() {
            if !used.iter().any(|p| p.id() == param.id()) {
                used.push(param.clone());
            }
        }
        let site = Site::caller();
        self.watch("param", site, &value, "parameter");
        let node = self.push_leaf(
            "param",
            site,
            value.shape().clone(),
            Some(param.id()),
            false,
        );
        if let (Some(n), true) = (node, param.has_hooks()) {
            self.inner.nodes.borrow_mut()[n].hooks = Some(Box::new(NodeHooks {
                var: Vec::new(),
                param: Some(param.clone()),
            }));
        }
        if let Some(n) = node {
            self.inner.params.borrow_mut().insert(param.id(), n);
        }
        Var::new(self.clone(), node, value)
    }

    /// True when `param` has been brought onto this tape ([`Tape::param`]) and is
    /// tracked (not frozen), so backward may deliver its gradient. Data-parallel
    /// training uses it to settle, before backward starts, the parameters that cannot
    /// get a gradient from this tape.
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tape, Tensor};
    /// let (a, b) = (Param::new(Tensor::<f64>::ones(&[2])?), Param::new(Tensor::ones(&[2])?));
    /// let tape = Tape::new();
    /// let _ = tape.param(&a);
    /// assert!(tape.has_param(&a) && !tape.has_param(&b));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn has_param(&self, param: &Param<T>) -> bool {
        self.inner.params.borrow().contains_key(&param.id())
    }

    /// [`Tape::param`] for an optional parameter (a layer's bias).
    #[track_caller]
    pub fn param_opt(&self, param: Option<&Param<T>>) -> Option<Var<T>> {
        // a `match`, not `.map(..)`: a closure would hide the caller's line
        match param {
            Some(p) => Some(self.param(p)),
            None => None,
        }
    }

    fn push_leaf(
        &self,
        op: &'static str,
        site: Site,
        shape: Shape,
        param: Option<ParamId>,
        retain: bool,
    ) -> Option<usize> {
        if !self.inner.grad_enabled.get() {
            return None;
        }
        let mut nodes = self.inner.nodes.borrow_mut();
        nodes.push(Node {
            op,
            site,
            inputs: SmallVec::new(),
            rule: None,
            param,
            hooks: None,
            retain,
            shape,
            freed: false,
            slice: None,
        });
        Some(nodes.len() - 1)
    }

    /// Stops recording until the returned guard is dropped: ops then compute values
    /// only, as under PyTorch's `torch.no_grad()`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.leaf(Tensor::ones(&[2])?);
    /// {
    ///     let _off = tape.no_grad();
    ///     let y = x.exp();
    ///     assert!(!y.is_tracked());
    /// }
    /// assert!(x.exp().is_tracked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn no_grad(&self) -> NoGradGuard<T> {
        let previous = self.inner.grad_enabled.replace(false);
        NoGradGuard {
            tape: self.clone(),
            previous,
        }
    }

    /// True while ops are recorded.
    pub fn is_grad_enabled(&self) -> bool {
        self.inner.grad_enabled.get()
    }

    /// Records an op whose value is already computed, with its rule: how a user adds
    /// an op of their own. The record names the caller's line. Written over
    /// [`Operand`]s, the rule serves first order and, recorded, every higher order.
    ///
    /// ```
    /// use chainrule_autograd::{Grads, Operand, Saved, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// // cube(x) with its rule 3x²·g
    /// let xs = Saved::of(&x);
    /// let y = tape.record("cube", x.value().map(|v| v * v * v), &[&x],
    ///     move |g: &Operand<f64>, _: &[bool]| {
    ///         let x = g.load(&xs);
    ///         Ok(Grads::from_iter([Some(g.mul(&x.mul(&x)?)?.scale(3.0))]))
    ///     })?;
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[3.0, 12.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TapeMismatch`] when an input belongs to another tape.
    #[track_caller]
    pub fn record(
        &self,
        op: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        rule: impl BackwardRule<T> + 'static,
    ) -> Result<Var<T>> {
        self.record_at(op, Site::caller(), value, inputs, rule)
    }

    /// [`Tape::record`] with a tensor-only rule, as fast as a hand-written kernel but
    /// differentiable once: `create_graph` through it is [`Error::NotDifferentiable`].
    ///
    /// ```
    /// use chainrule_autograd::{InputGrads, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let xv = x.value().clone();
    /// let y = tape.record_first_order("cube", x.value().map(|v| v * v * v), &[&x],
    ///     move |g: &Tensor<f64>, _: &[bool]| Ok(InputGrads::from_iter([Some(g.zip_map(&xv, |g, x| 3.0 * x * x * g)?)])))?;
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[3.0, 12.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TapeMismatch`] when an input belongs to another tape.
    #[track_caller]
    pub fn record_first_order(
        &self,
        op: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        rule: impl Fn(&Tensor<T>, &[bool]) -> TensorResult<InputGrads<T>> + 'static,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        self.record_at(op, site, value, inputs, FirstOrder { op, site, rule })
    }

    /// [`Tape::record`] at a given site: the built-in ops pass their caller's line.
    pub(crate) fn record_at(
        &self,
        op: &'static str,
        site: Site,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        rule: impl BackwardRule<T> + 'static,
    ) -> Result<Var<T>> {
        self.record_node(op, site, value, inputs, rule, None)
    }

    /// [`Tape::record_at`] for a value that is the slice `start..` of `dim` of its one
    /// input; `rule` must be that slice's adjoint (zero-padding), which the recorded
    /// pass still runs.
    pub(crate) fn record_slice_at(
        &self,
        op: &'static str,
        site: Site,
        value: Tensor<T>,
        input: &Var<T>,
        (dim, start): (usize, usize),
        rule: impl BackwardRule<T> + 'static,
    ) -> Result<Var<T>> {
        self.record_node(op, site, value, &[input], rule, Some((dim, start)))
    }

    fn record_node(
        &self,
        op: &'static str,
        site: Site,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        rule: impl BackwardRule<T> + 'static,
        slice: Option<(usize, usize)>,
    ) -> Result<Var<T>> {
        self.check_inputs(op, site, inputs)?;
        let site = self.inner.backward_site.get().unwrap_or(site);
        self.watch(op, site, &value, "output");
        let ids: SmallVec<[Option<usize>; 3]> = inputs.iter().map(|v| v.node()).collect();
        if !self.inner.grad_enabled.get() || ids.iter().all(Option::is_none) {
            return Ok(Var::new(self.clone(), None, value));
        }
        let mut nodes = self.inner.nodes.borrow_mut();
        nodes.push(Node {
            op,
            site,
            inputs: ids,
            rule: Some(Box::new(rule)),
            param: None,
            hooks: None,
            retain: false,
            shape: value.shape().clone(),
            freed: false,
            slice,
        });
        let node = nodes.len() - 1;
        drop(nodes);
        Ok(Var::new(self.clone(), Some(node), value))
    }

    /// Fails with [`Error::TapeMismatch`] unless every input is on this tape.
    pub(crate) fn check_inputs(
        &self,
        op: &'static str,
        site: Site,
        inputs: &[&Var<T>],
    ) -> Result<()> {
        if inputs.iter().any(|v| v.tape().id() != self.id()) {
            return Err(Error::TapeMismatch { op, site });
        }
        Ok(())
    }

    pub(crate) fn add_hook(&self, node: usize, site: Site, hook: VarHook<T>) {
        let mut nodes = self.inner.nodes.borrow_mut();
        let hooks = nodes[node].hooks.get_or_insert_with(|| {
            Box::new(NodeHooks {
                var: Vec::new(),
                param: None,
            })
        });
        hooks.var.push((site, hook));
    }

    pub(crate) fn set_retain(&self, node: usize) {
        self.inner.nodes.borrow_mut()[node].retain = true;
    }

    /// The op name, shape, call site and inputs of every record, in order: what a
    /// debugger or [`Tape::to_dot`] shows.
    pub fn records(&self) -> Vec<RecordInfo> {
        self.inner
            .nodes
            .borrow()
            .iter()
            .map(|n| RecordInfo {
                op: n.op,
                shape: n.shape.clone(),
                site: n.site,
                inputs: n.inputs.iter().flatten().copied().collect(),
                is_param: n.param.is_some(),
            })
            .collect()
    }

    /// The tape as a Graphviz DOT graph: one node per record (op, shape, source line),
    /// one edge per input. A parameter used several times shows as one node with
    /// several outgoing edges.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.leaf(Tensor::ones(&[2])?);
    /// let _y = x.exp();
    /// assert!(tape.to_dot().contains("exp"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_dot(&self) -> String {
        let mut s = String::from(
            "digraph tape {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, r) in self.records().iter().enumerate() {
            let file = r.site.location().file().rsplit('/').next().unwrap_or("");
            let style = if r.is_param {
                ", style=filled, fillcolor=\"#ffe9a8\""
            } else {
                ""
            };
            s += &format!(
                "  n{i} [label=\"#{i} {}\\n{}\\n{}:{}\"{style}];\n",
                r.op,
                r.shape,
                file,
                r.site.location().line()
            );
            for j in &r.inputs {
                s += &format!("  n{j} -> n{i};\n");
            }
        }
        s + "}\n"
    }
}

/// One record as seen from outside the engine.
#[derive(Clone, Debug)]
pub struct RecordInfo {
    /// The op's name.
    pub op: &'static str,
    /// The output's shape.
    pub shape: Shape,
    /// The line that recorded it.
    pub site: Site,
    /// Tape positions of its tracked inputs.
    pub inputs: Vec<usize>,
    /// True for a parameter's leaf.
    pub is_param: bool,
}

/// Re-enables recording when dropped; see [`Tape::no_grad`].
pub struct NoGradGuard<T: Element> {
    tape: Tape<T>,
    previous: bool,
}

impl<T: Element> Drop for NoGradGuard<T> {
    fn drop(&mut self) {
        self.tape.inner.grad_enabled.set(self.previous);
    }
}
