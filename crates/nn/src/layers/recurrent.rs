//! LSTM and GRU layers with PyTorch's parameter names and layout (`weight_ih_l0`,
//! `weight_hh_l0_reverse`, …): stacked layers, bidirectional, batch-first, dropout
//! between layers; each returns the whole output sequence and the final state.

use chainrule_autograd::{Element, IntTensor, LstmState, Param, Result, RnnWeights, Var};
use rand::Rng;

use crate::layers::Dropout;
use crate::{Module, ModuleState};

/// The options of [`Lstm`] and [`Gru`], PyTorch's constructor arguments.
///
/// ```
/// let c = chainrule_nn::layers::RnnConfig::default();
/// assert_eq!((c.num_layers, c.bias, c.batch_first, c.dropout, c.bidirectional), (1, true, false, 0.0, false));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnConfig {
    /// Stacked layers; each reads the one below's output sequence.
    pub num_layers: usize,
    /// Learn `bias_ih` and `bias_hh`.
    pub bias: bool,
    /// Sequences are `[n, T, input]` rather than `[T, n, input]`.
    pub batch_first: bool,
    /// Dropout on each layer's output but the last's, in training mode.
    pub dropout: f64,
    /// A second direction reads each sequence backwards; outputs are concatenated.
    pub bidirectional: bool,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig {
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

/// One direction over a `[T, n, in]` sequence: `(sequence, initial states, weights)` to
/// `(outputs, final states)`.
type Direction<T> = dyn Fn(&Var<T>, &[Var<T>], &RnnWeights<'_, T>) -> Result<(Var<T>, Vec<Var<T>>)>;

/// One direction of one layer.
struct Cell<T: Element> {
    suffix: String,
    w_ih: Param<T>,
    w_hh: Param<T>,
    b_ih: Option<Param<T>>,
    b_hh: Option<Param<T>>,
}

/// The weights, dropout and options shared by [`Lstm`] and [`Gru`].
struct Stack<T: Element> {
    cells: Vec<Cell<T>>,
    hidden: usize,
    config: RnnConfig,
    dropout: Dropout,
}

impl<T: Element> Stack<T> {
    fn new<R: Rng + ?Sized>(
        what: &'static str,
        gates: usize,
        input: usize,
        hidden: usize,
        config: RnnConfig,
        rng: &mut R,
    ) -> crate::Result<Self> {
        if config.num_layers == 0 || hidden == 0 {
            return Err(crate::Error::Invalid {
                what,
                reason: format!(
                    "num_layers {} and hidden_size {hidden} must be positive",
                    config.num_layers
                ),
            });
        }
        let dirs = if config.bidirectional { 2 } else { 1 };
        // PyTorch: every weight and bias U(±1/√hidden)
        let k = 1.0 / (hidden as f64).sqrt();
        let mut cells = Vec::new();
        for layer in 0..config.num_layers {
            let width = if layer == 0 { input } else { hidden * dirs };
            for dir in 0..dirs {
                let mut p =
                    |dims: &[usize]| crate::init::uniform::<T, R>(dims, -k, k, rng).map(Param::new);
                cells.push(Cell {
                    suffix: format!("_l{layer}{}", if dir == 1 { "_reverse" } else { "" }),
                    w_ih: p(&[gates * hidden, width])?,
                    w_hh: p(&[gates * hidden, hidden])?,
                    b_ih: config.bias.then(|| p(&[gates * hidden])).transpose()?,
                    b_hh: config.bias.then(|| p(&[gates * hidden])).transpose()?,
                });
            }
        }
        Ok(Stack {
            cells,
            hidden,
            config,
            dropout: Dropout::new(config.dropout, 0)?,
        })
    }

    fn directions(&self) -> usize {
        if self.config.bidirectional {
            2
        } else {
            1
        }
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        for c in &self.cells {
            f(&format!("{prefix}weight_ih{}", c.suffix), &c.w_ih);
            f(&format!("{prefix}weight_hh{}", c.suffix), &c.w_hh);
            if let (Some(bi), Some(bh)) = (&c.b_ih, &c.b_hh) {
                f(&format!("{prefix}bias_ih{}", c.suffix), bi);
                f(&format!("{prefix}bias_hh{}", c.suffix), bh);
            }
        }
    }

    /// Runs every layer and direction; `step(x_seq, states, weights)` runs one
    /// direction over a `[T, n, in]` sequence and returns its outputs and final
    /// states. `init` is each cell's initial states. Returns `[T, n, dirs·h]` in the
    /// caller's layout and each state's final values stacked `[layers·dirs, n, h]`.
    #[track_caller]
    fn run(
        &self,
        x: &Var<T>,
        init: Vec<Vec<Var<T>>>,
        step: &Direction<T>,
    ) -> Result<(Var<T>, Vec<Var<T>>)> {
        let mut seq = if self.config.batch_first {
            x.transpose(0, 1)?
        } else {
            x.clone()
        };
        let t = seq.dims().first().copied().unwrap_or(0);
        let reversed = IntTensor::from((0..t as i64).rev().collect::<Vec<_>>());
        let mut finals: Vec<Vec<Var<T>>> = Vec::new();
        let dirs = self.directions();
        for layer in 0..self.config.num_layers {
            let mut outs = Vec::with_capacity(dirs);
            for dir in 0..dirs {
                let k = layer * dirs + dir;
                let c = &self.cells[k];
                let tape = x.tape();
                let (w_ih, w_hh) = (tape.param(&c.w_ih), tape.param(&c.w_hh));
                let (b_ih, b_hh) = (
                    tape.param_opt(c.b_ih.as_ref()),
                    tape.param_opt(c.b_hh.as_ref()),
                );
                let w = RnnWeights {
                    w_ih: &w_ih,
                    w_hh: &w_hh,
                    b_ih: b_ih.as_ref(),
                    b_hh: b_hh.as_ref(),
                };
                let input = if dir == 1 {
                    seq.index_select(0, &reversed)?
                } else {
                    seq.clone()
                };
                let (out, last) = step(&input, &init[k], &w)?;
                outs.push(if dir == 1 {
                    out.index_select(0, &reversed)?
                } else {
                    out
                });
                finals.push(last);
            }
            seq = if dirs == 1 {
                outs.pop().expect("one direction")
            } else {
                Var::concat(&[&outs[0], &outs[1]], 2)?
            };
            if layer + 1 < self.config.num_layers {
                seq = self.dropout.forward(&seq)?;
            }
        }
        let out = if self.config.batch_first {
            seq.transpose(0, 1)?
        } else {
            seq
        };
        let states = (0..finals[0].len())
            .map(|s| Var::stack(&finals.iter().map(|f| &f[s]).collect::<Vec<_>>(), 0))
            .collect::<Result<Vec<_>>>()?;
        Ok((out, states))
    }

    /// Each cell's initial state `s` from `[layers·dirs, n, h]`, or zeros.
    fn initial(&self, x: &Var<T>, given: Option<&Var<T>>) -> Result<Vec<Var<T>>> {
        let n = if self.config.batch_first {
            x.dims().first()
        } else {
            x.dims().get(1)
        }
        .copied()
        .unwrap_or(0);
        (0..self.cells.len())
            .map(|k| match given {
                Some(h) => h
                    .narrow(0, k, 1)?
                    .reshape(&[n as isize, self.hidden as isize]),
                None => Ok(x
                    .tape()
                    .constant(chainrule_autograd::Tensor::zeros(&[n, self.hidden])?)),
            })
            .collect()
    }
}

/// A multi-layer LSTM (PyTorch's `nn.LSTM`): [`Lstm::forward_with`] returns the output
/// sequence and the final `(h_n, c_n)`, each `[layers·directions, n, hidden]`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::{Lstm, RnnConfig}, ModuleState};
/// use rand::SeedableRng;
/// let cfg = RnnConfig { num_layers: 2, bidirectional: true, batch_first: true, ..Default::default() };
/// let lstm = Lstm::<f32>::new(3, 5, cfg, &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let x = Tape::new().constant(Tensor::ones(&[4, 7, 3])?); // [n, T, input]
/// let (out, (h, c)) = lstm.forward_with(&x, None)?;
/// assert_eq!((out.dims(), h.dims(), c.dims()), (&[4, 7, 10][..], &[4, 4, 5][..], &[4, 4, 5][..]));
/// assert_eq!(lstm.named_parameters()[4].0, "weight_ih_l0_reverse");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Lstm<T: Element = f32> {
    stack: Stack<T>,
}

impl<T: Element> Lstm<T> {
    /// `input` features to `hidden` ones, PyTorch's initialization.
    ///
    /// # Errors
    /// Zero layers or hidden size; a dropout outside `[0, 1]`.
    pub fn new<R: Rng + ?Sized>(
        input: usize,
        hidden: usize,
        config: RnnConfig,
        rng: &mut R,
    ) -> crate::Result<Self> {
        Ok(Lstm {
            stack: Stack::new("LSTM", 4, input, hidden, config, rng)?,
        })
    }

    /// The output sequence and the final `(h_n, c_n)`, from `(h_0, c_0)` (zeros when
    /// `None`), each `[layers·directions, n, hidden]`.
    ///
    /// # Errors
    /// A sequence or state of the wrong shape.
    #[track_caller]
    pub fn forward_with(
        &self,
        x: &Var<T>,
        state: Option<(&Var<T>, &Var<T>)>,
    ) -> Result<(Var<T>, LstmState<T>)> {
        let s = &self.stack;
        let (h0, c0) = (
            s.initial(x, state.map(|s| s.0))?,
            s.initial(x, state.map(|s| s.1))?,
        );
        let init = h0.into_iter().zip(c0).map(|(h, c)| vec![h, c]).collect();
        let (out, mut states) = s.run(x, init, &|seq, st, w| {
            let (out, (h, c)) = seq.lstm(&st[0], &st[1], w)?;
            Ok((out, vec![h, c]))
        })?;
        let c = states.pop().expect("two states");
        let h = states.pop().expect("two states");
        Ok((out, (h, c)))
    }
}

impl<T: Element> ModuleState<T> for Lstm<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.stack.visit_params(prefix, f);
    }

    fn set_training(&self, training: bool) {
        ModuleState::<T>::set_training(&self.stack.dropout, training);
    }
}

