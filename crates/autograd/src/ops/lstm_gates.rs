//! The pointwise half of an LSTM step as one record: from the gate pre-activations
//! `[n, 4h]` (PyTorch's order i, f, g, o) and the cell `[n, h]` to `[h', c']` side by
//! side `[n, 2h]`. Composed, the same step is 13 records with a zero-filled `[n, 4h]`
//! gradient per gate; fused it is one pass each way. The recorded arm writes the same
//! gradient with recorded ops, so the step stays differentiable to any order.

use chainrule_tensor::{Element, Shape, Tensor};

use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

fn sigmoid<T: Element>(x: T) -> T {
    Unary::Sigmoid.forward(x)
}

impl<T: Element> Var<T> {
    /// `[h', c']` for gate pre-activations `self` `[n, 4h]` and cell `c` `[n, h]`:
    /// `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`.
    pub(crate) fn lstm_gates(&self, c: &Var<T>, site: Site) -> Result<Var<T>> {
        let (n, hs) = (c.dims()[0], c.dims()[1]);
        let (a, cv) = (self.value().data(), c.value().data());
        let mut out = vec![T::ZERO; n * 2 * hs];
        // i, f, g, o and tanh(c') per element, kept for the fast backward
        let mut acts = vec![T::ZERO; n * 5 * hs];
        for r in 0..n {
            let (g, cr) = (&a[r * 4 * hs..(r + 1) * 4 * hs], &cv[r * hs..(r + 1) * hs]);
            let (h_out, c_out) = out[r * 2 * hs..(r + 1) * 2 * hs].split_at_mut(hs);
            let act = &mut acts[r * 5 * hs..(r + 1) * 5 * hs];
            for j in 0..hs {
                let (i, f) = (sigmoid(g[j]), sigmoid(g[hs + j]));
                let (gg, o) = (g[2 * hs + j].tanh(), sigmoid(g[3 * hs + j]));
                let c_next = f * cr[j] + i * gg;
                let tc = c_next.tanh();
                c_out[j] = c_next;
                h_out[j] = o * tc;
                for (k, v) in [i, f, gg, o, tc].into_iter().enumerate() {
                    act[k * hs + j] = v;
                }
            }
        }
        let y = Tensor::from_vec(out, &[n, 2 * hs])?;
        let (gs, cs) = (Saved::of(self), Saved::of(c));
        let rule = move |d: &Operand<T>, _: &[bool]| -> Result<Grads<T>> {
            let (da, dc) = match d {
                Operand::Tensor(d) => fast_backward(&acts, cs.value(), d, n, hs)?,
                Operand::Var(_) => recorded_backward(d, &gs, &cs, n, hs)?,
            };
            Ok(Grads::from_iter([Some(da), Some(dc)]))
        };
        self.tape()
            .record_at("lstm_cell", site, y, &[self, c], rule)
    }
}

fn fast_backward<T: Element>(
    acts: &[T],
    c: &Tensor<T>,
    d: &Tensor<T>,
    n: usize,
    hs: usize,
) -> Result<(Operand<T>, Operand<T>)> {
    let (cv, dv) = (c.data(), d.data());
    let mut da = vec![T::ZERO; n * 4 * hs];
    let mut dc = vec![T::ZERO; n * hs];
    let one = T::ONE;
    for r in 0..n {
        let act = &acts[r * 5 * hs..(r + 1) * 5 * hs];
        let (dh, dcn) = dv[r * 2 * hs..(r + 1) * 2 * hs].split_at(hs);
        let dar = &mut da[r * 4 * hs..(r + 1) * 4 * hs];
        for j in 0..hs {
            let (i, f, gg, o, tc) = (
                act[j],
                act[hs + j],
                act[2 * hs + j],
                act[3 * hs + j],
                act[4 * hs + j],
            );
            let c_prev = cv[r * hs + j];
            let dc_total = dcn[j] + dh[j] * o * (one - tc * tc);
            dar[j] = dc_total * gg * i * (one - i);
            dar[hs + j] = dc_total * c_prev * f * (one - f);
            dar[2 * hs + j] = dc_total * i * (one - gg * gg);
            dar[3 * hs + j] = dh[j] * tc * o * (one - o);
            dc[r * hs + j] = dc_total * f;
        }
    }
    Ok((
        Operand::Tensor(Tensor::from_vec(da, &[n, 4 * hs])?),
        Operand::Tensor(Tensor::from_vec(dc, &[n, hs])?),
    ))
}

/// The same gradient as [`fast_backward`], from recorded ops.
fn recorded_backward<T: Element>(
    d: &Operand<T>,
    gs: &Saved<T>,
    cs: &Saved<T>,
    n: usize,
    hs: usize,
) -> Result<(Operand<T>, Operand<T>)> {
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
