//! Matrix products: `matmul` (2-D, batched, 1-D promoted as PyTorch) and the fused
//! `linear` (`x·wᵀ + b`).

use chainrule_tensor::{Element, Tensor};

use crate::error::InOp;
use crate::{Grads, Operand, Result, Saved, Site, Var};

/// A 1-D left operand becomes a row, a 1-D right operand a column.
fn promote<T: Element>(
    t: &Tensor<T>,
    left: bool,
) -> Result<Tensor<T>, chainrule_tensor::TensorError> {
    match (t.ndim(), left) {
        (1, true) => t.reshape(&[1, -1]),
        (1, false) => t.reshape(&[-1, 1]),
        _ => Ok(t.clone()),
    }
}

impl<T: Element> Var<T> {
    /// Matrix product of `[.., m, k]` and `[.., k, n]`; batch dims broadcast; 1-D
    /// operands are promoted as in PyTorch.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let a = tape.leaf(Tensor::ones(&[4, 2, 3])?);
    /// let b = tape.leaf(Tensor::ones(&[3, 5])?);
    /// assert_eq!(a.matmul(&b)?.dims(), &[4, 2, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Inner dims differ, an operand is 0-D, or batch dims do not broadcast; the error
    /// names `matmul`, both shapes and the calling line.
    #[track_caller]
    pub fn matmul(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let site = Site::caller();
        self.tape().check_inputs("matmul", site, &[self, rhs])?;
        let y = self.value().matmul(rhs.value()).in_op("matmul", site)?;
        let a_dims = promote(self.value(), true)
            .in_op("matmul", site)?
            .dims()
            .to_vec();
        let b_dims = promote(rhs.value(), false)
            .in_op("matmul", site)?
            .dims()
            .to_vec();
        let (a, b) = (Saved::of(self), Saved::of(rhs));
        let (a_shape, b_shape) = (self.dims().to_vec(), rhs.dims().to_vec());
        // y = a·b  ⇒  da = g·bᵀ,  db = aᵀ·g  (then summed over broadcast batch dims)
        let rule = move |g: &Operand<T>, needs: &[bool]| {
            let mut gd = g.dims().to_vec();
            if a_shape.len() == 1 {
                gd.insert(gd.len() - usize::from(b_shape.len() != 1), 1);
            }
            if b_shape.len() == 1 {
                gd.push(1);
            }
            let g = g.reshape(&gd)?;
            let da = if needs[0] {
                let b = g.load(&b).reshape(&b_dims)?;
                let a_full = chainrule_tensor::Shape::new(&a_dims)?;
                Some(
                    g.matmul_t(false, &b, true)?
                        .sum_to(&a_full)?
                        .reshape(&a_shape)?,
                )
            } else {
                None
            };
            let db = if needs[1] {
                let a = g.load(&a).reshape(&a_dims)?;
                let b_full = chainrule_tensor::Shape::new(&b_dims)?;
                Some(
                    a.matmul_t(true, &g, false)?
                        .sum_to(&b_full)?
                        .reshape(&b_shape)?,
                )
            } else {
                None
            };
            Ok(Grads::from_iter([da, db]))
        };
        self.tape().record_at("matmul", site, y, &[self, rhs], rule)
    }

    /// `x·wᵀ + b` for `x [.., in]`, `w [out, in]`, optional `b [out]`, as PyTorch's
    /// `linear`; one fused kernel reads `w` transposed in place.
    ///
    /// # Errors
    /// `x`'s last dim differs from `w`'s second, or `b` is not `[out]`.
    #[track_caller]
    pub fn linear(&self, weight: &Var<T>, bias: Option<&Var<T>>) -> Result<Var<T>> {
        let site = Site::caller();
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().check_inputs("linear", site, &inputs)?;
        let y = self
            .value()
            .linear(weight.value(), bias.map(Var::value))
            .in_op("linear", site)?;
        let (x, w) = (Saved::of(self), Saved::of(weight));
        let (out_f, in_f) = (weight.dims()[0], weight.dims()[1]);
        let x_dims = self.dims().to_vec();
        let rows = x_dims[..x_dims.len() - 1].iter().product::<usize>();
        // dx = g·w,  dw = gᵀ·x,  db = Σ_rows g
        let rule = move |g: &Operand<T>, needs: &[bool]| {
            let g2 = g.reshape(&[rows, out_f])?;
            let dx = if needs[0] {
                Some(g2.matmul_t(false, &g.load(&w), false)?.reshape(&x_dims)?)
            } else {
                None
            };
            let dw = if needs[1] {
                let x2 = g.load(&x).reshape(&[rows, in_f])?;
                Some(g2.matmul_t(true, &x2, false)?)
            } else {
                None
            };
            let mut out = Grads::from_iter([dx, dw]);
            if needs.len() == 3 {
                out.push(needs[2].then(|| g2.sum_dims(&[0], false)).transpose()?);
            }
            Ok(out)
        };
        self.tape().record_at("linear", site, y, &inputs, rule)
    }
}
