//! Activations whose per-element function is too large for LLVM to inline a closure
//! of it into a vector loop (a closure cannot be marked `#[inline(always)]`; these
//! loops call `#[inline(always)]` functions instead). Exact GELU: W10's step spent
//! 40% in scalar GELU loops before.

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

use super::simd::{self, Vectorized};
use crate::error::shape_err;
use crate::{Element, Tensor, TensorResult};

/// `1/√(2π)`, the standard normal density at 0.
const INV_SQRT_2PI: f64 = FRAC_1_SQRT_2 * FRAC_2_SQRT_PI * 0.5;

/// Exact GELU, `x·Φ(x)`, computed as `x/2 · erfc(−x/√2)` so it stays accurate for
/// negative `x` (PyTorch's `0.5·x·(1 + erf(x/√2))` cancels there).
///
/// ```
/// assert_eq!(chainrule_tensor::kernels::activation::gelu(0.0f32), 0.0);
/// assert!((chainrule_tensor::kernels::activation::gelu(1.0f64) - 0.841_344_746_068_542_9).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn gelu<T: Element>(x: T) -> T {
    T::from_f64(0.5) * x * (-x * T::from_f64(FRAC_1_SQRT_2)).erfc()
}

/// The derivative of [`gelu`]: `Φ(x) + x·φ(x)`.
///
/// ```
/// assert_eq!(chainrule_tensor::kernels::activation::gelu_derivative(0.0f64), 0.5);
/// ```
#[inline(always)]
pub fn gelu_derivative<T: Element>(x: T) -> T {
    T::from_f64(0.5) * (-x * T::from_f64(FRAC_1_SQRT_2)).erfc()
        + x * (T::from_f64(-0.5) * x * x).exp() * T::from_f64(INV_SQRT_2PI)
}

impl<T: Element> Tensor<T> {
    /// [`gelu`] of every element.
    ///
    /// ```
    /// let y = chainrule_tensor::Tensor::<f32>::zeros(&[3])?.gelu();
    /// assert_eq!(y.data(), &[0.0; 3]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    pub fn gelu(&self) -> Tensor<T> {
        let x = self.data();
        let out = super::elementwise::filled(x.len(), |start, out: &mut [T]| {
            let x = &x[start..start + out.len()];
            simd::dispatch(Gelu { x, out });
        });
        Tensor::from_parts(self.shape().clone(), out)
    }

    /// GELU's input gradient `self · gelu′(x)` for the output gradient `self`.
    ///
    /// ```
    /// use chainrule_tensor::Tensor;
    /// let dx = Tensor::<f64>::ones(&[2])?.gelu_backward(&Tensor::zeros(&[2])?)?;
    /// assert_eq!(dx.data(), &[0.5, 0.5]);
    /// # Ok::<(), chainrule_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    /// `x` and the gradient differ in shape.
    pub fn gelu_backward(&self, x: &Tensor<T>) -> TensorResult<Tensor<T>> {
        if self.shape() != x.shape() {
            return Err(shape_err!(
                "gelu gradient {} for input {}",
                self.shape(),
                x.shape()
            ));
        }
        let (g, x) = (self.data(), x.data());
        let out = super::elementwise::filled(x.len(), |start, out: &mut [T]| {
            let r = start..start + out.len();
            simd::dispatch(GeluBackward {
                g: &g[r.clone()],
                x: &x[r],
                out,
            });
        });
        Ok(Tensor::from_parts(self.shape().clone(), out))
    }
}

struct Gelu<'a, T> {
    x: &'a [T],
    out: &'a mut [T],
}

impl<T: Element> Vectorized for Gelu<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let n = self.out.len();
        let (x, out) = (&self.x[..n], &mut self.out[..n]);
        for i in 0..n {
            out[i] = gelu(x[i]);
        }
    }
}

struct GeluBackward<'a, T> {
    g: &'a [T],
    x: &'a [T],
    out: &'a mut [T],
}

impl<T: Element> Vectorized for GeluBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let n = self.out.len();
        let (g, x, out) = (&self.g[..n], &self.x[..n], &mut self.out[..n]);
        for i in 0..n {
            out[i] = g[i] * gelu_derivative(x[i]);
        }
    }
}
