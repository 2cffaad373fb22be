//! Multi-head attention with PyTorch's parameter layout (`in_proj_weight` `[3E, E]`,
//! `in_proj_bias`, `out_proj.weight`, `out_proj.bias`).

use chainrule_autograd::{AttentionOptions, Element, IntTensor, Param, Result, Tensor, Var};
use rand::Rng;

use crate::layers::Linear;
use crate::Module;

/// Multi-head attention (PyTorch's `nn.MultiheadAttention`, no dropout): queries,
/// keys and values projected by one packed `in_proj_weight`, split into `heads`,
/// attended with [`Var::scaled_dot_product_attention`], joined and projected by
/// `out_proj`. Sequences are `[L, n, E]`, or `[n, L, E]` with `batch_first`.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::MultiheadAttention, Module, ModuleState};
/// use rand::SeedableRng;
/// let mha = MultiheadAttention::<f32>::new(8, 2, true, &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let x = Tape::new().constant(Tensor::ones(&[3, 5, 8])?); // [n, L, E]
/// assert_eq!(mha.forward(&x)?.dims(), &[3, 5, 8]);
/// let names: Vec<String> = mha.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct MultiheadAttention<T: Element = f32> {
    /// `[3E, E]`: the query, key and value projections stacked.
    pub in_proj_weight: Param<T>,
    /// `[3E]`.
    pub in_proj_bias: Param<T>,
    /// `E → E`.
    pub out_proj: Linear<T>,
    heads: usize,
    batch_first: bool,
}

impl<T: Element> MultiheadAttention<T> {
    /// `embed_dim` split over `heads`, PyTorch's initialization (Glorot-uniform
    /// `in_proj_weight`, zero biases).
    ///
    /// # Errors
    /// `embed_dim` not divisible by `heads`, or zero heads.
    pub fn new<R: Rng + ?Sized>(
        embed_dim: usize,
        heads: usize,
        batch_first: bool,
        rng: &mut R,
    ) -> crate::Result<Self> {
        if heads == 0 || !embed_dim.is_multiple_of(heads) {
            return Err(crate::Error::Invalid {
                what: "MultiheadAttention",
                reason: format!("embed_dim {embed_dim} must be divisible by num_heads {heads}"),
            });
        }
        let w = crate::init::xavier_uniform::<T, R>(&[3 * embed_dim, embed_dim], 1.0, rng)?;
        let mut out_proj = Linear::new(embed_dim, embed_dim, rng)?;
        out_proj.bias = Some(Param::new(Tensor::zeros(&[embed_dim])?));
        Ok(MultiheadAttention {
            in_proj_weight: Param::new(w),
            in_proj_bias: Param::new(Tensor::zeros(&[3 * embed_dim])?),
            out_proj,
            heads,
            batch_first,
        })
    }

    /// Attention of `query` over `key`/`value`; `attn_mask` `[L, S]` (0 = do not
    /// attend, PyTorch's boolean mask inverted to "take part") and `is_causal` as in
    /// [`AttentionOptions`].
    ///
    /// # Errors
    /// Sequences that are not 3-D, or whose sizes do not fit `E`.
    #[track_caller]
    pub fn forward_with(
        &self,
        query: &Var<T>,
        key: &Var<T>,
        value: &Var<T>,
        attn_mask: Option<IntTensor>,
        is_causal: bool,
    ) -> Result<Var<T>> {
        let tape = query.tape();
        let e = self.out_proj.weight.dims()[0];
        let (w, b) = (
            tape.param(&self.in_proj_weight),
            tape.param(&self.in_proj_bias),
        );
        let (h, d) = (self.heads as isize, (e / self.heads) as isize);
        // [n, L, E] → [n, heads, L, d]
        let project = |x: &Var<T>, k: usize| -> Result<Var<T>> {
            let x = if self.batch_first {
                x.clone()
            } else {
                x.transpose(0, 1)?
            };
            let (n, l) = (x.dims()[0] as isize, x.dims()[1] as isize);
            let p = x.linear(&w.narrow(0, k * e, e)?, Some(&b.narrow(0, k * e, e)?))?;
            p.reshape(&[n, l, h, d])?.permute(&[0, 2, 1, 3])
        };
        let (q, k, v) = (project(query, 0)?, project(key, 1)?, project(value, 2)?);
        let opts = AttentionOptions {
            is_causal,
            scale: None,
            attn_mask,
        };
        let a = q.scaled_dot_product_attention(&k, &v, &opts)?;
        let (n, l) = (a.dims()[0] as isize, a.dims()[2] as isize);
        let joined = a.permute(&[0, 2, 1, 3])?.reshape(&[n, l, e as isize])?;
        let out = self.out_proj.forward(&joined)?;
        if self.batch_first {
            Ok(out)
        } else {
            out.transpose(0, 1)
        }
    }
}

impl<T: Element> Module<T> for MultiheadAttention<T> {
    /// Self-attention: `x` is the query, key and value.
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_with(x, x, x, None, false)
    }
}
