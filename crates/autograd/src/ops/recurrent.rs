//! LSTM and GRU over sequences with PyTorch's gate order and weight layout, composed of
//! recorded ops (linear, narrow, sigmoid, tanh, mul, add), so every derivative follows
//! from theirs: the input projection of every step at once, then the recurrence one
//! time step at a time.

use chainrule_tensor::{Element, TensorError};

use crate::{Result, Site, Var};

/// An LSTM's state `(h, c)`, each `[n, h]`.
pub type LstmState<T> = (Var<T>, Var<T>);

/// One recurrent layer's weights as PyTorch lays them out: `w_ih` `[G·h, in]`, `w_hh`
/// `[G·h, h]` and the biases `[G·h]`, with `G` gates stacked in PyTorch's order (LSTM:
/// i, f, g, o; GRU: r, z, n).
#[derive(Clone, Copy, Debug)]
pub struct RnnWeights<'a, T: Element> {
    /// Input-to-hidden weights.
    pub w_ih: &'a Var<T>,
    /// Hidden-to-hidden weights.
    pub w_hh: &'a Var<T>,
    /// Input-to-hidden bias.
    pub b_ih: Option<&'a Var<T>>,
    /// Hidden-to-hidden bias.
    pub b_hh: Option<&'a Var<T>>,
}

impl<T: Element> RnnWeights<'_, T> {
    /// The hidden size, checked against `gates` and the input size.
    fn hidden(&self, op: &'static str, site: Site, gates: usize, input: usize) -> Result<usize> {
        let (ih, hh) = (self.w_ih.dims(), self.w_hh.dims());
        let h = hh.get(1).copied().unwrap_or(0);
        let ok = ih.len() == 2
            && hh.len() == 2
            && ih[0] == gates * h
            && hh[0] == gates * h
            && ih[1] == input
            && [self.b_ih, self.b_hh]
                .iter()
                .flatten()
                .all(|b| b.dims() == [gates * h]);
        if ok && h > 0 {
            return Ok(h);
        }
        Err(crate::Error::Op {
            op,
            site,
            source: TensorError::Shape(format!(
                "weights w_ih {}, w_hh {}, biases {:?} for input size {input}: need [{gates}·h, {input}], [{gates}·h, h], [{gates}·h]",
                self.w_ih.shape(),
                self.w_hh.shape(),
                [self.b_ih, self.b_hh].iter().flatten().map(|b| b.dims().to_vec()).collect::<Vec<_>>()
            )),
        })
    }
}

impl<T: Element> Var<T> {
    /// One LSTM step for input `self` `[n, in]` and state `(h, c)` `[n, h]`:
    /// `i, f, g, o = σ, σ, tanh, σ` of `x·w_ihᵀ + b_ih + h·w_hhᵀ + b_hh`;
    /// `c' = f·c + i·g`, `h' = o·tanh(c')`. Returns `(h', c')`.
    ///
    /// ```
    /// use chainrule_autograd::{RnnWeights, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w_ih, w_hh) = (tape.leaf(Tensor::zeros(&[8, 3])?), tape.leaf(Tensor::zeros(&[8, 2])?));
    /// let w = RnnWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
    /// let (x, h) = (tape.constant(Tensor::ones(&[4, 3])?), tape.constant(Tensor::zeros(&[4, 2])?));
    /// let (h1, c1) = x.lstm_cell(&h, &h, &w)?;
    /// assert_eq!((h1.dims(), c1.dims()), (&[4, 2][..], &[4, 2][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Weights, input or state of the wrong shapes.
    #[track_caller]
    pub fn lstm_cell(
        &self,
        h: &Var<T>,
        c: &Var<T>,
        w: &RnnWeights<'_, T>,
    ) -> Result<(Var<T>, Var<T>)> {
        let site = Site::caller();
        let hs = w.hidden(
            "lstm_cell",
            site,
            4,
            self.dims().last().copied().unwrap_or(0),
        )?;
        self.linear(w.w_ih, w.b_ih)?.lstm_step(h, c, w, hs, site)
    }

