//! Scaled dot-product attention, composed of recorded ops (batched matmul, scale, mask,
//! softmax, matmul), so its every derivative follows from theirs.

use chainrule_tensor::{Element, IntTensor};

use crate::error::InOp;
use crate::ops::shape_error;
use crate::{Result, Site, Var};

/// The options of [`Var::scaled_dot_product_attention`], PyTorch's keyword arguments.
///
/// ```
/// let o = chainrule_autograd::AttentionOptions::default();
/// assert!(!o.is_causal && o.scale.is_none() && o.attn_mask.is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct AttentionOptions {
    /// Query `i` attends to keys `j ≤ i` only (the mask is aligned top-left, as
    /// PyTorch's).
    pub is_causal: bool,
    /// Multiplies the scores; `None` is `1/√d`.
    pub scale: Option<f64>,
    /// Where it is 0 the query does not attend to the key (PyTorch's boolean
    /// `attn_mask`, True = take part); broadcasts against the scores `[…, L, S]`.
    pub attn_mask: Option<IntTensor>,
}

impl<T: Element> Var<T> {
    /// `softmax(q·kᵀ·scale + mask)·v` for queries `self` `[…, L, d]`, keys `[…, S, d]`
    /// and values `[…, S, dv]` (PyTorch's `F.scaled_dot_product_attention`, no
    /// dropout); leading dims broadcast.
    ///
    /// ```
    /// use chainrule_autograd::{AttentionOptions, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let q = tape.leaf(Tensor::ones(&[2, 4, 8])?);
    /// let kv = tape.leaf(Tensor::ones(&[2, 5, 8])?);
    /// let causal = AttentionOptions { is_causal: true, ..Default::default() };
    /// let y = q.scaled_dot_product_attention(&kv, &kv, &causal)?;
    /// assert_eq!(y.dims(), &[2, 4, 8]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Operands of fewer than 2 dims, feature sizes that differ, keys and values of
    /// different lengths, leading dims that do not broadcast, a mask that does not
    /// broadcast against the scores.
    #[track_caller]
    pub fn scaled_dot_product_attention(
        &self,
        key: &Var<T>,
        value: &Var<T>,
        options: &AttentionOptions,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "scaled_dot_product_attention";
        let (q, k, v) = (self.dims(), key.dims(), value.dims());
        if q.len() < 2 || k.len() < 2 || v.len() < 2 {
            return Err(shape_error(
                op,
                site,
                format!(
                    "query {}, key {} and value {} must have at least 2 dims",
                    self.shape(),
                    key.shape(),
                    value.shape()
                ),
            ));
        }
        let (l, d) = (q[q.len() - 2], q[q.len() - 1]);
        let s = k[k.len() - 2];
        if k[k.len() - 1] != d || v[v.len() - 2] != s {
            return Err(shape_error(
                op,
                site,
                format!(
                    "query {}, key {} and value {}: need [..., L, d], [..., S, d], [..., S, dv]",
                    self.shape(),
                    key.shape(),
                    value.shape()
                ),
            ));
        }
        let scale = options.scale.unwrap_or(1.0 / (d as f64).sqrt());
        let mut scores = self.matmul(&key.transpose(-2, -1)?)?.mul_scalar(scale);
        if options.is_causal {
            let hidden: Vec<i64> = (0..l * s).map(|k| i64::from(k % s > k / s)).collect();
            let hidden = IntTensor::from_vec(hidden, &[l, s]).in_op(op, site)?;
            scores = scores.masked_fill(&hidden, f64::NEG_INFINITY)?;
        }
        if let Some(mask) = &options.attn_mask {
            let hidden: Vec<i64> = mask.data().iter().map(|&m| i64::from(m == 0)).collect();
            let hidden = IntTensor::from_vec(hidden, mask.dims()).in_op(op, site)?;
            scores = scores.masked_fill(&hidden, f64::NEG_INFINITY)?;
        }
        scores.softmax(-1)?.matmul(value)
    }
}
