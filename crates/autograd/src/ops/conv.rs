//! 2-D convolution; forward and backward are im2col + GEMM kernels.

use chainrule_tensor::{Conv2dParams, Element, Tensor};

use crate::error::InOp;
use crate::{InputGrads, Result, Site, Var};

impl<T: Element> Var<T> {
    /// 2-D convolution (cross-correlation, as PyTorch) of `[n, c, h, w]` with a weight
    /// `[o, c/groups, kh, kw]` and optional bias `[o]`.
    ///
    /// ```
    /// use chainrule_autograd::{Conv2dParams, Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::zeros(&[64, 1, 28, 28])?);
    /// let w = tape.leaf(Tensor::zeros(&[3, 1, 5, 5])?);
    /// assert_eq!(x.conv2d(&w, None, Conv2dParams::default())?.dims(), &[64, 3, 24, 24]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D operands, channels not matching the weight or not divisible by groups,
    /// zero stride or dilation, a kernel larger than the padded input, a bias that is
    /// not `[o]`.
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        params: Conv2dParams,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().check_inputs("conv2d", site, &inputs)?;
        let y = self
            .value()
            .conv2d(weight.value(), bias.map(Var::value), params)
            .in_op("conv2d", site)?;
        let (x, w) = (self.value().clone(), weight.value().clone());
        // dx = col2im(wᵀ·g),  dw = Σ_images g·colsᵀ,  db = Σ g
        let rule = move |g: &Tensor<T>, needs: &[bool]| {
            let want_b = needs.get(2).copied().unwrap_or(false);
            let (dx, dw, db) = x.conv2d_backward(&w, g, params, [needs[0], needs[1], want_b])?;
            let mut out = InputGrads::from_iter([dx, dw]);
            if needs.len() == 3 {
                out.push(db);
            }
            Ok(out)
        };
        self.tape().record("conv2d", site, y, &inputs, rule)
    }
}
