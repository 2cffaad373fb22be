use chainrule_autograd::{ConvTranspose2dParams, Element, Param, Result, Var};
use rand::Rng;

use crate::{Error, Module};

/// Transposed 2-D convolution (the adjoint of [`super::Conv2d`], for upsampling) with
/// PyTorch's weight layout `[in, out/groups, kh, kw]` and optional bias `[out]`.
///
/// Default initialization is PyTorch's: U(±1/√fan_in) with `fan_in = out/groups·kh·kw`
/// (PyTorch computes it from the weight's second dim).
///
/// ```
/// use chainrule_autograd::{ConvTranspose2dParams, Tape, Tensor};
/// use chainrule_nn::{layers::ConvTranspose2d, Module};
/// use rand::SeedableRng;
/// let params = ConvTranspose2dParams { stride: [2, 2], ..Default::default() };
/// let up = ConvTranspose2d::<f32>::with_options(4, 2, [2, 2], params, true, &mut rand::rngs::StdRng::seed_from_u64(1))?;
/// let x = Tape::new().constant(Tensor::zeros(&[1, 4, 7, 7])?);
/// assert_eq!(up.forward(&x)?.dims(), &[1, 2, 14, 14]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
#[derive(crate::Module)]
pub struct ConvTranspose2d<T: Element = f32> {
    /// `[in, out/groups, kh, kw]`.
    pub weight: Param<T>,
    /// `[out]`, if any.
    pub bias: Option<Param<T>>,
    /// Stride, padding, output padding, dilation, groups.
    #[module(skip)]
    pub params: ConvTranspose2dParams,
}

impl<T: Element> ConvTranspose2d<T> {
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
        Self::with_options(
            in_channels,
            out_channels,
            kernel_size,
            Default::default(),
            true,
            rng,
        )
    }

    /// Any stride, padding, output padding, dilation and groups, with or without bias.
    ///
    /// # Errors
    /// `groups` zero or not dividing both channel counts; an output padding not smaller
    /// than its stride (PyTorch's rule).
    pub fn with_options<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel_size: [usize; 2],
        params: ConvTranspose2dParams,
        bias: bool,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let g = params.groups;
        if g == 0 || !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) {
            return Err(Error::Invalid {
                what: "ConvTranspose2d",
                reason: format!("groups {g} must divide in_channels {in_channels} and out_channels {out_channels}"),
            });
        }
        if (0..2).any(|i| params.output_padding[i] >= params.stride[i].max(params.dilation[i])) {
            return Err(Error::Invalid {
                what: "ConvTranspose2d",
                reason: format!(
                    "output_padding {:?} must be smaller than the stride {:?} or the dilation {:?}",
                    params.output_padding, params.stride, params.dilation
                ),
            });
        }
        let dims = [
            in_channels,
            out_channels / g,
            kernel_size[0],
            kernel_size[1],
        ];
        // the bias has `out` entries, not `dims[0]`
        let (w, b) = super::fan_in_init::<T, R>(&dims, bias.then_some(out_channels), rng)?;
        Ok(ConvTranspose2d {
            weight: Param::new(w),
            bias: b.map(Param::new),
            params,
        })
    }
}

impl<T: Element> Module<T> for ConvTranspose2d<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let tape = x.tape();
        let b = tape.param_opt(self.bias.as_ref());
        x.conv_transpose2d(&tape.param(&self.weight), b.as_ref(), self.params)
    }
}
