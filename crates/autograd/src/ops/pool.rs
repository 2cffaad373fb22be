//! Max, average and adaptive-average 2-D pooling. The average poolings are linear, so
//! their backward is an op whose own backward is the pooling again; max pooling's
//! backward routes through `scatter_add` by arg-max positions.

use std::sync::Arc;

use chainrule_tensor::{AvgPool2dParams, Element, MaxPool2dParams, Shape, Tensor};

use crate::error::InOp;
use crate::ops::one;
use crate::{Operand, Result, Site, Var};

impl<T: Element> Var<T> {
    /// Max pooling of `[n, c, h, w]`; the gradient goes to the first maximum of each window.
    ///
    /// ```
    /// use chainrule_autograd::{MaxPool2dParams, Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::zeros(&[64, 3, 24, 24])?);
    /// assert_eq!(x.max_pool2d(MaxPool2dParams::new([2, 2]))?.dims(), &[64, 3, 12, 12]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Non-4-D input, zero kernel/stride/dilation, padding over half the kernel, or a
    /// window larger than the padded input.
    #[track_caller]
    pub fn max_pool2d(&self, params: MaxPool2dParams) -> Result<Var<T>> {
        let site = Site::caller();
        let (y, argmax) = self.value().max_pool2d(params).in_op("max_pool2d", site)?;
        let input = self.shape().clone();
        let out_plane = y.dims()[2] * y.dims()[3];
        let in_plane = input.dims()[2] * input.dims()[3];
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(match g {
                Operand::Tensor(g) => Operand::Tensor(g.max_pool2d_backward(&input, &argmax)?),
                Operand::Var(_) => {
                    // the plane's arg-max as a position in the whole input
                    let index: Arc<[usize]> = argmax
                        .iter()
                        .enumerate()
                        .map(|(k, &a)| k / out_plane.max(1) * in_plane + a as usize)
                        .collect();
                    g.scatter_add_flat(index, input.clone())?
                }
            }))
        };
        self.tape().record_at("max_pool2d", site, y, &[self], rule)
    }

    /// Average pooling of `[n, c, h, w]` with PyTorch's `ceil_mode` and
    /// `count_include_pad` rules.
    ///
    /// # Errors
    /// As [`Var::max_pool2d`].
    #[track_caller]
    pub fn avg_pool2d(&self, params: AvgPool2dParams) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self.value().avg_pool2d(params).in_op("avg_pool2d", site)?;
        let input = self.shape().clone();
        let rule =
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.avg_pool2d_backward(&input, params)?));
        self.tape().record_at("avg_pool2d", site, y, &[self], rule)
    }

    /// Adaptive average pooling to `output_size`; `[1, 1]` is global average pooling.
    ///
    /// # Errors
    /// Non-4-D input or an empty output size.
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .adaptive_avg_pool2d(output_size)
            .in_op("adaptive_avg_pool2d", site)?;
        let input = self.shape().clone();
        let rule =
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.adaptive_avg_pool2d_backward(&input)?));
        self.tape()
            .record_at("adaptive_avg_pool2d", site, y, &[self], rule)
    }

    /// The backward of average pooling as an op: spreads `self` (a pooled gradient)
    /// over the windows of an input of shape `input`. Its own backward is the pooling.
    #[track_caller]
    fn avg_pool2d_backward(&self, input: &Shape, params: AvgPool2dParams) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .avg_pool2d_backward(input, params)
            .in_op("avg_pool2d_backward", site)?;
        let rule = move |g: &Operand<T>, _: &[bool]| Ok(one(g.avg_pool2d(params)?));
        self.tape()
            .record_at("avg_pool2d_backward", site, y, &[self], rule)
    }

    /// The backward of adaptive average pooling as an op (see
    /// [`Var::avg_pool2d_backward`]).
    #[track_caller]
    fn adaptive_avg_pool2d_backward(&self, input: &Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .adaptive_avg_pool2d_backward(input)
            .in_op("adaptive_avg_pool2d_backward", site)?;
        let out = [self.dims()[2], self.dims()[3]];
        let rule = move |g: &Operand<T>, _: &[bool]| Ok(one(g.adaptive_avg_pool2d(out)?));
        self.tape()
            .record_at("adaptive_avg_pool2d_backward", site, y, &[self], rule)
    }
}

/// One pooling step on either kind of operand.
fn pool<T: Element>(
    x: &Operand<T>,
    tensor: impl FnOnce(&Tensor<T>) -> chainrule_tensor::TensorResult<Tensor<T>>,
    var: impl FnOnce(&Var<T>) -> Result<Var<T>>,
) -> Result<Operand<T>> {
    Ok(match x {
        Operand::Tensor(t) => Operand::Tensor(tensor(t)?),
        Operand::Var(v) => Operand::Var(Box::new(var(v)?)),
    })
}

impl<T: Element> Operand<T> {
    fn avg_pool2d(&self, p: AvgPool2dParams) -> Result<Operand<T>> {
        pool(self, |t| t.avg_pool2d(p), |v| v.avg_pool2d(p))
    }

    fn avg_pool2d_backward(&self, input: &Shape, p: AvgPool2dParams) -> Result<Operand<T>> {
        pool(
            self,
            |t| t.avg_pool2d_backward(input, p),
            |v| v.avg_pool2d_backward(input, p),
        )
    }

    fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Result<Operand<T>> {
        pool(
            self,
            |t| t.adaptive_avg_pool2d(out),
            |v| v.adaptive_avg_pool2d(out),
        )
    }

    fn adaptive_avg_pool2d_backward(&self, input: &Shape) -> Result<Operand<T>> {
        pool(
            self,
            |t| t.adaptive_avg_pool2d_backward(input),
            |v| v.adaptive_avg_pool2d_backward(input),
        )
    }
}
