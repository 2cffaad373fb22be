use chainrule_autograd::{Element, Param, Result, Tensor, Var};
use rand::Rng;

use crate::Module;

/// `y = x·Wᵀ + b` with `W [out, in]`, `b [out]`; parameters `weight` and `bias`.
///
/// Default initialization is PyTorch's: weight and bias U(±1/√in). For a ReLU
/// network you may prefer He's ([`crate::init::kaiming_normal`]), for tanh/sigmoid
/// Glorot's ([`crate::init::xavier_uniform`]); set them with [`Param::set`].
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Linear, Module, ModuleState};
/// use rand::SeedableRng;
/// let fc = Linear::<f32>::new(432, 10, &mut rand::rngs::StdRng::seed_from_u64(1))?;
/// let x = Tape::new().constant(Tensor::zeros(&[64, 432])?);
/// assert_eq!(fc.forward(&x)?.dims(), &[64, 10]);
/// assert_eq!(fc.num_parameters(), 4330);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
#[derive(crate::Module)]
pub struct Linear<T: Element = f32> {
    /// `[out, in]`.
    pub weight: Param<T>,
    /// `[out]`, if any.
    pub bias: Option<Param<T>>,
}

impl<T: Element> Linear<T> {
    /// A layer with bias, PyTorch's default initialization.
    ///
    /// # Errors
    /// A weight too large to describe or allocate.
    pub fn new<R: Rng + ?Sized>(
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let (w, b) = super::default_init(&[out_features, in_features], true, rng)?;
        Ok(Self::from_tensors(w, b))
    }

    /// A layer without bias.
    ///
    /// # Errors
    /// A weight too large to describe or allocate.
    pub fn without_bias<R: Rng + ?Sized>(
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let (w, _) = super::default_init(&[out_features, in_features], false, rng)?;
        Ok(Self::from_tensors(w, None))
    }

    /// A layer from given values.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Self {
        Linear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
        }
    }
}

impl<T: Element> Module<T> for Linear<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let b = tape.param_opt(self.bias.as_ref());
        x.linear(&tape.param(&self.weight), b.as_ref())
    }
}
