//! Weight initializers with PyTorch's formulas, drawing from a user-supplied RNG so
//! runs are reproducible.
//!
//! Fans come from the weight's shape exactly as PyTorch computes them: `[out, in]`
//! gives `fan_in = in`, `fan_out = out`; a conv kernel `[out, in/groups, kh, kw]` gives
//! `fan_in = in/groups·kh·kw` and `fan_out = out·kh·kw`.
//!
//! Which to use: He/Kaiming (`kaiming_*`, fan-in, `Nonlinearity::Relu`) keeps the
//! activation variance constant through ReLU layers; Glorot/Xavier (`xavier_*`) does
//! the same for tanh/sigmoid layers. The layers default to PyTorch's own rule
//! (`kaiming_uniform` with `a = √5`, i.e. U(±1/√fan_in)) so a model ported from
//! PyTorch trains the same way; see `Linear::new`.
//!
//! ```
//! use chainrule_nn::init::{self, FanMode, Nonlinearity};
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! assert_eq!(init::fans(&[3, 1, 5, 5])?, (25, 75));
//! let w = init::kaiming_normal::<f32, _>(&[3, 1, 5, 5], FanMode::FanIn, Nonlinearity::Relu, &mut rng)?;
//! assert_eq!(w.dims(), &[3, 1, 5, 5]);
//! # Ok::<(), chainrule_nn::Error>(())
//! ```

use chainrule_autograd::{Element, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::{Error, Result};

/// Which fan the Kaiming scale divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass.
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity a layer feeds, for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity (gain 1).
    Linear,
    /// A convolution with no nonlinearity (gain 1).
    Conv2d,
    /// Logistic sigmoid (gain 1).
    Sigmoid,
    /// tanh (gain 5/3).
    Tanh,
    /// ReLU (gain √2).
    Relu,
    /// Leaky ReLU with this negative slope (gain √(2/(1+a²))).
    LeakyRelu(f64),
    /// SELU (gain 3/4).
    Selu,
}

impl Nonlinearity {
    /// Parses PyTorch's name; `param` is leaky ReLU's slope (default 0.01).
    ///
    /// # Errors
    /// An unknown name.
    pub fn from_name(name: &str, param: Option<f64>) -> Result<Self> {
        Ok(match name {
            "linear" | "identity" => Nonlinearity::Linear,
            "conv1d" | "conv2d" | "conv3d" => Nonlinearity::Conv2d,
            "sigmoid" => Nonlinearity::Sigmoid,
            "tanh" => Nonlinearity::Tanh,
            "relu" => Nonlinearity::Relu,
            "leaky_relu" => Nonlinearity::LeakyRelu(param.unwrap_or(0.01)),
            "selu" => Nonlinearity::Selu,
            other => {
                return Err(Error::Invalid {
                    what: "calculate_gain",
                    reason: format!("unknown nonlinearity {other:?}"),
                })
            }
        })
    }
}

/// PyTorch's `calculate_gain`: the factor that keeps activations' scale through a
/// nonlinearity.
///
/// ```
/// use chainrule_nn::init::{calculate_gain, Nonlinearity};
/// assert_eq!(calculate_gain(Nonlinearity::Relu), 2f64.sqrt());
/// ```
pub fn calculate_gain(nonlinearity: Nonlinearity) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Conv2d | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight shape, as PyTorch computes them.
///
/// # Errors
/// Fewer than 2 dims (a bias has no fans).
pub fn fans(dims: &[usize]) -> Result<(usize, usize)> {
    if dims.len() < 2 {
        return Err(Error::Invalid {
            what: "fans",
            reason: format!("shape {dims:?} has fewer than 2 dims"),
        });
    }
    let product = |ds: &[usize]| ds.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let fans =
        product(&dims[2..]).and_then(|r| Some((dims[1].checked_mul(r)?, dims[0].checked_mul(r)?)));
    fans.ok_or_else(|| Error::Invalid {
        what: "fans",
        reason: format!("shape {dims:?} is too large"),
    })
}

fn fan(dims: &[usize], mode: FanMode) -> Result<usize> {
    let (fan_in, fan_out) = fans(dims)?;
    let f = if mode == FanMode::FanIn {
        fan_in
    } else {
        fan_out
    };
    if f == 0 {
        return Err(Error::Invalid {
            what: "init",
            reason: format!("shape {dims:?} has a zero fan"),
        });
    }
    Ok(f)
}

/// Glorot's standard deviation `gain·√(2/(fan_in+fan_out))`.
///
/// # Errors
/// As [`fans`].
pub fn xavier_std(dims: &[usize], gain: f64) -> Result<f64> {
    let (i, o) = fans(dims)?;
    Ok(gain * (2.0 / (i + o) as f64).sqrt())
}

/// He's standard deviation `gain/√fan`.
///
/// # Errors
/// As [`fans`], or a zero fan.
pub fn kaiming_std(dims: &[usize], mode: FanMode, nonlinearity: Nonlinearity) -> Result<f64> {
    Ok(calculate_gain(nonlinearity) / (fan(dims, mode)? as f64).sqrt())
}

