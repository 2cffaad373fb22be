use chainrule_autograd::{Element, IntTensor, Result, Var};
use rand::Rng;

use super::{Dropout, LayerNorm, Linear, MultiheadAttention};
use crate::Module;

/// The feed-forward activation of a [`TransformerEncoderLayer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FeedForwardActivation {
    /// PyTorch's default.
    #[default]
    Relu,
    /// Exact GELU.
    Gelu,
}

/// [`TransformerEncoderLayer`]'s settings; the default is PyTorch's
/// (`dim_feedforward` 2048, dropout 0.1, ReLU, eps 1e-5, sequence-first, post-norm).
///
/// ```
/// use chainrule_nn::layers::TransformerConfig;
/// let c = TransformerConfig { dim_feedforward: 128, norm_first: true, ..TransformerConfig::default() };
/// assert_eq!(c.dropout, 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Hidden size of the feed-forward block.
    pub dim_feedforward: usize,
    /// Dropout after attention, inside and after the feed-forward block.
    pub dropout: f64,
    /// The feed-forward activation.
    pub activation: FeedForwardActivation,
    /// The layer norms' ε.
    pub layer_norm_eps: f64,
    /// Sequences are `[n, L, E]` rather than `[L, n, E]`.
    pub batch_first: bool,
    /// Pre-norm (`x + f(norm(x))`) instead of post-norm (`norm(x + f(x))`).
    pub norm_first: bool,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: FeedForwardActivation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
        }
    }
}

/// PyTorch's `nn.TransformerEncoderLayer`: self-attention and a feed-forward block,
/// each with a residual connection and a layer norm, with PyTorch's parameter names
/// (`self_attn.in_proj_weight`, `linear1.weight`, `norm1.weight`, …).
///
/// One difference in training mode: PyTorch also drops attention weights inside
/// `self_attn`; here dropout applies after the attention and in the feed-forward
/// block only. Eval mode is identical.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::{TransformerConfig, TransformerEncoderLayer}, Module, ModuleState};
/// use rand::SeedableRng;
/// let config = TransformerConfig { dim_feedforward: 32, batch_first: true, ..TransformerConfig::default() };
/// let layer = TransformerEncoderLayer::<f32>::new(16, 4, config, &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// layer.eval();
/// let x = Tape::new().constant(Tensor::zeros(&[2, 5, 16])?);
/// assert_eq!(layer.forward(&x)?.dims(), &[2, 5, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct TransformerEncoderLayer<T: Element = f32> {
    /// Self-attention.
    pub self_attn: MultiheadAttention<T>,
    /// Feed-forward in: `d_model → dim_feedforward`.
    pub linear1: Linear<T>,
    /// Inside the feed-forward block.
    pub dropout: Dropout,
    /// Feed-forward out: `dim_feedforward → d_model`.
    pub linear2: Linear<T>,
    /// Around the attention block.
    pub norm1: LayerNorm<T>,
    /// Around the feed-forward block.
    pub norm2: LayerNorm<T>,
    /// After the attention.
    pub dropout1: Dropout,
    /// After the feed-forward block.
    pub dropout2: Dropout,
    #[module(skip)]
    config: TransformerConfig,
}

impl<T: Element> TransformerEncoderLayer<T> {
    /// A layer of width `d_model` with `nhead` heads, PyTorch's initialization.
    ///
    /// # Errors
    /// `d_model` not divisible by `nhead`, a dropout outside [0, 1], or a size too large.
    pub fn new<R: Rng + ?Sized>(
        d_model: usize,
        nhead: usize,
        config: TransformerConfig,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let mut dropout = || Dropout::new(config.dropout, rng.gen());
        let (dropout, dropout1, dropout2) = (dropout()?, dropout()?, dropout()?);
        let norm = || LayerNorm::new(&[d_model], config.layer_norm_eps, true);
        Ok(TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead, config.batch_first, rng)?,
            linear1: Linear::new(d_model, config.dim_feedforward, rng)?,
            dropout,
            linear2: Linear::new(config.dim_feedforward, d_model, rng)?,
            norm1: norm()?,
            norm2: norm()?,
            dropout1,
            dropout2,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// The layer over `src` with an attention mask `[L, L]` (1 = attend) and/or a
    /// causal mask.
    ///
    /// # Errors
    /// A sequence that is not 3-D or not `d_model` wide.
    #[track_caller]
    pub fn forward_with(
        &self,
        src: &Var<T>,
        mask: Option<IntTensor>,
        is_causal: bool,
    ) -> Result<Var<T>> {
        let attend = |x: &Var<T>| -> Result<Var<T>> {
            let a = self
                .self_attn
                .forward_with(x, x, x, mask.clone(), is_causal)?;
            self.dropout1.forward(&a)
        };
        let feed_forward = |x: &Var<T>| -> Result<Var<T>> {
            let h = self.linear1.forward(x)?;
            let h = match self.config.activation {
                FeedForwardActivation::Relu => h.relu(),
                FeedForwardActivation::Gelu => h.gelu(),
            };
            let h = self.linear2.forward(&self.dropout.forward(&h)?)?;
            self.dropout2.forward(&h)
        };
        if self.config.norm_first {
            let x = src.add(&attend(&self.norm1.forward(src)?)?)?;
            x.add(&feed_forward(&self.norm2.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&src.add(&attend(src)?)?)?;
            self.norm2.forward(&x.add(&feed_forward(&x)?)?)
        }
    }
}

impl<T: Element> Module<T> for TransformerEncoderLayer<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_with(x, None, false)
    }
}