    /// The LSTM step from the input's projection `self` (`x·w_ihᵀ + b_ih`, `[n, 4h]`).
    #[track_caller]
    fn lstm_step(
        &self,
        h: &Var<T>,
        c: &Var<T>,
        w: &RnnWeights<'_, T>,
        hs: usize,
        site: Site,
    ) -> Result<(Var<T>, Var<T>)> {
        let gates = self.add(&h.linear(w.w_hh, w.b_hh)?)?;
        if c.dims() != [gates.dims()[0], hs] {
            return Err(crate::ops::shape_error(
                "lstm_cell",
                site,
                format!("cell {} for gates {}", c.shape(), gates.shape()),
            ));
        }
        // the pointwise half is one fused record (ops/lstm_gates.rs)
        let both = gates.lstm_gates(c, site)?;
        Ok((both.narrow(1, 0, hs)?, both.narrow(1, hs, hs)?))
    }

    /// One GRU step for input `self` `[n, in]` and state `h` `[n, h]` (PyTorch's):
    /// `r, z = σ(W_i x + b_i + W_h h + b_h)`, `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`,
    /// `h' = (1 − z)·n + z·h`.
    ///
    /// ```
    /// use chainrule_autograd::{RnnWeights, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w_ih, w_hh) = (tape.leaf(Tensor::zeros(&[6, 3])?), tape.leaf(Tensor::zeros(&[6, 2])?));
    /// let w = RnnWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
    /// let (x, h) = (tape.constant(Tensor::ones(&[4, 3])?), tape.constant(Tensor::ones(&[4, 2])?));
    /// // zero weights: z = 1/2, n = 0, so h' = h/2
    /// assert_eq!(x.gru_cell(&h, &w)?.value().data(), &[0.5; 8]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Weights, input or state of the wrong shapes.
    #[track_caller]
    pub fn gru_cell(&self, h: &Var<T>, w: &RnnWeights<'_, T>) -> Result<Var<T>> {
        let site = Site::caller();
        let hs = w.hidden(
            "gru_cell",
            site,
            3,
            self.dims().last().copied().unwrap_or(0),
        )?;
        self.linear(w.w_ih, w.b_ih)?.gru_step(h, w, hs)
    }

    /// The GRU step from the input's projection `self` (`x·w_ihᵀ + b_ih`, `[n, 3h]`).
    #[track_caller]
    fn gru_step(&self, h: &Var<T>, w: &RnnWeights<'_, T>, hs: usize) -> Result<Var<T>> {
        let (gi, gh) = (self, h.linear(w.w_hh, w.b_hh)?);
        let part = |g: &Var<T>, k: usize| g.narrow(1, k * hs, hs);
        let r = part(gi, 0)?.add(&part(&gh, 0)?)?.sigmoid();
        let z = part(gi, 1)?.add(&part(&gh, 1)?)?.sigmoid();
        let n = part(gi, 2)?.add(&r.mul(&part(&gh, 2)?)?)?.tanh();
        // (1 − z)·n + z·h = n + z·(h − n)
        n.add(&z.mul(&h.sub(&n)?)?)
    }