impl<T: Element> Module<T> for Lstm<T> {
    /// The output sequence from zero states.
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(self.forward_with(x, None)?.0)
    }
}

/// A multi-layer GRU (PyTorch's `nn.GRU`): [`Gru::forward_with`] returns the output
/// sequence and the final `h_n` `[layers·directions, n, hidden]`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::layers::{Gru, RnnConfig};
/// use rand::SeedableRng;
/// let gru = Gru::<f32>::new(3, 5, RnnConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let x = Tape::new().constant(Tensor::ones(&[7, 4, 3])?);
/// let (out, h) = gru.forward_with(&x, None)?;
/// assert_eq!((out.dims(), h.dims()), (&[7, 4, 5][..], &[1, 4, 5][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Gru<T: Element = f32> {
    stack: Stack<T>,
}

impl<T: Element> Gru<T> {
    /// `input` features to `hidden` ones, PyTorch's initialization.
    ///
    /// # Errors
    /// Zero layers or hidden size; a dropout outside `[0, 1]`.
    pub fn new<R: Rng + ?Sized>(
        input: usize,
        hidden: usize,
        config: RnnConfig,
        rng: &mut R,
    ) -> crate::Result<Self> {
        Ok(Gru {
            stack: Stack::new("GRU", 3, input, hidden, config, rng)?,
        })
    }

    /// The output sequence and the final `h_n`, from `h_0` (zeros when `None`).
    ///
    /// # Errors
    /// A sequence or state of the wrong shape.
    #[track_caller]
    pub fn forward_with(&self, x: &Var<T>, h0: Option<&Var<T>>) -> Result<(Var<T>, Var<T>)> {
        let s = &self.stack;
        let init = s.initial(x, h0)?.into_iter().map(|h| vec![h]).collect();
        let (out, mut states) = s.run(x, init, &|seq, st, w| {
            let (out, h) = seq.gru(&st[0], w)?;
            Ok((out, vec![h]))
        })?;
        Ok((out, states.pop().expect("one state")))
    }
}

impl<T: Element> ModuleState<T> for Gru<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.stack.visit_params(prefix, f);
    }

    fn set_training(&self, training: bool) {
        ModuleState::<T>::set_training(&self.stack.dropout, training);
    }
}

impl<T: Element> Module<T> for Gru<T> {
    /// The output sequence from a zero state.
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(self.forward_with(x, None)?.0)
    }
}
