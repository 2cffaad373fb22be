//! Runs a loop compiled for the widest vector instructions this CPU has.
//!
//! The crate is built for baseline x86-64 (SSE2), so its loops vectorise 4 floats wide.
//! [`dispatch`] calls a closure through a function compiled with AVX-512 or AVX2+FMA
//! enabled; once the closure is inlined there, its loops are vectorised 16 or 8 wide.
//! The values do not change: Rust never contracts `a * b + c` into a fused multiply-add
//! or reorders floating-point sums on its own, so every ISA computes the same bits.

use std::sync::OnceLock;

/// The vector instruction sets [`dispatch`] can compile for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The widest level this CPU runs, detected once (`CHAINRULE_GEMM=avx2` or `=portable`
/// caps it, as it does the GEMM's kernels, so a slower path can be measured).
fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let cap = std::env::var("CHAINRULE_GEMM").ok();
            let (avx2, avx512) = (has_avx2(), has_avx512());
            match cap.as_deref() {
                Some("portable") => Level::Baseline,
                Some("avx2") if avx2 => Level::Avx2,
                _ if avx512 => Level::Avx512,
                _ if avx2 => Level::Avx2,
                _ => Level::Baseline,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Level::Baseline
    })
}

/// Whether this CPU runs AVX2 and FMA code (what [`with_avx2`] and the GEMM's AVX2
/// kernels enable).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether this CPU runs the AVX-512 code [`with_avx512`] and the GEMM's AVX-512
/// kernels enable (with AVX2 and FMA, which `with_avx512` enables too).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
}

/// A hot loop, packaged so [`dispatch`] can compile it for the CPU's vectors. Mark
/// `run` `#[inline(always)]`: it is inlined into a function built with AVX-512 or AVX2
/// enabled, and its loops are vectorised there (a closure could not be forced inline).
pub(crate) trait Vectorized {
    /// What the loop returns.
    type Output;
    /// The loop.
    fn run(self) -> Self::Output;
}

/// Runs `k`, compiled for AVX-512 or AVX2 when the CPU has them.
#[inline(always)]
pub(crate) fn dispatch<K: Vectorized>(k: K) -> K::Output {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` returned Avx512 only after detecting every feature that
        // `with_avx512` enables.
        Level::Avx512 => unsafe { with_avx512(k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        Level::Avx2 => unsafe { with_avx2(k) },
        Level::Baseline => k.run(),
    }
}

/// # Safety
/// The CPU supports every enabled feature.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn with_avx512<K: Vectorized>(k: K) -> K::Output {
    k.run()
}

/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<K: Vectorized>(k: K) -> K::Output {
    k.run()
}

/// `out[i] = f(a[i])`. The maps are index loops, not iterator chains: an adapter's
/// `fold` that LLVM declines to inline is compiled as a function of its own, without
/// the caller's vector features, and the loop inside it runs 4 lanes wide (SSE).
pub(crate) struct Map1<'a, T, F> {
    pub(crate) out: &'a mut [T],
    pub(crate) a: &'a [T],
    pub(crate) f: &'a F,
}

impl<T: Copy, F: Fn(T) -> T> Vectorized for Map1<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, n) = (self.f, self.out.len());
        let (out, a) = (&mut self.out[..n], &self.a[..n]);
        for i in 0..n {
            out[i] = f(a[i]);
        }
    }
}

/// `out[i] = f(a[i], b[i])`.
pub(crate) struct Map2<'a, T, F> {
    pub(crate) out: &'a mut [T],
    pub(crate) a: &'a [T],
    pub(crate) b: &'a [T],
    pub(crate) f: &'a F,
}

impl<T: Copy, F: Fn(T, T) -> T> Vectorized for Map2<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, n) = (self.f, self.out.len());
        let (out, a, b) = (&mut self.out[..n], &self.a[..n], &self.b[..n]);
        for i in 0..n {
            out[i] = f(a[i], b[i]);
        }
    }
}

/// `out[i] = f(a[i], b[i], c[i])`.
pub(crate) struct Map3<'a, T, F> {
    pub(crate) out: &'a mut [T],
    pub(crate) a: &'a [T],
    pub(crate) b: &'a [T],
    pub(crate) c: &'a [T],
    pub(crate) f: &'a F,
}

impl<T: Copy, F: Fn(T, T, T) -> T> Vectorized for Map3<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, n) = (self.f, self.out.len());
        let (out, a, b, c) = (&mut self.out[..n], &self.a[..n], &self.b[..n], &self.c[..n]);
        for i in 0..n {
            out[i] = f(a[i], b[i], c[i]);
        }
    }
}

/// `out[i] = f(out[i])`, in place.
pub(crate) struct Update1<'a, T, F> {
    pub(crate) out: &'a mut [T],
    pub(crate) f: &'a F,
}

impl<T: Copy, F: Fn(T) -> T> Vectorized for Update1<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let f = self.f;
        for v in self.out.iter_mut() {
            *v = f(*v); // a plain slice iterator, no adapter: inlined and vectorised
        }
    }
}

/// `out[i] = f(out[i], b[i])`, in place.
pub(crate) struct Update2<'a, T, F> {
    pub(crate) out: &'a mut [T],
    pub(crate) b: &'a [T],
    pub(crate) f: &'a F,
}

impl<T: Copy, F: Fn(T, T) -> T> Vectorized for Update2<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (f, n) = (self.f, self.out.len());
        let (out, b) = (&mut self.out[..n], &self.b[..n]);
        for i in 0..n {
            out[i] = f(out[i], b[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_computes_the_same_bits() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let f = |v: f32| v * 1.5 + v * v - 0.25;
        let mut base = vec![0.0; x.len()];
        Map1 {
            out: &mut base,
            a: &x,
            f: &f,
        }
        .run();
        let mut out = vec![0.0; x.len()];
        dispatch(Map1 {
            out: &mut out,
            a: &x,
            f: &f,
        });
        assert_eq!(out, base);
        #[cfg(target_arch = "x86_64")]
        {
            let run = |avx512: bool| {
                let mut out = vec![0.0; x.len()];
                let k = Map1 {
                    out: &mut out,
                    a: &x,
                    f: &f,
                };
                if avx512 {
                    // SAFETY: called only when has_avx512() said so (below).
                    unsafe { with_avx512(k) }
                } else {
                    // SAFETY: called only when has_avx2() said so (below).
                    unsafe { with_avx2(k) }
                }
                out
            };
            if has_avx2() {
                assert_eq!(run(false), base);
            }
            if has_avx512() {
                assert_eq!(run(true), base);
            }
        }
    }
}
