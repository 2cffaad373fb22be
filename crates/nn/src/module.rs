use chainrule_autograd::{Element, Param, Result, Var};

use crate::Buffer;

/// What a module holds, walked by name: parameters, buffers and submodules, plus
/// train/eval switching. `#[derive(Module)]` writes it from the struct's fields (see
/// [`chainrule_derive`](crate::Module)), so no field can be forgotten; hand-write it
/// for containers and for modules with training-only behaviour.
///
/// The walks default to recursing through [`ModuleState::visit_children`]: a
/// container that lists its children gets its parameters, buffers and train/eval
/// propagation for free.
pub trait ModuleState<T: Element = f32>: Send + Sync {
    /// The module's type name without its path or generics (`"Conv2d"`), for error
    /// messages.
    fn kind(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// Calls `f(name, param)` for every parameter, this module's and its
    /// submodules', names prefixed by `prefix` (`"conv1.weight"`).
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.visit_children(prefix, &mut |name, child| {
            child.visit_params(&format!("{name}."), f)
        });
    }

    /// Calls `f(name, buffer)` for every buffer, this module's and its submodules'.
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        self.visit_children(prefix, &mut |name, child| {
            child.visit_buffers(&format!("{name}."), f)
        });
    }

    /// Calls `f(name, child)` for each direct submodule, names prefixed by `prefix`.
    /// Children need only this trait: an `Embedding`, whose forward takes ids, is one.
    fn visit_children(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &dyn ModuleState<T>)) {}

    /// Switches training-only behaviour (dropout, batch statistics) on or off, here
    /// and in every submodule.
    fn set_training(&self, training: bool) {
        self.visit_children("", &mut |_, child| child.set_training(training));
    }

    /// Every parameter with its name: a module's own in definition order, then each
    /// submodule's (PyTorch's order).
    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| out.push((name.to_string(), p.clone())));
        out
    }

    /// Every parameter, in definition order.
    fn parameters(&self) -> Vec<Param<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Every buffer with its name, in definition order.
    fn named_buffers(&self) -> Vec<(String, Buffer<T>)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |name, b| out.push((name.to_string(), b.clone())));
        out
    }

    /// Total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }

    /// Calls `f(name, module)` for this module (named `""`) and every submodule below
    /// it, parents before children (PyTorch's `named_modules` and `apply`).
    fn apply(&self, f: &mut dyn FnMut(&str, &dyn ModuleState<T>))
    where
        Self: Sized,
    {
        f("", self);
        walk_children(self, "", f);
    }

    /// The names and kinds of this module and every submodule, parents first.
    fn named_modules(&self) -> Vec<(String, &'static str)> {
        let mut out = vec![(String::new(), self.kind())];
        let mut push = |name: &str, m: &dyn ModuleState<T>| out.push((name.to_string(), m.kind()));
        walk_children(self, "", &mut push);
        out
    }

    /// Training mode (dropout active, batch statistics) everywhere below.
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation mode (dropout off, running statistics) everywhere below.
    fn eval(&self) {
        self.set_training(false);
    }

    /// Freezes every parameter: tapes take them as constants, so backward computes no
    /// gradient for them (PyTorch's `requires_grad_(False)`).
    fn freeze(&self) {
        self.visit_params("", &mut |_, p| p.set_requires_grad(false));
    }

    /// Undoes [`ModuleState::freeze`].
    fn unfreeze(&self) {
        self.visit_params("", &mut |_, p| p.set_requires_grad(true));
    }
}

/// A building block of a model: a forward computation over the state of
/// [`ModuleState`], so optimizers, initializers and checkpoints need no per-layer code.
///
/// Parameters and buffers are named like PyTorch's `state_dict` keys: `"weight"`,
/// `"bias"`, and `"0.weight"`, `"conv1.bias"`, `"layers.2.running_mean"` for nested
/// modules.
///
/// Modules are `Send + Sync`: one model can serve several threads at once, each
/// recording on its own [`chainrule_autograd::Tape`] (parameters are shared snapshots,
/// see [`Param`]). A module holding an `Rc` or a `RefCell` is therefore not a `Module`;
/// use `Arc` and a `Mutex` or atomics.
///
/// ```
/// use chainrule_autograd::{Param, Result, Tensor, Var};
/// use chainrule_nn::{layers::{Dropout, Linear}, Module, ModuleState};
/// /// y = dropout(linear(x))·s, with a learned scalar s.
/// #[derive(Module)]
/// struct Scaled {
///     linear: Linear,
///     drop: Dropout,
///     s: Param,
/// }
/// impl Module for Scaled {
///     fn forward(&self, x: &Var) -> Result<Var> {
///         self.drop.forward(&self.linear.forward(x)?)?.mul(&x.tape().param(&self.s))
///     }
/// }
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let m = Scaled { linear: Linear::new(2, 2, &mut rng)?, drop: Dropout::new(0.5, 0)?, s: Param::new(Tensor::ones(&[1])?) };
/// let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
/// // PyTorch's order: a module's own parameters, then its submodules'
/// assert_eq!(names, ["s", "linear.weight", "linear.bias"]);
/// m.eval(); // reaches the Dropout without any code of ours
/// let x = chainrule_autograd::Tape::new().constant(Tensor::ones(&[1, 2])?);
/// assert_eq!(m.forward(&x)?.value(), m.forward(&x)?.value());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Module<T: Element = f32>: ModuleState<T> {
    /// Computes the output; parameters are brought onto `x`'s tape with
    /// [`chainrule_autograd::Tape::param`].
    ///
    /// # Errors
    /// Whatever the ops inside report (shape mismatches, ...).
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>>;
}

/// Calls `f` on every module strictly below `m`, parents first, with dotted names.
fn walk_children<T: Element, M: ModuleState<T> + ?Sized>(
    m: &M,
    prefix: &str,
    f: &mut dyn FnMut(&str, &dyn ModuleState<T>),
) {
    m.visit_children(prefix, &mut |name, child| {
        f(name, child);
        walk_children(child, &format!("{name}."), f);
    });
}

/// A boxed module is a module: `ModuleList<Box<dyn Module<T>>>` and the like.
impl<T: Element, M: ModuleState<T> + ?Sized> ModuleState<T> for Box<M> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        (**self).visit_params(prefix, f)
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        (**self).visit_buffers(prefix, f)
    }

    fn visit_children(&self, prefix: &str, f: &mut dyn FnMut(&str, &dyn ModuleState<T>)) {
        (**self).visit_children(prefix, f)
    }

    fn set_training(&self, training: bool) {
        (**self).set_training(training)
    }
}

impl<T: Element, M: Module<T> + ?Sized> Module<T> for Box<M> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        (**self).forward(x)
    }
}
