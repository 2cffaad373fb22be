//! 2-D convolution; forward and backward are im2col + GEMM kernels. For gradients of
//! gradients the backward is split into two ops, the input gradient and the weight
//! gradient, which with the convolution itself are each other's adjoints.

use chainrule_tensor::{Conv2dParams, ConvTranspose2dParams, Element, Shape};

use crate::error::InOp;
use crate::ops::shape_error;
use crate::{Grads, Operand, Result, Saved, Site, Var};

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
        let (x, w) = (Saved::of(self), Saved::of(weight));
        // dx = col2im(wᵀ·g),  dw = Σ_images g·colsᵀ,  db = Σ g
        let rule = move |g: &Operand<T>, needs: &[bool]| {
            let want_b = needs.get(2).copied().unwrap_or(false);
            let (dx, dw, db) = match g {
                Operand::Tensor(g) => {
                    let (dx, dw, db) = x.value().conv2d_backward(
                        w.value(),
                        g,
                        params,
                        [needs[0], needs[1], want_b],
                    )?;
                    let t = |o: Option<_>| o.map(Operand::Tensor);
                    (t(dx), t(dw), t(db))
                }
                Operand::Var(_) => {
                    let (xo, wo) = (g.load(&x), g.load(&w));
                    let dx = needs[0]
                        .then(|| g.conv2d_input_grad(&wo, xo.shape(), params))
                        .transpose()?;
                    let dw = needs[1]
                        .then(|| g.conv2d_weight_grad(&xo, wo.shape(), params))
                        .transpose()?;
                    let db = want_b.then(|| g.sum_dims(&[0, 2, 3], false)).transpose()?;
                    (dx, dw, db)
                }
            };
            let mut out = Grads::from_iter([dx, dw]);
            if needs.len() == 3 {
                out.push(db);
            }
            Ok(out)
        };
        self.tape().record_at("conv2d", site, y, &inputs, rule)
    }

    /// 2-D transposed convolution (PyTorch's `conv_transpose2d`) of `[n, c_in, h, w]`
    /// with a weight `[c_in, c_out/groups, kh, kw]` and optional bias `[c_out]`: the
    /// input gradient of the convolution with the same attributes, so the two are each
    /// other's adjoints.
    ///
    /// ```
    /// use chainrule_autograd::{ConvTranspose2dParams, Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::ones(&[1, 2, 4, 4])?);
    /// let w = tape.leaf(Tensor::ones(&[2, 3, 2, 2])?);
    /// let up = ConvTranspose2dParams { stride: [2, 2], ..Default::default() };
    /// let y = x.conv_transpose2d(&w, None, up)?;
    /// assert_eq!((y.dims(), y.value().data()[0]), (&[1, 3, 8, 8][..], 2.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D operands, input channels other than the weight's first dim or not
    /// divisible by groups, an output padding not below the stride, a bias that is not
    /// `[c_out]`, an output of no size.
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        params: ConvTranspose2dParams,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "conv_transpose2d";
        let (&[n, c_in, h, w], &[wc, per_group, kh, kw]) = (self.dims(), weight.dims()) else {
            return Err(shape_error(
                op,
                site,
                format!(
                    "input {} and weight {} must be 4-D",
                    self.shape(),
                    weight.shape()
                ),
            ));
        };
        let g = params.groups;
        if g == 0 || wc != c_in || c_in % g != 0 {
            return Err(shape_error(op, site, format!("input {} with weight {} and groups {g}: the weight's first dim must be the input channels, divisible by groups", self.shape(), weight.shape())));
        }
        let c_out = per_group * g;
        if let Some(b) = bias.filter(|b| b.dims() != [c_out]) {
            return Err(shape_error(
                op,
                site,
                format!("bias {} for {c_out} output channels", b.shape()),
            ));
        }
        let [oh, ow] = params.output_hw([h, w], [kh, kw]).in_op(op, site)?;
        let out = Shape::new(&[n, c_out, oh, ow]).in_op(op, site)?;
        let y = self.conv2d_input_grad(op, weight, &out, params.adjoint_of())?;
        match bias {
            Some(b) => y.add(&b.reshape(&[c_out as isize, 1, 1])?),
            None => Ok(y),
        }
    }

    /// The input gradient of a convolution as an op (recorded as `op`): `self` is the
    /// output gradient. Its backward is `conv2d` (towards `self`) and the weight
    /// gradient (towards `w`).
    #[track_caller]
    fn conv2d_input_grad(
        &self,
        op: &'static str,
        w: &Var<T>,
        input: &Shape,
        p: Conv2dParams,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        self.tape().check_inputs(op, site, &[self, w])?;
        let y = self
            .value()
            .conv2d_input_grad(w.value(), input, p)
            .in_op(op, site)?;
        let (gs, ws) = (Saved::of(self), Saved::of(w));
        let rule = move |h: &Operand<T>, needs: &[bool]| {
            let (g, w) = (h.load(&gs), h.load(&ws));
            let dg = needs[0].then(|| h.conv2d(&w, p)).transpose()?;
            let dw = needs[1]
                .then(|| g.conv2d_weight_grad(h, w.shape(), p))
                .transpose()?;
            Ok(Grads::from_iter([dg, dw]))
        };
        self.tape().record_at(op, site, y, &[self, w], rule)
    }

    /// The weight gradient of a convolution as an op: `self` is the output gradient,
    /// `x` the input. Its backward is `conv2d` (towards `self`) and the input gradient
    /// (towards `x`).
    #[track_caller]
    fn conv2d_weight_grad(&self, x: &Var<T>, weight: &Shape, p: Conv2dParams) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "conv2d_weight_grad";
        self.tape().check_inputs(op, site, &[self, x])?;
        let y = self
            .value()
            .conv2d_weight_grad(x.value(), weight, p)
            .in_op(op, site)?;
        let (gs, xs) = (Saved::of(self), Saved::of(x));
        let rule = move |h: &Operand<T>, needs: &[bool]| {
            let (g, x) = (h.load(&gs), h.load(&xs));
            let dg = needs[0].then(|| x.conv2d(h, p)).transpose()?;
            let dx = needs[1]
                .then(|| g.conv2d_input_grad(h, x.shape(), p))
                .transpose()?;
            Ok(Grads::from_iter([dg, dx]))
        };
        self.tape().record_at(op, site, y, &[self, x], rule)
    }
}

impl<T: Element> Operand<T> {
    /// Convolution without bias.
    fn conv2d(&self, w: &Operand<T>, p: Conv2dParams) -> Result<Operand<T>> {
        self.zip(w, |x, w| x.conv2d(w, None, p), |x, w| x.conv2d(w, None, p))
    }

    /// The input gradient of a convolution; `self` is the output gradient.
    fn conv2d_input_grad(
        &self,
        w: &Operand<T>,
        input: &Shape,
        p: Conv2dParams,
    ) -> Result<Operand<T>> {
        self.zip(
            w,
            |g, w| g.conv2d_input_grad(w, input, p),
            |g, w| g.conv2d_input_grad("conv2d_input_grad", w, input, p),
        )
    }

    /// The weight gradient of a convolution; `self` is the output gradient.
    fn conv2d_weight_grad(
        &self,
        x: &Operand<T>,
        weight: &Shape,
        p: Conv2dParams,
    ) -> Result<Operand<T>> {
        self.zip(
            x,
            |g, x| g.conv2d_weight_grad(x, weight, p),
            |g, x| g.conv2d_weight_grad(x, weight, p),
        )
    }
}
