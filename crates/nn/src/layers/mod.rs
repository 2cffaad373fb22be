//! The layers: each a [`crate::Module`] with PyTorch's name, defaults and parameter names.

mod activation;
mod attention;
mod conv;
mod conv_transpose;
mod dropout;
mod embedding;
mod flatten;
mod identity;
mod linear;
mod module_list;
mod norm;
mod pool;
mod recurrent;
mod sequential;
mod transformer;
mod upsample;

pub use activation::{
    GeluApproximation, LeakyReLU, LogSigmoid, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh, ELU,
    GELU,
};
pub use attention::MultiheadAttention;
pub use conv::Conv2d;
pub use conv_transpose::ConvTranspose2d;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use identity::Identity;
pub use linear::Linear;
pub use module_list::ModuleList;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, GroupNorm, LayerNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use recurrent::{Gru, Lstm, RnnConfig};
pub use sequential::Sequential;
pub use transformer::{FeedForwardActivation, TransformerConfig, TransformerEncoderLayer};
pub use upsample::Upsample;

use chainrule_autograd::{Element, Tensor};
use rand::Rng;

/// PyTorch's default layer initialization: weight and bias both U(±1/√fan_in), where
/// fan_in is `dims[1]·Π dims[2..]` (this is `kaiming_uniform` with `a = √5`).
///
/// # Errors
/// A shape too large to describe or allocate (checked before any value is drawn).
pub(crate) fn default_init<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    bias: bool,
    rng: &mut R,
) -> crate::Result<(Tensor<T>, Option<Tensor<T>>)> {
    fan_in_init(dims, bias.then(|| dims[0]), rng)
}

/// [`default_init`] with a bias of `bias_len` entries, for layers whose output count
/// is not the weight's first dim (`ConvTranspose2d`: `[in, out/groups, kh, kw]`).
///
/// # Errors
/// As [`default_init`].
pub(crate) fn fan_in_init<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    bias_len: Option<usize>,
    rng: &mut R,
) -> crate::Result<(Tensor<T>, Option<Tensor<T>>)> {
    let mut w = Tensor::zeros(dims)?;
    let mut b = bias_len.map(|n| Tensor::zeros(&[n])).transpose()?;
    // the weight exists, so this product of its dims cannot overflow
    let fan_in: usize = dims[1..].iter().product();
    let bound = if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f64).sqrt()
    };
    let mut fill = |t: &mut Tensor<T>| {
        for v in t.data_mut() {
            *v = T::from_f64(if bound > 0.0 {
                rng.gen_range(-bound..bound)
            } else {
                0.0
            });
        }
    };
    fill(&mut w);
    if let Some(b) = b.as_mut() {
        fill(b);
    }
    Ok((w, b))
}
