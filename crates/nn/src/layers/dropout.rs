use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use chainrule_autograd::{Element, Result, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{Module, ModuleState};

/// Zeroes each element with probability `p` during training and scales the rest by
/// `1/(1−p)`; the identity in evaluation mode. Starts in training mode.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Dropout, Module};
/// let d = Dropout::new(0.5, 7)?;
/// assert!(Dropout::new(1.5, 7).is_err()); // as PyTorch
/// let x = Tape::<f32>::new().constant(Tensor::ones(&[1000])?);
/// let y = d.forward(&x)?;
/// assert!(y.value().data().iter().all(|&v| v == 0.0 || v == 2.0));
/// chainrule_nn::ModuleState::<f32>::eval(&d);
/// assert_eq!(d.forward(&x)?.value(), x.value());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dropout {
    p: f64,
    training: AtomicBool,
    rng: Mutex<StdRng>,
}

impl Dropout {
    /// Drop probability `p`, masks drawn from an RNG seeded with `seed`.
    ///
    /// # Errors
    /// `p` outside `[0, 1]` or NaN (PyTorch's rule).
    pub fn new(p: f64, seed: u64) -> crate::Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(crate::Error::Invalid {
                what: "Dropout",
                reason: format!("dropout probability has to be between 0 and 1, but got {p}"),
            });
        }
        Ok(Dropout {
            p,
            training: AtomicBool::new(true),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }
}

impl<T: Element> ModuleState<T> for Dropout {
    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl<T: Element> Module<T> for Dropout {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        if !self.training.load(Ordering::Relaxed) || self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        };
        // the lock holds only an RNG, whole even after a panic elsewhere
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mask: Vec<T> = (0..x.value().numel())
            .map(|_| T::from_f64(if rng.gen::<f64>() < self.p { 0.0 } else { keep }))
            .collect();
        let mask = Tensor::from_vec(mask, x.dims()).expect("mask has x's length");
        x.mul(&x.tape().constant(mask))
    }
}
