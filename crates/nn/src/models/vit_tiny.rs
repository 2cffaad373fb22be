use chainrule_autograd::{Conv2dParams, Element, Param, Result, Var};
use rand::Rng;

use crate::layers::{
    Conv2d, FeedForwardActivation, LayerNorm, Linear, ModuleList, TransformerConfig,
    TransformerEncoderLayer,
};
use crate::Module;

/// A tiny vision transformer for MNIST: 7×7 patches embedded by a stride-7 convolution
/// (16 tokens of width 64) plus a learned position embedding, 2 pre-norm encoder layers
/// (4 heads, GELU feed-forward of 128, no dropout), a final LayerNorm, the mean over
/// tokens, and a Linear(64 → 10). Input `[n, 1, 28, 28]`, logits `[n, 10]`; PyTorch's
/// parameter names for the same model (`patch.weight`, `pos`, `blocks.0.self_attn.…`).
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{models::VitTiny, Module, ModuleState};
/// use rand::SeedableRng;
/// let net = VitTiny::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let x = Tape::new().constant(Tensor::zeros(&[2, 1, 28, 28])?);
/// assert_eq!(net.forward(&x)?.dims(), &[2, 10]);
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names[..4], ["pos", "patch.weight", "patch.bias", "blocks.0.self_attn.in_proj_weight"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct VitTiny<T: Element = f32> {
    /// The patch embedding: `[64, 1, 7, 7]`, stride 7.
    pub patch: Conv2d<T>,
    /// Position embedding `[1, 16, 64]`, N(0, 0.02²) at start.
    pub pos: Param<T>,
    /// The encoder layers.
    pub blocks: ModuleList<TransformerEncoderLayer<T>>,
    /// Before the head.
    pub norm: LayerNorm<T>,
    /// The classifier.
    pub head: Linear<T>,
}

/// Width of a token.
const D: usize = 64;

impl<T: Element> VitTiny<T> {
    /// PyTorch's initialization of every layer; the position embedding N(0, 0.02²).
    ///
    /// # Errors
    /// None in practice (the sizes are fixed and small).
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> crate::Result<Self> {
        let stride = Conv2dParams {
            stride: [7, 7],
            ..Conv2dParams::default()
        };
        let config = TransformerConfig {
            dim_feedforward: 128,
            dropout: 0.0,
            activation: FeedForwardActivation::Gelu,
            batch_first: true,
            norm_first: true,
            ..TransformerConfig::default()
        };
        let patch = Conv2d::with_options(1, D, [7, 7], stride, true, rng)?;
        let pos = Param::new(crate::init::normal(&[1, 16, D], 0.0, 0.02, rng)?);
        let mut blocks = ModuleList::new();
        for _ in 0..2 {
            blocks.push(TransformerEncoderLayer::new(D, 4, config, rng)?);
        }
        Ok(VitTiny {
            patch,
            pos,
            blocks,
            norm: LayerNorm::new(&[D], 1e-5, true)?,
            head: Linear::new(D, 10, rng)?,
        })
    }
}

impl<T: Element> Module<T> for VitTiny<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let x = x.reshape(&[-1, 1, 28, 28])?;
        // [n, 64, 4, 4] → [n, 16, 64]
        let tokens = self.patch.forward(&x)?.flatten(2)?.transpose(1, 2)?;
        let mut h = tokens.add(&x.tape().param(&self.pos))?;
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        let pooled = self.norm.forward(&h)?.mean_dims(&[1], false)?;
        self.head.forward(&pooled)
    }
}
