use chainrule_autograd::{Conv2dParams, Element, Result, Var};
use rand::Rng;

use crate::layers::{BatchNorm2d, Conv2d, Linear, Sequential};
use crate::Module;

/// A 3×3 convolution without bias (a batch norm follows), padding 1.
fn conv3x3<T: Element, R: Rng + ?Sized>(
    c_in: usize,
    c_out: usize,
    stride: usize,
    rng: &mut R,
) -> crate::Result<Conv2d<T>> {
    let params = Conv2dParams {
        stride: [stride, stride],
        padding: [1, 1],
        ..Conv2dParams::default()
    };
    Conv2d::with_options(c_in, c_out, [3, 3], params, false, rng)
}

/// torchvision's `BasicBlock`: conv-BN-ReLU-conv-BN plus the input (through a 1×1
/// convolution and BN, `downsample`, when the shape changes), then ReLU.
#[derive(crate::Module)]
pub struct BasicBlock<T: Element = f32> {
    /// First 3×3 convolution (carries the stride).
    pub conv1: Conv2d<T>,
    /// After `conv1`.
    pub bn1: BatchNorm2d<T>,
    /// Second 3×3 convolution.
    pub conv2: Conv2d<T>,
    /// After `conv2`.
    pub bn2: BatchNorm2d<T>,
    /// 1×1 convolution and BN on the shortcut, when channels or stride change.
    pub downsample: Option<Sequential<T>>,
}

impl<T: Element> BasicBlock<T> {
    /// `c_in → c_out` channels, `stride` on the first convolution.
    ///
    /// # Errors
    /// Sizes too large to allocate.
    pub fn new<R: Rng + ?Sized>(
        c_in: usize,
        c_out: usize,
        stride: usize,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let downsample = if stride != 1 || c_in != c_out {
            let params = Conv2dParams {
                stride: [stride, stride],
                ..Conv2dParams::default()
            };
            Some(
                Sequential::new()
                    .push(Conv2d::with_options(
                        c_in,
                        c_out,
                        [1, 1],
                        params,
                        false,
                        rng,
                    )?)
                    .push(BatchNorm2d::new(c_out)?),
            )
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: conv3x3(c_in, c_out, stride, rng)?,
            bn1: BatchNorm2d::new(c_out)?,
            conv2: conv3x3(c_out, c_out, 1, rng)?,
            bn2: BatchNorm2d::new(c_out)?,
            downsample,
        })
    }
}

impl<T: Element> Module<T> for BasicBlock<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.relu();
        let h = self.bn2.forward(&self.conv2.forward(&h)?)?;
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        Ok(h.add(&shortcut)?.relu())
    }
}

/// A small ResNet with batch norm for MNIST (31k parameters): a 3×3 stem of 16
/// channels with BN and ReLU, basic blocks 16 → 16, 16 → 24 (stride 2) and 24 → 32
/// (stride 2), global average pooling, Linear(32 → 10). Input `[n, 1, 28, 28]`,
/// logits `[n, 10]`; torchvision's names (`layer2.downsample.0.weight`,
/// `bn1.running_mean`, …).
///
/// ```
/// use chainrule_autograd::{Tape, Tensor};
/// use chainrule_nn::{models::ResNetBn, Module, ModuleState};
/// use rand::SeedableRng;
/// let net = ResNetBn::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let x = Tape::new().constant(Tensor::zeros(&[2, 1, 28, 28])?);
/// assert_eq!(net.forward(&x)?.dims(), &[2, 10]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct ResNetBn<T: Element = f32> {
    /// Stem convolution, 1 → 16.
    pub conv1: Conv2d<T>,
    /// After the stem.
    pub bn1: BatchNorm2d<T>,
    /// 16 → 16 at 28×28.
    pub layer1: BasicBlock<T>,
    /// 16 → 24 at 14×14.
    pub layer2: BasicBlock<T>,
    /// 24 → 32 at 7×7.
    pub layer3: BasicBlock<T>,
    /// The classifier.
    pub fc: Linear<T>,
}

impl<T: Element> ResNetBn<T> {
    /// PyTorch's initialization of every layer (BN weight 1, bias 0).
    ///
    /// # Errors
    /// None in practice (the sizes are fixed and small).
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> crate::Result<Self> {
        Ok(ResNetBn {
            conv1: conv3x3(1, 16, 1, rng)?,
            bn1: BatchNorm2d::new(16)?,
            layer1: BasicBlock::new(16, 16, 1, rng)?,
            layer2: BasicBlock::new(16, 24, 2, rng)?,
            layer3: BasicBlock::new(24, 32, 2, rng)?,
            fc: Linear::new(32, 10, rng)?,
        })
    }
}

impl<T: Element> Module<T> for ResNetBn<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let x = x.reshape(&[-1, 1, 28, 28])?;
        let h = self.bn1.forward(&self.conv1.forward(&x)?)?.relu();
        let h = self
            .layer3
            .forward(&self.layer2.forward(&self.layer1.forward(&h)?)?)?;
        self.fc.forward(&h.mean_dims(&[2, 3], false)?)
    }
}
