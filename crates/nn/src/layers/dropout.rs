use std::cell::{Cell, RefCell};

use chainrule_autograd::{Element, Result, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::Module;

/// Zeroes each element with probability `p` during training and scales the rest by
/// `1/(1−p)`; the identity in evaluation mode. Starts in training mode.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Dropout, Module};
/// let d = Dropout::new(0.5, 7);
/// let x = Tape::<f32>::new().constant(Tensor::ones(&[1000])?);
/// let y = d.forward(&x)?;
/// assert!(y.value().data().iter().all(|&v| v == 0.0 || v == 2.0));
/// Module::<f32>::set_training(&d, false);
/// assert_eq!(d.forward(&x)?.value(), x.value());
/// # Ok::<(), chainrule_autograd::Error>(())
/// ```
pub struct Dropout {
    p: f64,
    training: Cell<bool>,
    rng: RefCell<StdRng>,
}

impl Dropout {
    /// Drop probability `p` (clamped to `0..=1`), masks drawn from an RNG seeded with `seed`.
    pub fn new(p: f64, seed: u64) -> Self {
        Dropout {
            p: p.clamp(0.0, 1.0),
            training: Cell::new(true),
            rng: RefCell::new(StdRng::seed_from_u64(seed)),
        }
    }
}

impl<T: Element> Module<T> for Dropout {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        if !self.training.get() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        };
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<T> = (0..x.value().numel())
            .map(|_| T::from_f64(if rng.gen::<f64>() < self.p { 0.0 } else { keep }))
            .collect();
        let mask = Tensor::from_vec(mask, x.dims()).expect("mask has x's length");
        x.mul(&x.tape().constant(mask))
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}
