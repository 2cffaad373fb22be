//! The pointwise half of an LSTM step, fused: from the gate pre-activations `[n, 4h]`
//! (PyTorch's order i, f, g, o) and the cell `[n, h]` to `h'` and `c'` side by side
//! `[n, 2h]`, and back. Both loops run through [`simd::dispatch`], so sigmoid and tanh
//! (neither calls libm in f32) are evaluated 16 or 8 lanes at a time.

use super::simd::{self, Vectorized};
use crate::error::shape_err;
use crate::tensor::alloc_zeroed;
use crate::{Element, Shape, Tensor, TensorResult};

/// What [`Tensor::lstm_gates`] keeps for its backward: per row, the activations
/// i, f, g, o and tanh(c'), each `h` long.
#[derive(Clone, Debug)]
pub struct LstmActivations<T: Element> {
    acts: Vec<T>,
    hidden: usize,
}

impl<T: Element> Tensor<T> {
    /// `[h', c']` `[n, 2h]` for gate pre-activations `self` `[n, 4h]` and cell `c`
    /// `[n, h]`: `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`; and the
    /// activations [`Tensor::lstm_gates_backward`] needs.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let (gates, c) = (Tensor::<f32>::zeros(&[1, 4])?, Tensor::<f32>::ones(&[1, 1])?);
    /// let (y, _) = gates.lstm_gates(&c)?;
    /// // i = f = o = 1/2, g = 0: c' = 1/2, h' = tanh(1/2)/2
    /// assert_eq!(y.data(), &[0.5f32.tanh() / 2.0, 0.5]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `c` not 2-D, or `self` not `[n, 4h]` for `c`'s `[n, h]`.
    pub fn lstm_gates(&self, c: &Tensor<T>) -> TensorResult<(Tensor<T>, LstmActivations<T>)> {
        let (n, hs) = match (self.dims(), c.dims()) {
            (&[n, four_h], &[nc, hs]) if n == nc && Some(four_h) == hs.checked_mul(4) => (n, hs),
            _ => {
                return Err(shape_err!(
                    "lstm_gates: gates {} and cell {} must be [n, 4h] and [n, h]",
                    self.shape(),
                    c.shape()
                ))
            }
        };
        // [n, 2h] and [n, 5h] fit: [n, 4h] is a valid shape and 5h ≤ 2·4h
        let y_shape = Shape::new(&[n, 2 * hs])?;
        let mut out = alloc_zeroed(&y_shape)?;
        let mut acts = alloc_zeroed(&Shape::new(&[n, 5 * hs])?)?;
        if hs > 0 {
            simd::dispatch(Forward {
                gates: self.data(),
                c: c.data(),
                out: &mut out,
                acts: &mut acts,
                hs,
            });
        }
        Ok((
            Tensor::from_parts(y_shape, out),
            LstmActivations { acts, hidden: hs },
        ))
    }

    /// The gradients of the gate pre-activations `[n, 4h]` and of the cell `[n, h]`
    /// from the gradient `self` `[n, 2h]` of [`Tensor::lstm_gates`]'s output, its
    /// activations and the cell `c` it was given.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let (gates, c) = (Tensor::<f64>::zeros(&[1, 4])?, Tensor::<f64>::ones(&[1, 1])?);
    /// let (_, acts) = gates.lstm_gates(&c)?;
    /// let (_, dc) = Tensor::from_vec(vec![0.0, 1.0], &[1, 2])?.lstm_gates_backward(&acts, &c)?;
    /// assert_eq!(dc.data(), &[0.5]); // ∂c'/∂c = σ(f)
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that do not match the forward's.
    pub fn lstm_gates_backward(
        &self,
        acts: &LstmActivations<T>,
        c: &Tensor<T>,
    ) -> TensorResult<(Tensor<T>, Tensor<T>)> {
        let hs = acts.hidden;
        let n = c.dims().first().copied().unwrap_or(0);
        let fits = c.dims() == [n, hs]
            && self.dims().len() == 2
            && self.dims()[0] == n
            && Some(self.dims()[1]) == hs.checked_mul(2)
            && Some(acts.acts.len()) == n.checked_mul(5 * hs);
        if !fits {
            return Err(shape_err!(
                "lstm_gates_backward: gradient {} and cell {} for activations of {} rows of {hs}",
                self.shape(),
                c.shape(),
                acts.acts.len() / (5 * hs).max(1)
            ));
        }
        let (da_shape, dc_shape) = (Shape::new(&[n, 4 * hs])?, c.shape().clone());
        let (mut da, mut dc) = (alloc_zeroed(&da_shape)?, alloc_zeroed(&dc_shape)?);
        if hs > 0 {
            simd::dispatch(Backward {
                acts: &acts.acts,
                c: c.data(),
                d: self.data(),
                da: &mut da,
                dc: &mut dc,
                hs,
            });
        }
        Ok((
            Tensor::from_parts(da_shape, da),
            Tensor::from_parts(dc_shape, dc),
        ))
    }
}

