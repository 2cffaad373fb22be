use chainrule_autograd::{Conv2dParams, Element, Param, Result, Tensor, Var};
use rand::Rng;

use crate::{Error, Module};

/// 2-D convolution with weight `[out, in/groups, kh, kw]` and optional bias `[out]`.
///
/// Default initialization is PyTorch's: U(±1/√fan_in) with
/// `fan_in = in/groups·kh·kw`, computed from the weight's shape.
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{layers::Conv2d, Module};
/// use rand::SeedableRng;
/// let conv = Conv2d::<f32>::new(1, 3, [5, 5], &mut rand::rngs::StdRng::seed_from_u64(1))?;
/// let x = Tape::new().constant(Tensor::zeros(&[64, 1, 28, 28])?);
/// assert_eq!(conv.forward(&x)?.dims(), &[64, 3, 24, 24]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
#[derive(crate::Module)]
pub struct Conv2d<T: Element = f32> {
    /// `[out, in/groups, kh, kw]`.
    pub weight: Param<T>,
    /// `[out]`, if any.
    pub bias: Option<Param<T>>,
    /// Stride, padding, dilation, groups.
    #[module(skip)]
    pub params: Conv2dParams,
}

impl<T: Element> Conv2d<T> {
    /// Stride 1, no padding, one group, with bias.
    ///
    /// # Errors
    /// A weight too large to describe or allocate.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; 2],
        rng: &mut R,
    ) -> crate::Result<Self> {
        let (w, b) = super::default_init(
            &[out_channels, in_channels, kernel_size[0], kernel_size[1]],
            true,
            rng,
        )?;
        Ok(Self::from_tensors(w, b, Conv2dParams::default()))
    }

    /// Any stride, padding, dilation and groups, with or without bias.
    ///
    /// # Errors
    /// `groups` is zero or does not divide both channel counts.
    pub fn with_options<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; 2],
        params: Conv2dParams,
        bias: bool,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let g = params.groups;
        if g == 0 || !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) {
            return Err(Error::Invalid {
                what: "Conv2d",
                reason: format!("groups {g} must divide in_channels {in_channels} and out_channels {out_channels}"),
            });
        }
        let (w, b) = super::default_init(
            &[
                out_channels,
                in_channels / g,
                kernel_size[0],
                kernel_size[1],
            ],
            bias,
            rng,
        )?;
        Ok(Self::from_tensors(w, b, params))
    }

    /// A layer from given values.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>, params: Conv2dParams) -> Self {
        Conv2d {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            params,
        }
    }
}

impl<T: Element> Module<T> for Conv2d<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let b = tape.param_opt(self.bias.as_ref());
        x.conv2d(&tape.param(&self.weight), b.as_ref(), self.params)
    }
}
