//! Activation layers (no parameters).

use chainrule_autograd::{Element, Result, Var};

use crate::{Module, ModuleState};

/// max(x, 0).
#[derive(Clone, Copy, Debug)]
pub struct ReLU;

impl<T: Element> ModuleState<T> for ReLU {}

impl<T: Element> Module<T> for ReLU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.relu())
    }
}

/// x for x > 0, slope·x otherwise.
#[derive(Clone, Copy, Debug)]
pub struct LeakyReLU(pub f64);

impl<T: Element> ModuleState<T> for LeakyReLU {}

impl<T: Element> Module<T> for LeakyReLU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.leaky_relu(self.0))
    }
}

/// The logistic function.
#[derive(Clone, Copy, Debug)]
pub struct Sigmoid;

impl<T: Element> ModuleState<T> for Sigmoid {}

impl<T: Element> Module<T> for Sigmoid {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.sigmoid())
    }
}

/// Hyperbolic tangent.
#[derive(Clone, Copy, Debug)]
pub struct Tanh;

impl<T: Element> ModuleState<T> for Tanh {}

impl<T: Element> Module<T> for Tanh {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.tanh())
    }
}

/// Softmax along a dim. For training, feed logits to `cross_entropy` instead: it fuses
/// the softmax and stays stable.
#[derive(Clone, Copy, Debug)]
pub struct Softmax(pub isize);

impl<T: Element> ModuleState<T> for Softmax {}

impl<T: Element> Module<T> for Softmax {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.softmax(self.0)
    }
}

/// Which formula [`GELU`] uses, as PyTorch's `approximate` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeluApproximation {
    /// The exact `x·Φ(x)` (PyTorch's `'none'`, the default).
    #[default]
    None,
    /// The tanh approximation (`'tanh'`).
    Tanh,
}

/// `x·Φ(x)`, the Gaussian error linear unit; `GELU::default()` is exact.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::{GeluApproximation, GELU}, Module};
/// let tape = Tape::<f64>::new();
/// let x = tape.constant(Tensor::from_vec(vec![1.0], &[1])?);
/// let exact = GELU::default().forward(&x)?.value().item().unwrap();
/// let tanh = GELU(GeluApproximation::Tanh).forward(&x)?.value().item().unwrap();
/// assert!((exact - 0.841_344_746).abs() < 1e-9 && (tanh - exact).abs() < 1e-3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct GELU(pub GeluApproximation);

impl<T: Element> ModuleState<T> for GELU {}

impl<T: Element> Module<T> for GELU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(match self.0 {
            GeluApproximation::None => x.gelu(),
            GeluApproximation::Tanh => x.gelu_tanh(),
        })
    }
}

/// `x·σ(x)` (also called swish).
#[derive(Clone, Copy, Debug)]
pub struct SiLU;

impl<T: Element> ModuleState<T> for SiLU {}

impl<T: Element> Module<T> for SiLU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.silu())
    }
}

/// x for x > 0, `alpha·(eˣ − 1)` otherwise; PyTorch's default alpha is 1.
#[derive(Clone, Copy, Debug)]
pub struct ELU(pub f64);

impl Default for ELU {
    fn default() -> Self {
        ELU(1.0)
    }
}

impl<T: Element> ModuleState<T> for ELU {}

impl<T: Element> Module<T> for ELU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.elu(self.0))
    }
}

/// `ln(1 + e^(beta·x))/beta`, linear where `beta·x > threshold`; PyTorch's defaults
/// are beta 1 and threshold 20.
#[derive(Clone, Copy, Debug)]
pub struct Softplus {
    /// The sharpness β.
    pub beta: f64,
    /// Above `β·x > threshold` the output is x itself.
    pub threshold: f64,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl<T: Element> ModuleState<T> for Softplus {}

impl<T: Element> Module<T> for Softplus {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.softplus(self.beta, self.threshold))
    }
}

/// `ln σ(x)`, computed without overflow.
#[derive(Clone, Copy, Debug)]
pub struct LogSigmoid;

impl<T: Element> ModuleState<T> for LogSigmoid {}

impl<T: Element> Module<T> for LogSigmoid {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.log_sigmoid())
    }
}