/// A tensor of zeros.
///
/// ```
/// assert_eq!(chainrule_nn::init::zeros::<f32>(&[2])?.data(), &[0.0; 2]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
///
/// # Errors
/// The shape is too large or cannot be allocated.
pub fn zeros<T: Element>(dims: &[usize]) -> Result<Tensor<T>> {
    Ok(Tensor::zeros(dims)?)
}

/// A tensor of ones.
///
/// ```
/// assert_eq!(chainrule_nn::init::ones::<f32>(&[2])?.data(), &[1.0; 2]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
///
/// # Errors
/// As [`zeros`].
pub fn ones<T: Element>(dims: &[usize]) -> Result<Tensor<T>> {
    Ok(Tensor::ones(dims)?)
}

/// A tensor filled with `value`.
///
/// ```
/// assert_eq!(chainrule_nn::init::constant::<f32>(&[2], 0.5)?.data(), &[0.5; 2]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
///
/// # Errors
/// As [`zeros`].
pub fn constant<T: Element>(dims: &[usize], value: f64) -> Result<Tensor<T>> {
    Ok(Tensor::full(dims, T::from_f64(value))?)
}

/// A tensor of `dims` whose elements are drawn in order from `draw` (the shape is
/// checked and allocated before any draw).
fn sampled<T: Element>(dims: &[usize], mut draw: impl FnMut() -> f64) -> Result<Tensor<T>> {
    let mut t = Tensor::zeros(dims)?;
    t.data_mut()
        .iter_mut()
        .for_each(|v| *v = T::from_f64(draw()));
    Ok(t)
}

/// Samples from U(low, high).
///
/// # Errors
/// `low > high` or a bound that is not finite.
pub fn uniform<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    low: f64,
    high: f64,
    rng: &mut R,
) -> Result<Tensor<T>> {
    if low > high || !low.is_finite() || !high.is_finite() {
        return Err(Error::Invalid {
            what: "uniform",
            reason: format!("bounds {low}..{high}"),
        });
    }
    let d = Uniform::new_inclusive(low, high);
    sampled(dims, || d.sample(rng))
}

/// Samples from N(mean, std²).
///
/// # Errors
/// A negative or non-finite `std`.
pub fn normal<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    mean: f64,
    std: f64,
    rng: &mut R,
) -> Result<Tensor<T>> {
    let d = Normal::new(mean, std).map_err(|e| Error::Invalid {
        what: "normal",
        reason: format!("std {std}: {e}"),
    })?;
    sampled(dims, || d.sample(rng))
}

/// Glorot uniform: U(±gain·√(6/(fan_in+fan_out))).
///
/// # Errors
/// As [`fans`].
pub fn xavier_uniform<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    gain: f64,
    rng: &mut R,
) -> Result<Tensor<T>> {
    let bound = 3f64.sqrt() * xavier_std(dims, gain)?;
    uniform(dims, -bound, bound, rng)
}

/// Glorot normal: N(0, gain²·2/(fan_in+fan_out)).
///
/// # Errors
/// As [`fans`].
pub fn xavier_normal<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    gain: f64,
    rng: &mut R,
) -> Result<Tensor<T>> {
    normal(dims, 0.0, xavier_std(dims, gain)?, rng)
}

/// He uniform: U(±√3·gain/√fan).
///
/// # Errors
/// As [`kaiming_std`].
pub fn kaiming_uniform<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut R,
) -> Result<Tensor<T>> {
    let bound = 3f64.sqrt() * kaiming_std(dims, mode, nonlinearity)?;
    uniform(dims, -bound, bound, rng)
}

/// He normal: N(0, gain²/fan).
///
/// # Errors
/// As [`kaiming_std`].
pub fn kaiming_normal<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut R,
) -> Result<Tensor<T>> {
    normal(dims, 0.0, kaiming_std(dims, mode, nonlinearity)?, rng)
}

/// PyTorch's default for `Linear` and `Conv2d`: weight `kaiming_uniform(a = √5)`, which
/// is U(±1/√fan_in), and bias U(±1/√fan_in).
///
/// # Errors
/// As [`kaiming_std`].
pub fn pytorch_default<T: Element, R: Rng + ?Sized>(
    weight_dims: &[usize],
    bias: bool,
    rng: &mut R,
) -> Result<(Tensor<T>, Option<Tensor<T>>)> {
    let w = kaiming_uniform(
        weight_dims,
        FanMode::FanIn,
        Nonlinearity::LeakyRelu(5f64.sqrt()),
        rng,
    )?;
    let bound = 1.0 / (fan(weight_dims, FanMode::FanIn)? as f64).sqrt();
    let b = if bias {
        Some(uniform(&[weight_dims[0]], -bound, bound, rng)?)
    } else {
        None
    };
    Ok((w, b))
}
