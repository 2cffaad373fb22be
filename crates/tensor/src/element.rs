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
    /// The logistic function 1 / (1 + e^−self), with exp's argument kept non-positive
    /// (no overflow) and no branch, so loops over it vectorise.
    ///
    /// ```
    /// use chainrule_tensor::Element;
    /// assert_eq!(0.0f32.sigmoid(), 0.5);
    /// assert_eq!((-200.0f32).sigmoid(), 0.0);
    /// assert_eq!(1e3f64.sigmoid(), 1.0); // no overflow for large inputs
    /// ```
    #[inline(always)]
    fn sigmoid(self) -> Self {
        // x ≥ 0: 1 / (1 + e^−x); x < 0: e^x / (1 + e^x); both from e^−|x|
        let e = (-self.abs()).exp();
        let d = Self::ONE + e;
        if self >= Self::ZERO {
            Self::ONE / d
        } else {
            e / d
        }
    }
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near zero.
    fn ln_1p(self) -> Self;
    /// e^self − 1, accurate near zero.
    fn exp_m1(self) -> Self;
    /// The error function ([`crate::special::erf`]).
    fn erf(self) -> Self;
    /// The complementary error function `1 − erf` ([`crate::special::erfc`] in f64; a
    /// vectorisable approximation within 6e-7 relative error in f32).
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
        /// The free buffers of this type ([`crate::pool`]).
        fn pool() -> &'static std::sync::Mutex<crate::pool::Pool<Self>>;
    }
}