    /// A one-layer LSTM over a sequence `self` `[T, n, in]` from state `(h0, c0)`
    /// `[n, h]`: every step's `h` stacked `[T, n, h]`, and the final `(h, c)`.
    ///
    /// ```
    /// use chainrule_autograd::{RnnWeights, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w_ih, w_hh) = (tape.leaf(Tensor::zeros(&[8, 3])?), tape.leaf(Tensor::zeros(&[8, 2])?));
    /// let w = RnnWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
    /// let x = tape.constant(Tensor::ones(&[5, 4, 3])?);
    /// let h0 = tape.constant(Tensor::zeros(&[4, 2])?);
    /// let (out, (h, _c)) = x.lstm(&h0, &h0, &w)?;
    /// assert_eq!((out.dims(), h.dims()), (&[5, 4, 2][..], &[4, 2][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A sequence that is not 3-D, or shapes that do not fit the weights.
    #[track_caller]
    pub fn lstm(
        &self,
        h0: &Var<T>,
        c0: &Var<T>,
        w: &RnnWeights<'_, T>,
    ) -> Result<(Var<T>, LstmState<T>)> {
        let site = Site::caller();
        let (steps, hs) = self.projected_steps("lstm", site, 4, w)?;
        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut outputs = Vec::with_capacity(steps.len());
        for xp in &steps {
            (h, c) = xp.lstm_step(&h, &c, w, hs, site)?;
            outputs.push(h.clone());
        }
        Ok((Var::stack(&outputs.iter().collect::<Vec<_>>(), 0)?, (h, c)))
    }

    /// A one-layer GRU over a sequence `self` `[T, n, in]` from `h0` `[n, h]`: every
    /// step's `h` stacked `[T, n, h]`, and the final `h`.
    ///
    /// ```
    /// use chainrule_autograd::{RnnWeights, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w_ih, w_hh) = (tape.leaf(Tensor::zeros(&[6, 3])?), tape.leaf(Tensor::zeros(&[6, 2])?));
    /// let w = RnnWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
    /// let x = tape.constant(Tensor::ones(&[5, 4, 3])?);
    /// let (out, h) = x.gru(&tape.constant(Tensor::zeros(&[4, 2])?), &w)?;
    /// assert_eq!((out.dims(), h.dims()), (&[5, 4, 2][..], &[4, 2][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::lstm`].
    #[track_caller]
    pub fn gru(&self, h0: &Var<T>, w: &RnnWeights<'_, T>) -> Result<(Var<T>, Var<T>)> {
        let (steps, hs) = self.projected_steps("gru", Site::caller(), 3, w)?;
        let mut h = h0.clone();
        let mut outputs = Vec::with_capacity(steps.len());
        for xp in &steps {
            h = xp.gru_step(&h, w, hs)?;
            outputs.push(h.clone());
        }
        Ok((Var::stack(&outputs.iter().collect::<Vec<_>>(), 0)?, h))
    }

    /// Every time step's input projection `x·w_ihᵀ + b_ih` `[n, G·h]` of a sequence
    /// `[T, n, in]`, from one matrix product over all steps (the recurrence only needs
    /// `w_hh` step by step), and the hidden size.
    #[track_caller]
    fn projected_steps(
        &self,
        op: &'static str,
        site: Site,
        gates: usize,
        w: &RnnWeights<'_, T>,
    ) -> Result<(Vec<Var<T>>, usize)> {
        let &[t, n, input] = self.dims() else {
            return Err(crate::Error::Op {
                op,
                site,
                source: TensorError::Shape(format!(
                    "sequence {} must be [T, n, input]",
                    self.shape()
                )),
            });
        };
        if t == 0 {
            return Err(crate::Error::Op {
                op,
                site,
                source: TensorError::Shape("a sequence of no steps has no output".into()),
            });
        }
        let hs = w.hidden(op, site, gates, input)?;
        let rows = t
            .checked_mul(n)
            .and_then(|r| isize::try_from(r).ok())
            .ok_or_else(|| {
                crate::ops::shape_error(
                    op,
                    site,
                    format!("sequence {} has too many rows", self.shape()),
                )
            })?;
        // `input` fits: it is a dim of a valid shape
        let rows = self.reshape(&[rows, input as isize])?;
        let projected = rows.linear(w.w_ih, w.b_ih)?;
        // slices of one value: backward adds each step's gradient into its rows
        let steps = (0..t)
            .map(|k| projected.narrow(0, k * n, n))
            .collect::<Result<_>>()?;
        Ok((steps, hs))
    }
}