/// Splits a row into `K` consecutive runs of `hs` (each sliced to exactly `hs`, so
/// the loops over them need no bounds checks and vectorise).
#[inline(always)]
fn runs<const K: usize, T>(row: &[T], hs: usize) -> [&[T]; K] {
    std::array::from_fn(|k| &row[k * hs..(k + 1) * hs])
}

/// [`runs`] for a row written to.
#[inline(always)]
fn runs_mut<const K: usize, T>(row: &mut [T], hs: usize) -> [&mut [T]; K] {
    let mut rest = row;
    std::array::from_fn(|_| {
        let (run, tail) = std::mem::take(&mut rest).split_at_mut(hs);
        rest = tail;
        run
    })
}

struct Forward<'a, T> {
    gates: &'a [T],
    c: &'a [T],
    out: &'a mut [T],
    acts: &'a mut [T],
    hs: usize,
}

impl<T: Element> Vectorized for Forward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let hs = self.hs;
        let rows = self
            .gates
            .chunks_exact(4 * hs)
            .zip(self.c.chunks_exact(hs))
            .zip(self.out.chunks_exact_mut(2 * hs))
            .zip(self.acts.chunks_exact_mut(5 * hs));
        for (((g, c), out), act) in rows {
            let [gi, gf, gg, go] = runs::<4, T>(g, hs);
            let [h_out, c_out] = runs_mut::<2, T>(out, hs);
            let [ai, af, ag, ao, at] = runs_mut::<5, T>(act, hs);
            let c = &c[..hs];
            // Short loops over few slices each: with a dozen slices in one loop LLVM
            // gives up on proving they do not overlap and leaves the loop scalar.
            for (act, gate) in [(&mut *ai, gi), (&mut *af, gf), (&mut *ao, go)] {
                act.iter_mut()
                    .zip(gate)
                    .for_each(|(a, &x)| *a = x.sigmoid());
            }
            ag.iter_mut().zip(gg).for_each(|(a, &x)| *a = x.tanh());
            for j in 0..hs {
                c_out[j] = af[j] * c[j] + ai[j] * ag[j];
            }
            at.iter_mut().zip(&*c_out).for_each(|(t, &x)| *t = x.tanh());
            for j in 0..hs {
                h_out[j] = ao[j] * at[j];
            }
        }
    }
}

struct Backward<'a, T> {
    acts: &'a [T],
    c: &'a [T],
    d: &'a [T],
    da: &'a mut [T],
    dc: &'a mut [T],
    hs: usize,
}

impl<T: Element> Vectorized for Backward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (hs, one) = (self.hs, T::ONE);
        let rows = self
            .acts
            .chunks_exact(5 * hs)
            .zip(self.c.chunks_exact(hs))
            .zip(self.d.chunks_exact(2 * hs))
            .zip(
                self.da
                    .chunks_exact_mut(4 * hs)
                    .zip(self.dc.chunks_exact_mut(hs)),
            );
        for (((act, c), d), (da, dc)) in rows {
            let [i, f, g, o, tc] = runs::<5, T>(act, hs);
            let [dh, dcn] = runs::<2, T>(d, hs);
            let [dai, daf, dag, dao] = runs_mut::<4, T>(da, hs);
            let (c, dc) = (&c[..hs], &mut dc[..hs]);
            // dc holds the gradient reaching c' (from both outputs) until the last loop
            for j in 0..hs {
                dc[j] = dcn[j] + dh[j] * o[j] * (one - tc[j] * tc[j]);
            }
            for j in 0..hs {
                dai[j] = dc[j] * g[j] * i[j] * (one - i[j]);
            }
            for j in 0..hs {
                daf[j] = dc[j] * c[j] * f[j] * (one - f[j]);
            }
            for j in 0..hs {
                dag[j] = dc[j] * i[j] * (one - g[j] * g[j]);
            }
            for j in 0..hs {
                dao[j] = dh[j] * tc[j] * o[j] * (one - o[j]);
            }
            for j in 0..hs {
                dc[j] *= f[j];
            }
        }
    }
}
