use chainrule_autograd::{Element, Result, Var};
use rand::Rng;

use crate::layers::{Linear, Lstm, RnnConfig};
use crate::Module;

/// An MNIST image read as a sequence of 28 rows of 28 pixels by an LSTM(28 → 128),
/// whose last hidden state a Linear(128 → 10) classifies. Input `[n, 1, 28, 28]` (or
/// `[n, 784]`), output logits `[n, 10]`. Parameter names are PyTorch's for the same
/// model (`lstm.weight_ih_l0`, …, `fc.bias`).
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{models::LstmRows, Module, ModuleState};
/// use rand::SeedableRng;
/// let net = LstmRows::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0))?;
/// assert_eq!(net.num_parameters(), 4 * 128 * (28 + 128 + 2) + 128 * 10 + 10);
/// let x = Tape::new().constant(Tensor::zeros(&[2, 1, 28, 28])?);
/// assert_eq!(net.forward(&x)?.dims(), &[2, 10]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct LstmRows<T: Element = f32> {
    /// Reads the rows.
    pub lstm: Lstm<T>,
    /// Classifies the last hidden state.
    pub fc: Linear<T>,
}

impl<T: Element> LstmRows<T> {
    /// PyTorch's initialization of both layers.
    ///
    /// # Errors
    /// None in practice (the sizes are fixed and small).
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> crate::Result<Self> {
        let config = RnnConfig {
            batch_first: true,
            ..RnnConfig::default()
        };
        Ok(LstmRows {
            lstm: Lstm::new(28, 128, config, rng)?,
            fc: Linear::new(128, 10, rng)?,
        })
    }
}

impl<T: Element> Module<T> for LstmRows<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let rows = x.reshape(&[-1, 28, 28])?;
        let (_, (h, _)) = self.lstm.forward_with(&rows, None)?;
        // h_n is [layers, n, hidden]; one layer
        self.fc.forward(&h.squeeze(Some(0))?)
    }
}
