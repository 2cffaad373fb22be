use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type: `f32` (training) or `f64` (gradcheck, fixtures).
///
/// chainrule is generic over the element type rather than carrying a runtime dtype:
/// a mismatch is a compile error, and every kernel is monomorphised for its type.
///
/// ```
/// use chainrule_tensor::Element;
/// assert_eq!(<f64 as Element>::from_f64(0.5).exp(), 0.5f64.exp());
/// ```
///
/// The trait is sealed: only `f32` and `f64` implement it, so the kernels' `unsafe`
/// GEMM calls rely on nothing a downstream type could break.
pub trait Element:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// The dtype's name as safetensors spells it (`F32`, `F64`).
    const DTYPE: &'static str;
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Negative infinity (the identity of `max`).
    const NEG_INFINITY: Self;
    /// Converts from `f64`, rounding when `Self` is `f32`.
    fn from_f64(v: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near zero.
    fn ln_1p(self) -> Self;
    /// e^self − 1, accurate near zero.
    fn exp_m1(self) -> Self;
    /// The error function ([`crate::special::erf`]).
    fn erf(self) -> Self;
    /// The complementary error function `1 − erf` ([`crate::special::erfc`]).
    fn erfc(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// self^e for a real exponent.
    fn powf(self, e: Self) -> Self;
    /// The larger of two values; NaN when either is NaN (PyTorch's `maximum`).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values; NaN when either is NaN (PyTorch's `minimum`).
    fn min(self, other: Self) -> Self;
    /// True for +inf or −inf.
    fn is_infinite(self) -> bool;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// Little-endian bytes, for checkpoints.
    fn to_le_bytes_vec(data: &[Self]) -> Vec<u8>;
    /// Reads little-endian bytes; `None` when the length is not a multiple of the size.
    fn from_le_bytes_slice(bytes: &[u8]) -> Option<Vec<Self>>;

    /// Runs `f` on a per-thread scratch buffer of `len` elements with arbitrary contents,
    /// reused across calls so hot loops (im2col) do not allocate and free megabytes each
    /// time; freeing them costs TLB-flush interrupts on every core. A nested call on the
    /// same thread gets a fresh buffer.
    ///
    /// # Errors
    /// [`crate::TensorError::OutOfMemory`] when the buffer cannot be grown to `len`.
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> crate::TensorResult<R>;

    /// `c = alpha·a·b + beta·c` on strided matrices.
    ///
    /// # Safety
    /// Every address `a + i·rsa + p·csa` (i < m, p < k), `b + p·rsb + j·csb`
    /// (p < k, j < n) and `c + i·rsc + j·csc` must lie inside live allocations, and
    /// `c`'s addresses must be distinct and not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

// The trait is public only as a supertrait: its module is private, so no one outside
// the crate can name it, call its methods or see the crate-private types they use.
#[allow(private_interfaces)]
pub(crate) mod sealed {
    use crate::kernels::gemm::{MicroKernel, Pack};

    /// Keeps [`super::Element`] implemented by `f32` and `f64` only, and carries what the
    /// GEMM driver needs per type.
    pub trait Sealed: Sized + 'static {
        /// The SIMD GEMM micro-kernel for this CPU, or `None` for the portable path.
        fn micro_kernel() -> Option<&'static MicroKernel<Self>>;
        /// Runs `f` on this thread's packing buffer `which`, at least `len` values long
        /// and 64-byte aligned, reused across calls (a nested use gets a fresh one).
        fn with_pack<R>(which: Pack, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    }
}

macro_rules! impl_element {
    ($t:ty, $name:literal, $gemm:path, $tanh:path, $kernels:path) => {
        // see `sealed` for why the crate-private types are fine here
        #[allow(private_interfaces)]
        impl sealed::Sealed for $t {
            fn micro_kernel() -> Option<&'static crate::kernels::gemm::MicroKernel<$t>> {
                static CHOSEN: std::sync::OnceLock<Option<&'static crate::kernels::gemm::MicroKernel<$t>>> =
                    std::sync::OnceLock::new();
                *CHOSEN.get_or_init(|| crate::kernels::gemm::select($kernels()))
            }
            fn with_pack<R>(which: crate::kernels::gemm::Pack, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                use std::cell::RefCell;
                thread_local! {
                    static A: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                    static B: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                // room to start the buffer on a 64-byte boundary
                const SLACK: usize = 64 / std::mem::size_of::<$t>();
                let aligned = |buf: &mut Vec<$t>| -> (usize, usize) {
                    if buf.len() < len + SLACK {
                        buf.resize(len + SLACK, 0.0);
                    }
                    (buf.as_ptr().align_offset(64).min(SLACK), len)
                };
                let slot = match which {
                    crate::kernels::gemm::Pack::A => &A,
                    crate::kernels::gemm::Pack::B => &B,
                };
                slot.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        let (start, len) = aligned(&mut buf);
                        f(&mut buf[start..start + len])
                    }
                    Err(_) => {
                        let mut fresh = Vec::new();
                        let (start, len) = aligned(&mut fresh);
                        f(&mut fresh[start..start + len])
                    }
                })
            }
        }

        impl Element for $t {
            const DTYPE: &'static str = $name;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline]
            fn erf(self) -> Self {
                crate::special::erf(self as f64) as $t
            }
            #[inline]
            fn erfc(self) -> Self {
                crate::special::erfc(self as f64) as $t
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                if self >= other || self.is_nan() {
                    self
                } else {
                    other
                }
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                if self <= other || self.is_nan() {
                    self
                } else {
                    other
                }
            }
            #[inline]
            fn is_infinite(self) -> bool {
                <$t>::is_infinite(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn to_le_bytes_vec(data: &[Self]) -> Vec<u8> {
                data.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            fn from_le_bytes_slice(bytes: &[u8]) -> Option<Vec<Self>> {
                const SIZE: usize = std::mem::size_of::<$t>();
                if bytes.len() % SIZE != 0 {
                    return None;
                }
                Some(
                    bytes
                        .chunks_exact(SIZE)
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk has SIZE bytes")))
                        .collect(),
                )
            }
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> crate::TensorResult<R> {
                let oom = || crate::tensor::out_of_memory::<$t>(
                    &crate::Shape::new(&[len]).unwrap_or_default(),
                );
                thread_local! {
                    static SCRATCH: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                SCRATCH.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            let more = len - buf.len();
                            buf.try_reserve_exact(more).map_err(|_| oom())?;
                            buf.resize(len, 0.0);
                        }
                        Ok(f(&mut buf[..len]))
                    }
                    Err(_) => {
                        let mut fresh = Vec::new();
                        fresh.try_reserve_exact(len).map_err(|_| oom())?;
                        fresh.resize(len, 0.0);
                        Ok(f(&mut fresh))
                    }
                })
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded unchanged; the caller upholds matrixmultiply's contract,
                // which is exactly this function's documented one.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_element!(
    f32,
    "F32",
    matrixmultiply::sgemm,
    tanh_f32,
    crate::kernels::gemm::kernels_f32
);
impl_element!(
    f64,
    "F64",
    matrixmultiply::dgemm,
    f64::tanh,
    crate::kernels::gemm::kernels_f64
);

/// tanh in f32 as a branch-free rational function (the approximation Eigen uses):
/// within 4.1e-7 relative error of the exact value over the whole line (about three
/// ULP; tested in `tanh_f32_is_within_a_few_ulp`), and it vectorises, where libm's
/// `tanhf` is a call per element. W7's training step spent 45% of its time in `tanhf`.
#[inline]
#[allow(clippy::excessive_precision)] // the coefficients as published
fn tanh_f32(a: f32) -> f32 {
    // beyond ±7.9 tanh is ±1 in f32
    let x = a.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_187_9e-13;
    p = x2 * p - 8.604_671_5e-11;
    p = x2 * p + 5.122_297e-8;
    p = x2 * p + 1.485_722_4e-5;
    p = x2 * p + 6.372_619_3e-4;
    p = x2 * p + 4.893_524_6e-3;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
    q = x2 * q + 2.268_434_6e-3;
    q = x2 * q + 4.893_525_2e-3;
    let r = x * p / q;
    // near 0 the ratio loses relative accuracy; tanh(x) = x there to f32 precision
    if a.abs() < 4e-4 {
        a
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tanh_f32_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=400_000 {
            let x = (-12.0 + 24.0 * i as f64 / 400_000.0) as f32;
            let want = (x as f64).tanh();
            let got = super::tanh_f32(x) as f64;
            worst = worst.max((got - want).abs() / want.abs().max(1e-30));
        }
        assert!(worst < 5e-7, "worst relative error {worst:e}");
        assert_eq!(super::tanh_f32(0.0), 0.0);
        assert_eq!(super::tanh_f32(50.0), 1.0);
        assert!(super::tanh_f32(f32::NAN).is_nan());
    }
}
