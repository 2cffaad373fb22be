//! Max, average and adaptive-average 2-D pooling.

use chainrule_tensor::{AvgPool2dParams, Element, MaxPool2dParams, Tensor};

use crate::error::InOp;
use crate::ops::one;
use crate::{Result, Site, Var};

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
        let rule =
            move |g: &Tensor<T>, _: &[bool]| Ok(one(g.max_pool2d_backward(&input, &argmax)?));
        self.tape().record("max_pool2d", site, y, &[self], rule)
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
        let rule = move |g: &Tensor<T>, _: &[bool]| Ok(one(g.avg_pool2d_backward(&input, params)?));
        self.tape().record("avg_pool2d", site, y, &[self], rule)
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
            move |g: &Tensor<T>, _: &[bool]| Ok(one(g.adaptive_avg_pool2d_backward(&input)?));
        self.tape()
            .record("adaptive_avg_pool2d", site, y, &[self], rule)
    }
}