macro_rules! impl_element {
    ($t:ty, $name:literal, $gemm:path, $exp:path, $erfc:path, $tanh:path, $kernels:path) => {
        // see `sealed` for why the crate-private types are fine here
        #[allow(private_interfaces)]
        impl sealed::Sealed for $t {
            fn micro_kernel() -> Option<&'static crate::kernels::gemm::MicroKernel<$t>> {
                static CHOSEN: std::sync::OnceLock<Option<&'static crate::kernels::gemm::MicroKernel<$t>>> =
                    std::sync::OnceLock::new();
                *CHOSEN.get_or_init(|| crate::kernels::gemm::select($kernels()))
            }
            fn pool() -> &'static std::sync::Mutex<crate::pool::Pool<$t>> {
                static POOL: std::sync::Mutex<crate::pool::Pool<$t>> =
                    std::sync::Mutex::new(crate::pool::Pool::new());
                &POOL
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
                $exp(self)
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
                $erfc(self)
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
    exp_f32,
    erfc_f32,
    tanh_f32,
    crate::kernels::gemm::kernels_f32
);
impl_element!(
    f64,
    "F64",
    matrixmultiply::dgemm,
    f64::exp,
    crate::special::erfc,
    f64::tanh,
    crate::kernels::gemm::kernels_f64
);

/// e^a in f32 without a libm call, so loops over it vectorise (libm's `expf` is a call
/// per element; the LSTM step spent a third of its time there): `a = n·ln 2 + r` with
/// `|r| ≤ ln 2 / 2` (ln 2 split in two parts, Cody–Waite), Cephes' degree-7
/// polynomial for `e^r`, and `2^n` built from exponent bits in two halves so that
/// subnormal results and overflow to infinity come out as libm's do. Within 1.2e-7
/// relative error of the exact value wherever the result is normal (tested in
/// `exp_f32_is_within_an_ulp`); `exp(NaN)` is NaN, `exp(−inf)` 0, `exp(inf)` inf.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
fn exp_f32(a: f32) -> f32 {
    // beyond these bounds e^a is 0 or inf in f32 (the halves of 2^n stay normal)
    let x = a.clamp(-104.0, 88.8);
    // round x·log2(e) to an integer by the 1.5·2^23 trick: its low mantissa bits are n
    const SHIFT: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted.to_bits().wrapping_sub(SHIFT.to_bits()) as i32;
    let nf = shifted - SHIFT;
    let r = x - nf * 0.693_359_375 - nf * -2.121_944_4e-4;
    let mut p = r * 1.987_569_15e-4 + 1.398_199_950_7e-3;
    p = r * p + 8.333_451_907_3e-3;
    p = r * p + 4.166_579_589_4e-2;
    p = r * p + 1.666_666_545_9e-1;
    p = r * p + 5.000_000_120_1e-1;
    let er = r * r * p + r + 1.0;
    let half = n >> 1;
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    er * scale(half) * scale(n - half)
}

/// erfc in f32 without branches or libm calls, so GELU's loops vectorise (W10 spent
/// 22% of its step in the scalar f64 `erfc`): the Chebyshev fit of Numerical Recipes'
/// `erfcc`, `t·e^(−z² + P(t))` with `t = 1/(1 + z/2)`, `z = |x|`, whose fractional error
/// is below 1.2e-7 for every `z` (so the tail keeps its relative accuracy), then
/// `erfc(−z) = 2 − erfc(z)`. Within 4.5e-7 relative error wherever erfc is a normal
/// f32 (tested in `erfc_f32_is_accurate`).
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
fn erfc_f32(x: f32) -> f32 {
    // past 10.5 erfc is 0 in f32; clamp keeps NaN
    let z = x.abs().clamp(0.0, 10.5);
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = t * 0.170_872_77 - 0.822_152_23;
    p = t * p + 1.488_515_87;
    p = t * p - 1.135_203_98;
    p = t * p + 0.278_868_07;
    p = t * p - 0.186_288_06;
    p = t * p + 0.096_784_18;
    p = t * p + 0.374_091_96;
    p = t * p + 1.000_023_68;
    p = t * p - 1.265_512_23;
    // e^(−z²) as e^(−zh²)·e^(−(z² − zh²)), zh = z to 12 bits so zh² is exact: an f32
    // −z² near −81 would carry 3.8e-6 relative error into the result by itself
    let zh = f32::from_bits(z.to_bits() & 0xffff_f000);
    let rest = (z - zh) * (z + zh);
    let e = t * exp_f32(-zh * zh) * exp_f32(p - rest);
    // NaN stays NaN either way
    if x >= 0.0 {
        e
    } else {
        2.0 - e
    }
}

/// tanh in f32 as a branch-free rational function (the approximation Eigen uses):
/// within 4.1e-7 relative error of the exact value over the whole line (about three
/// ULP; tested in `tanh_f32_is_within_a_few_ulp`), and it vectorises, where libm's
/// `tanhf` is a call per element. W7's training step spent 45% of its time in `tanhf`.
#[inline(always)]
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
    fn exp_f32_is_within_an_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=2_000_000 {
            let x = (-87.0 + 175.0 * i as f64 / 2_000_000.0) as f32;
            let want = (x as f64).exp();
            let got = super::exp_f32(x) as f64;
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 1.2e-7, "worst relative error {worst:e}");
        // subnormal results, underflow and overflow land where libm's do
        for x in [
            -87.5f32, -95.0, -100.0, -103.5, -103.9, -104.5, -200.0, 88.7, 88.8, 89.0,
        ] {
            let (got, want) = (super::exp_f32(x), x.exp());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulps <= 1, "exp({x}) = {got:e}, libm {want:e}");
        }
        assert_eq!(super::exp_f32(0.0), 1.0);
        assert_eq!(super::exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(super::exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn erfc_f32_is_accurate() {
        // up to 9.1, where erfc is still a normal f32 (1.3e-37)
        let (mut near, mut far) = (0.0f64, 0.0f64);
        for i in 0..=1_000_000 {
            let x = (-9.0 + 18.1 * i as f64 / 1_000_000.0) as f32;
            let want = crate::special::erfc(x as f64);
            let err = (super::erfc_f32(x) as f64 - want).abs() / want;
            if x.abs() <= 3.0 {
                near = near.max(err);
            } else {
                far = far.max(err);
            }
        }
        eprintln!("erfc_f32 worst relative error: {near:e} for |x| ≤ 3, {far:e} beyond");
        assert!(near < 6e-7 && far < 6e-7, "{near:e}, {far:e}");
        assert_eq!(super::erfc_f32(f32::INFINITY), 0.0);
        assert_eq!(super::erfc_f32(f32::NEG_INFINITY), 2.0);
        assert_eq!(super::erfc_f32(-30.0), 2.0);
        assert!(super::erfc_f32(f32::NAN).is_nan());
    }

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
