//! Gathering and scattering by flat positions. They are each other's adjoint, so the
//! arg-max routing of `max` and `max_pool2d`, and `nll_loss`'s label picking, can be
//! differentiated to any order.

use std::sync::Arc;

use chainrule_tensor::{Element, Shape};

use crate::error::InOp;
use crate::ops::one;
use crate::{Operand, Result, Site, Var};

impl<T: Element> Var<T> {
    /// `out[k] = self[index[k]]`, shaped `dims`.
    #[track_caller]
    pub(crate) fn take_flat(&self, index: Arc<[usize]>, dims: Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self.value().take_flat(&index, &dims).in_op("take", site)?;
        let full = self.shape().clone();
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(g.scatter_add_flat(index.clone(), full.clone())?))
        };
        self.tape().record_at("take", site, y, &[self], rule)
    }

    /// Zeros of shape `full` with `self[k]` added at `index[k]`.
    #[track_caller]
    pub(crate) fn scatter_add_flat(&self, index: Arc<[usize]>, full: Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .scatter_add_flat(&index, &full)
            .in_op("scatter_add", site)?;
        let dims = self.shape().clone();
        let rule =
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.take_flat(index.clone(), dims.clone())?));
        self.tape().record_at("scatter_add", site, y, &[self], rule)
    }
}

impl<T: Element> Operand<T> {
    /// `out[k] = self[index[k]]`, shaped `dims`.
    pub(crate) fn take_flat(&self, index: Arc<[usize]>, dims: Shape) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.take_flat(&index, &dims)?),
            Operand::Var(v) => Operand::Var(Box::new(v.take_flat(index, dims)?)),
        })
    }

    /// Zeros of shape `full` with `self[k]` added at `index[k]`.
    pub(crate) fn scatter_add_flat(&self, index: Arc<[usize]>, full: Shape) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.scatter_add_flat(&index, &full)?),
            Operand::Var(v) => Operand::Var(Box::new(v.scatter_add_flat(index, full)?)),
        })
    }
}
