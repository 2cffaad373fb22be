//! The pointwise half of an LSTM step as one record: from the gate pre-activations
//! `[n, 4h]` (PyTorch's order i, f, g, o) and the cell `[n, h]` to `[h', c']` side by
//! side `[n, 2h]`. Composed, the same step is 13 records with a zero-filled `[n, 4h]`
//! gradient per gate; fused it is one pass each way. The recorded arm writes the same
//! gradient with recorded ops, so the step stays differentiable to any order.

use chainrule_tensor::{Element, Shape};

use crate::error::InOp;
use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

impl<T: Element> Var<T> {
    /// `[h', c']` for gate pre-activations `self` `[n, 4h]` and cell `c` `[n, h]`:
    /// `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')` (the kernel is
    /// `Tensor::lstm_gates`, which keeps the activations for the fast backward).
    pub(crate) fn lstm_gates(&self, c: &Var<T>, site: Site) -> Result<Var<T>> {
        let hs = c.dims()[1];
        let (y, acts) = self
            .value()
            .lstm_gates(c.value())
            .in_op("lstm_cell", site)?;
        let (gs, cs) = (Saved::of(self), Saved::of(c));
        let rule = move |d: &Operand<T>, _: &[bool]| -> Result<Grads<T>> {
            let (da, dc) = match d {
                Operand::Tensor(d) => {
                    let (da, dc) = d
                        .lstm_gates_backward(&acts, cs.value())
                        .in_op("lstm_cell", site)?;
                    (Operand::Tensor(da), Operand::Tensor(dc))
                }
                Operand::Var(_) => recorded_backward(d, &gs, &cs, hs)?,
            };
            Ok(Grads::from_iter([Some(da), Some(dc)]))
        };
        self.tape()
            .record_at("lstm_cell", site, y, &[self, c], rule)
    }
}

/// The same gradient as `Tensor::lstm_gates_backward`, from recorded ops.
fn recorded_backward<T: Element>(
    d: &Operand<T>,
    gs: &Saved<T>,
    cs: &Saved<T>,
    hs: usize,
) -> Result<(Operand<T>, Operand<T>)> {
    let n = cs.value().dims()[0];
    let (a, c) = (d.load(gs), d.load(cs));
    let gate = |k: usize| a.narrow(1, k * hs, hs);
    let (i, f) = (
        gate(0)?.unary(Unary::Sigmoid),
        gate(1)?.unary(Unary::Sigmoid),
    );
    let (g, o) = (gate(2)?.unary(Unary::Tanh), gate(3)?.unary(Unary::Sigmoid));
    let tc = f.mul(&c)?.add(&i.mul(&g)?)?.unary(Unary::Tanh);
    let (dh, dcn) = (d.narrow(1, 0, hs)?, d.narrow(1, hs, hs)?);
    // 1 − s² and s·(1 − s), the derivatives of tanh and σ from their values
    let one_minus_sq = |s: &Operand<T>| s.unary(Unary::Square).neg().unary(Unary::AddScalar(1.0));
    let sig_slope =
        |s: &Operand<T>| -> Result<Operand<T>> { s.mul(&s.neg().unary(Unary::AddScalar(1.0))) };
    let dc_total = dcn.add(&dh.mul(&o)?.mul(&one_minus_sq(&tc))?)?;
    let parts = [
        dc_total.mul(&g)?.mul(&sig_slope(&i)?)?,
        dc_total.mul(&c)?.mul(&sig_slope(&f)?)?,
        dc_total.mul(&i)?.mul(&one_minus_sq(&g))?,
        dh.mul(&tc)?.mul(&sig_slope(&o)?)?,
    ];
    let full = Shape::new(&[n, 4 * hs])?;
    let mut da = parts[0].unnarrow(&full, 1, 0)?;
    for (k, p) in parts.iter().enumerate().skip(1) {
        da = da.add(&p.unnarrow(&full, 1, k * hs)?)?;
    }
    Ok((da, dc_total.mul(&f)?))
}
