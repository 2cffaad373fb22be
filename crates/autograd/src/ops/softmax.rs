//! Softmax and log-softmax along a dim.

use chainrule_tensor::kernels::reduce::DimSplit;
use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::error::InOp;
use crate::ops::one;
use crate::{Operand, Result, Saved, Site, Unary, Var};

/// For each line along the split dim, `dx = f(g_line, y_line)` where `f` may use the line
/// sum `s = Σ h(g, y)`: `dx = a(g, y, s)`.
fn along_dim<T: Element>(
    g: &Tensor<T>,
    y: &Tensor<T>,
    s: DimSplit,
    h: impl Fn(T, T) -> T,
    a: impl Fn(T, T, T) -> T,
) -> TensorResult<Tensor<T>> {
    let (gd, yd) = (g.data(), y.data());
    let mut out = Tensor::zeros(y.dims())?;
    let dx = out.data_mut();
    // an empty tensor can have a huge `outer · inner`: no loop over it
    let outer = if gd.is_empty() { 0 } else { s.outer };
    for o in 0..outer {
        for i in 0..s.inner {
            let idx = |r: usize| (o * s.len + r) * s.inner + i;
            // f64 accumulator: a 2e6-wide f32 line summed in f32 drifts by a percent
            let sum: f64 = (0..s.len).map(|r| h(gd[idx(r)], yd[idx(r)]).to_f64()).sum();
            let sum = T::from_f64(sum);
            (0..s.len).for_each(|r| dx[idx(r)] = a(gd[idx(r)], yd[idx(r)], sum));
        }
    }
    Ok(out)
}

impl<T: Element> Var<T> {
    /// Softmax along `dim`, shifted by the maximum so large logits stay finite.
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("softmax", site)?;
        let y = self.value().softmax(d).in_op("softmax", site)?;
        let split = DimSplit::new(self.shape(), d).in_op("softmax", site)?;
        let ys = Saved::output(self.tape(), &y);
        // dx = y · (g − Σ g·y)
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => Operand::Tensor(along_dim(
                    g,
                    ys.value(),
                    split,
                    |g, y| g * y,
                    |g, y, s| y * (g - s),
                )?),
                Operand::Var(_) => {
                    let y = g.load(&ys);
                    y.mul(&g.sub(&g.mul(&y)?.sum_dims(&[d], true)?)?)?
                }
            }))
        };
        self.tape().record_at("softmax", site, y, &[self], rule)
    }

    /// Log-softmax along `dim`, computed as `x − max − log Σ exp(x − max)`.
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("log_softmax", site)?;
        let y = self.value().log_softmax(d).in_op("log_softmax", site)?;
        let split = DimSplit::new(self.shape(), d).in_op("log_softmax", site)?;
        let ys = Saved::output(self.tape(), &y);
        // dx = g − exp(y) · Σ g
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => Operand::Tensor(along_dim(
                    g,
                    ys.value(),
                    split,
                    |g, _| g,
                    |g, y, s| g - y.exp() * s,
                )?),
                Operand::Var(_) => {
                    let p = g.load(&ys).unary(Unary::Exp);
                    g.sub(&p.mul(&g.sum_dims(&[d], true)?)?)?
                }
            }))
        };
        self.tape().record_at("log_softmax", site, y, &[self], rule)
    }
}
