//! The layers: each a [`crate::Module`] with PyTorch's name, defaults and parameter names.

mod activation;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod pool;
mod sequential;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Softmax, Tanh};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::Linear;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use sequential::Sequential;

use chainrule_autograd::{Element, Tensor};
use rand::Rng;

/// PyTorch's default layer initialization: weight and bias both U(±1/√fan_in), where
/// fan_in is `dims[1]·Π dims[2..]` (this is `kaiming_uniform` with `a = √5`).
pub(crate) fn default_init<T: Element, R: Rng + ?Sized>(
    dims: &[usize],
    bias: bool,
    rng: &mut R,
) -> (Tensor<T>, Option<Tensor<T>>) {
    let fan_in: usize = dims[1..].iter().product();
    let bound = if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f64).sqrt()
    };
    let mut sample = |d: &[usize]| {
        let n: usize = d.iter().product();
        let data: Vec<T> = (0..n)
            .map(|_| {
                T::from_f64(if bound > 0.0 {
                    rng.gen_range(-bound..bound)
                } else {
                    0.0
                })
            })
            .collect();
        Tensor::from_vec(data, d).expect("length is the product of the dims")
    };
    let w = sample(dims);
    let b = bias.then(|| sample(&dims[..1]));
    (w, b)
}
