use chainrule_autograd::{Element, Param, Result, Var};

/// A building block of a model: a forward computation and a walk over its named
/// parameters, so optimizers, initializers and checkpoints need no per-layer code.
///
/// Parameters are named like PyTorch's `state_dict` keys: `"weight"`, `"bias"`, and
/// `"0.weight"`, `"conv1.bias"` for nested modules.
///
/// Modules are `Send + Sync`: one model can serve several threads at once, each
/// recording on its own [`chainrule_autograd::Tape`] (parameters are shared snapshots,
/// see [`Param`]). A module holding an `Rc` or a `RefCell` is therefore not a `Module`;
/// use `Arc` and a `Mutex` or atomics.
///
/// ```
/// use chainrule_autograd::{Param, Result, Tensor, Var};
/// use chainrule_nn::Module;
/// /// y = x·s, with a learned scalar s.
/// struct Scale { s: Param }
/// impl Module for Scale {
///     fn forward(&self, x: &Var) -> Result<Var> {
///         x.mul(&x.tape().param(&self.s))
///     }
///     fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
///         f(&format!("{prefix}s"), &self.s);
///     }
/// }
/// let m = Scale { s: Param::new(Tensor::ones(&[1])?) };
/// assert_eq!(m.named_parameters()[0].0, "s");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Module<T: Element = f32>: Send + Sync {
    /// Computes the output; parameters are brought onto `x`'s tape with
    /// [`chainrule_autograd::Tape::param`].
    ///
    /// # Errors
    /// Whatever the ops inside report (shape mismatches, ...).
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>>;

    /// The module's type name without its path or generics (`"Conv2d"`), for error
    /// messages.
    fn kind(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// Calls `f(name, param)` for every parameter, names prefixed by `prefix`.
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param<T>)) {}

    /// Switches training-only behaviour (dropout) on or off. Default: nothing to do.
    fn set_training(&self, _training: bool) {}

    /// Every parameter with its name, in definition order.
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

    /// Total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }
}
