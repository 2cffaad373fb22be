use std::ops::{Add, Div, Mul, Neg, Sub};

use chainrule_tensor::{Element, Shape, Tensor};

use crate::backward::{self, Pass};
use crate::error::InOp;
use crate::{Error, Gradients, Operand, Result, Site, Tape};

/// A value in a forward pass: its tensor, and (when tracked) its record on a [`Tape`].
///
/// Ops are methods (`x.matmul(&w)?.relu()`); each computes its value at once and
/// records itself. Elementwise arithmetic also has operator sugar returning `Result`,
/// with impls on `Result<Var>` so expressions chain: `(&a * &b + &c)?`. (Rust's orphan
/// rule forbids `Result<Var> + Result<Var>`; write `(a? + b?)` or `(&a * &b)? + (...)`.)
///
/// Cloning a `Var` is cheap and refers to the same record.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let a = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
/// let b = tape.leaf(Tensor::from_vec(vec![3.0, 4.0], &[2])?);
/// let y = (&a * &b + &a)?.sum();
/// let g = y.backward()?;
/// assert_eq!(g.wrt(&a).unwrap().data(), &[4.0, 5.0]);
/// assert_eq!(g.wrt(&b).unwrap().data(), &[1.0, 2.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Var<T: Element = f32> {
    tape: Tape<T>,
    node: Option<usize>,
    value: Tensor<T>,
}

impl<T: Element> Var<T> {
    pub(crate) fn new(tape: Tape<T>, node: Option<usize>, value: Tensor<T>) -> Self {
        Var { tape, node, value }
    }

    /// The computed value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &Shape {
        self.value.shape()
    }

    /// The value's dims.
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }

    /// The tape this value belongs to.
    pub fn tape(&self) -> &Tape<T> {
        &self.tape
    }

    /// Position of this value's record on the tape, if tracked.
    pub fn node(&self) -> Option<usize> {
        self.node
    }

    /// True when gradients can flow through this value.
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The same value cut off from the tape: no gradient flows through it.
    pub fn detach(&self) -> Var<T> {
        Var {
            tape: self.tape.clone(),
            node: None,
            value: self.value.clone(),
        }
    }

    /// Asks backward to report this intermediate's gradient in
    /// [`Gradients::wrt`] (leaves and parameters are always reported).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::ones(&[3])?);
    /// let h = x.exp();
    /// h.retain_grad();
    /// let g = h.sum().backward()?;
    /// assert_eq!(g.wrt(&h).unwrap().data(), &[1.0; 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retain_grad(&self) {
        if let Some(n) = self.node {
            self.tape.set_retain(n);
        }
    }

    /// Registers a hook that backward calls with this value's gradient once every use
    /// of the value has been summed: `None` keeps the gradient, `Some(g)` replaces it
    /// for everything before this value (PyTorch's `tensor.register_hook`). Hooks run
    /// in registration order. On a `create_graph` pass the hook sees the gradient's
    /// value, and a replacement enters the recorded graph as a constant.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let h = x.exp();
    /// h.register_hook(|g| Some(g.scale(0.0)))?; // stop the gradient here
    /// let y = (&h + &x)?.sum();
    /// assert_eq!(y.backward()?.wrt(&x).unwrap().data(), &[1.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::HookOnUntracked`] for a value no gradient flows through. A replacement
    /// of another shape makes backward fail with [`Error::HookShape`], naming the line
    /// that registered the hook.
    #[track_caller]
    pub fn register_hook(
        &self,
        hook: impl Fn(&Tensor<T>) -> Option<Tensor<T>> + 'static,
    ) -> Result<()> {
        let site = Site::caller();
        let node = self.node.ok_or(Error::HookOnUntracked { site })?;
        self.tape.add_hook(node, site, std::rc::Rc::new(hook));
        Ok(())
    }

    /// Backpropagates from this one-element value (a loss), seeding its gradient with 1.
    ///
    /// Like PyTorch, backward frees what each record saved as it goes: memory falls
    /// during the pass, and parameters are no longer shared with the tape when an
    /// optimizer updates them. A second backward through the same records is an error
    /// ([`Error::GraphFreed`]) unless the first kept them
    /// ([`BackwardOptions::retain_graph`]). For gradients that can be differentiated
    /// again, use [`crate::grad`] with `create_graph`.
    ///
    /// # Errors
    /// The value has more than one element or is not tracked, a backward rule fails
    /// (reported with the line that recorded the op), or the records were already used.
    #[track_caller]
    pub fn backward(&self) -> Result<Gradients<T>> {
        self.backward_with_options(None, BackwardOptions::default())
    }

    /// Backpropagates from this value with a given output gradient (a vector-Jacobian
    /// product).
    ///
    /// # Errors
    /// `grad`'s shape differs from the value's, the value is not tracked, or a rule fails.
    #[track_caller]
    pub fn backward_with(&self, grad: &Tensor<T>) -> Result<Gradients<T>> {
        self.backward_with_options(Some(grad), BackwardOptions::default())
    }

    /// Backpropagates with an optional output gradient (`None`: 1 for a one-element
    /// value) and [`BackwardOptions`].
    ///
    /// ```
    /// use chainrule_autograd::{BackwardOptions, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![3.0], &[1])?);
    /// let y = x.square().sum();
    /// let keep = BackwardOptions { retain_graph: true };
    /// let first = y.backward_with_options(None, keep)?;
    /// let second = y.backward()?; // walks the same records again
    /// assert_eq!(first.wrt(&x).unwrap().data(), second.wrt(&x).unwrap().data());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::backward`] and [`Var::backward_with`].
    #[track_caller]
    pub fn backward_with_options(
        &self,
        grad: Option<&Tensor<T>>,
        options: BackwardOptions,
    ) -> Result<Gradients<T>> {
        let site = Site::caller();
        let call = |reason: String| Error::BackwardCall { site, reason };
        let seed = match grad {
            Some(g) if g.shape() != self.shape() => {
                return Err(call(format!(
                    "gradient shape {} differs from the value's {}",
                    g.shape(),
                    self.shape()
                )))
            }
            Some(g) => g.clone(),
            None if self.value.numel() != 1 => {
                return Err(call(format!(
                    "the loss must have one element, got shape {} (use backward_with)",
                    self.shape()
                )))
            }
            None => Tensor::full(self.dims(), T::ONE).in_op("backward", site)?,
        };
        let Some(root) = self.node else {
            return Err(call("the value does not depend on any parameter or leaf (it was computed from constants, detached, or under no_grad)"
                    .into()));
        };
        let mut out = Gradients::new(self.tape.id());
        let pass = Pass {
            reach: None,
            retain_graph: options.retain_graph,
        };
        backward::run(
            &self.tape,
            vec![(root, Operand::Tensor(seed))],
            pass,
            |r| match r.param {
                Some(id) => {
                    out.insert_param(id, r.grad.value().clone());
                    if let Some(p) = r.hooked {
                        p.post_hooks().iter().for_each(|h| h(r.grad.value()));
                    }
                }
                None if r.retain => out.insert_var(r.node, r.grad.value().clone()),
                None => {}
            },
        )?;
        out.seal();
        Ok(out)
    }
}

