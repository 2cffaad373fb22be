//! Gradient hooks: functions backward calls with a gradient as it passes. A value's
//! hook ([`crate::Var::register_hook`]) and a parameter's gradient hook
//! ([`Param::register_hook`]) may inspect or replace it; a parameter's post-accumulate
//! hook ([`Param::register_post_accumulate_grad_hook`]) sees its final gradient of a
//! backward pass, once every use has been summed (where data-parallel training starts
//! the all-reduce of that gradient).

use std::rc::Rc;
use std::sync::Arc;

use chainrule_tensor::{Element, Shape, Tensor};

use crate::{Error, Result, Site};

/// A hook on a value of one tape: `None` keeps the gradient, `Some` replaces it.
pub(crate) type VarHook<T> = Rc<dyn Fn(&Tensor<T>) -> Option<Tensor<T>>>;

/// A parameter's gradient hook; parameters cross threads, so it is `Send + Sync`.
pub(crate) type GradHook<T> = Arc<dyn Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync>;

/// A parameter's post-accumulate hook.
pub(crate) type PostHook<T> = Arc<dyn Fn(&Tensor<T>) + Send + Sync>;

/// The hooks registered on one parameter (shared by its clones).
pub(crate) struct ParamHooks<T: Element> {
    pub(crate) grad: Vec<(Site, GradHook<T>)>,
    pub(crate) post: Vec<PostHook<T>>,
}

impl<T: Element> Default for ParamHooks<T> {
    fn default() -> Self {
        ParamHooks {
            grad: Vec::new(),
            post: Vec::new(),
        }
    }
}

/// One hook as `apply` takes it: the line that registered it and the function.
pub(crate) type HookRef<'a, T> = (Site, &'a dyn Fn(&Tensor<T>) -> Option<Tensor<T>>);

/// Runs `hooks` in registration order on `g`; each sees the previous one's result.
/// A replacement of another shape is an error naming the line that registered the hook.
pub(crate) fn apply<'a, T: Element>(
    hooks: impl IntoIterator<Item = HookRef<'a, T>>,
    mut g: Tensor<T>,
    shape: &Shape,
    op: &'static str,
) -> Result<Tensor<T>> {
    for (site, hook) in hooks {
        if let Some(new) = hook(&g) {
            if new.shape() != shape {
                return Err(Error::HookShape {
                    op,
                    site,
                    expected: shape.dims().to_vec(),
                    got: new.dims().to_vec(),
                });
            }
            g = new;
        }
    }
    Ok(g)
}
