//! The seed network of the main job, shared by the one-process and the distributed
//! MNIST examples so both train the same model from the same seed.

use chainrule_autograd::Element;
use rand::Rng;

use crate::init::{self, FanMode, Nonlinearity};
use crate::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use crate::Result;

/// The seed network: 28×28 → conv 3@5×5 → ReLU → max-pool 2×2 → flatten (432) →
/// linear 10, its layers named `conv`, `relu`, `pool`, `flatten`, `fc`.
///
/// With `he_glorot`, He-normal weights for the ReLU conv layer (fan in),
/// Glorot-uniform for the head and zero biases; without, PyTorch's layer defaults.
///
/// ```
/// use chainrule_nn::{models::seed_cnn, ModuleState};
/// use rand::SeedableRng;
/// let net = seed_cnn::<f64, _>(&mut rand::rngs::StdRng::seed_from_u64(0), true)?;
/// assert_eq!(net.num_parameters(), 3 * 25 + 3 + 432 * 10 + 10);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
pub fn seed_cnn<T: Element, R: Rng + ?Sized>(
    rng: &mut R,
    he_glorot: bool,
) -> Result<Sequential<T>> {
    let conv = Conv2d::new(1, 3, [5, 5], rng)?;
    let fc = Linear::new(432, 10, rng)?;
    if he_glorot {
        let dims = conv.weight.dims();
        conv.weight.set(init::kaiming_normal(
            &dims,
            FanMode::FanIn,
            Nonlinearity::Relu,
            rng,
        )?);
        fc.weight
            .set(init::xavier_uniform(&fc.weight.dims(), 1.0, rng)?);
        for b in [&conv.bias, &fc.bias].into_iter().flatten() {
            b.set(init::zeros(&b.dims())?);
        }
    }
    Ok(Sequential::new()
        .push_named("conv", conv)
        .push_named("relu", ReLU)
        .push_named("pool", MaxPool2d::new([2, 2]))
        .push_named("flatten", Flatten::default())
        .push_named("fc", fc))
}