/// Options of [`Var::backward_with_options`], as PyTorch's `backward`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackwardOptions {
    /// Keep every record's rule and saved values so another backward can walk them.
    pub retain_graph: bool,
}

impl<T: Element> std::fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(node {:?}, {:?})", self.node, self.value)
    }
}

macro_rules! binary_sugar {
    ($trait:ident, $method:ident) => {
        impl<T: Element> $trait<&Var<T>> for &Var<T> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Result<Var<T>> {
                Var::$method(self, rhs)
            }
        }
        impl<T: Element> $trait<Var<T>> for &Var<T> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Result<Var<T>> {
                Var::$method(self, &rhs)
            }
        }
        impl<T: Element> $trait<&Var<T>> for Var<T> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Result<Var<T>> {
                Var::$method(&self, rhs)
            }
        }
        impl<T: Element> $trait<Var<T>> for Var<T> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Result<Var<T>> {
                Var::$method(&self, &rhs)
            }
        }
        impl<T: Element> $trait<&Var<T>> for Result<Var<T>> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Result<Var<T>> {
                Var::$method(&self?, rhs)
            }
        }
        impl<T: Element> $trait<Result<Var<T>>> for &Var<T> {
            type Output = Result<Var<T>>;
            #[track_caller]
            fn $method(self, rhs: Result<Var<T>>) -> Result<Var<T>> {
                Var::$method(self, &rhs?)
            }
        }
    };
}

binary_sugar!(Add, add);
binary_sugar!(Sub, sub);
binary_sugar!(Mul, mul);
binary_sugar!(Div, div);

impl<T: Element> Neg for &Var<T> {
    type Output = Var<T>;
    #[track_caller]
    fn neg(self) -> Var<T> {
        Var::neg(self)
    }
}
