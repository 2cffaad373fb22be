//! The x86-64 micro-kernels: an `MR × NR` tile of `c` from packed panels of `a` (MR values
//! per step of k) and `b` (NR values per step), accumulated in vector registers.
//!
//! Each element's sum runs p = 0, 1, …, kc − 1 as one chain of fused multiply-adds from
//! zero, and is then stored (or added to `c`), so a tile's bits depend on nothing but its
//! inputs: not on where the tile sits, which thread runs it, or how the rest is split.

use std::arch::x86_64::*;

use super::MicroKernel;

/// Stamps out one micro-kernel, `$mr` rows by `$nv` vectors of `$lanes` lanes, and its
/// `MicroKernel` static, whose tile size comes from the same literals (a mismatch would
/// let the kernel write past its tile).
macro_rules! micro_kernel {
    (
        $(#[$doc:meta])* $kernel:ident = $label:literal: $name:ident, $feature:literal, $t:ty,
        $mr:literal, $nv:literal, $lanes:literal,
        $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident
    ) => {
        $(#[$doc])*
        static $kernel: MicroKernel<$t> = MicroKernel {
            name: $label,
            mr: $mr,
            nr: $nv * $lanes,
            run: $name,
        };

        /// # Safety
        /// The CPU supports the target features; `a` points at `kc·MR` readable values,
        /// `b` at `kc·NR`, and `c` at an `MR × NR` tile with row stride `rsc` whose
        /// every element is valid for reads and writes and aliases neither panel.
        #[target_feature(enable = $feature)]
        unsafe fn $name(kc: usize, a: *const $t, b: *const $t, c: *mut $t, rsc: usize, add: bool) {
            const NR: usize = $nv * $lanes;
            let mut acc = [[$zero(); $nv]; $mr];
            for p in 0..kc {
                // SAFETY: p < kc, so every offset in this loop is inside the panels the
                // caller promised; unaligned loads and stores accept any address.
                unsafe {
                    let bp = b.add(p * NR);
                    let mut bv = [$zero(); $nv];
                    for v in 0..$nv {
                        bv[v] = $load(bp.add(v * $lanes));
                    }
                    let ap = a.add(p * $mr);
                    for r in 0..$mr {
                        let av = $splat(*ap.add(r));
                        for v in 0..$nv {
                            acc[r][v] = $fma(av, bv[v], acc[r][v]);
                        }
                    }
                }
            }
            for r in 0..$mr {
                for v in 0..$nv {
                    // SAFETY: r < MR and v·lanes + lanes ≤ NR: inside the caller's tile.
                    unsafe {
                        let cp = c.add(r * rsc + v * $lanes);
                        let sum = if add {
                            $add($load(cp), acc[r][v])
                        } else {
                            acc[r][v]
                        };
                        $store(cp, sum);
                    }
                }
            }
        }
    };
}

micro_kernel!(
    /// f32 with AVX-512: 8 rows × 32 columns (16 accumulators; per step of k, 2 loads
    /// of `b` and 8 broadcasts of `a` for 16 FMAs). 8 rows fit the channel counts of
    /// convolutions (32, 64) exactly.
    F32_AVX512 = "avx512": f32_avx512, "avx512f", f32, 8, 2, 16,
    _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps,
    _mm512_add_ps
);
micro_kernel!(
    /// f64 with AVX-512: 8 rows × 16 columns.
    F64_AVX512 = "avx512": f64_avx512, "avx512f", f64, 8, 2, 8,
    _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd,
    _mm512_add_pd
);
micro_kernel!(
    /// f32 with AVX2 and FMA: 6 rows × 16 columns (12 of the 16 vector registers).
    F32_AVX2 = "avx2": f32_avx2, "avx2,fma", f32, 6, 2, 8,
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps,
    _mm256_add_ps
);
micro_kernel!(
    /// f64 with AVX2 and FMA: 6 rows × 8 columns.
    F64_AVX2 = "avx2": f64_avx2, "avx2,fma", f64, 6, 2, 4,
    _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd,
    _mm256_add_pd
);

/// The f32 kernels this CPU runs, fastest first. Only these detected kernels ever leave
/// this module, which is what makes calling their target-feature code sound.
pub(super) fn kernels_f32() -> Vec<&'static MicroKernel<f32>> {
    detected(&F32_AVX512, &F32_AVX2)
}

/// The f64 kernels this CPU runs, fastest first (see [`kernels_f32`]).
pub(super) fn kernels_f64() -> Vec<&'static MicroKernel<f64>> {
    detected(&F64_AVX512, &F64_AVX2)
}

fn detected<T>(
    avx512: &'static MicroKernel<T>,
    avx2: &'static MicroKernel<T>,
) -> Vec<&'static MicroKernel<T>> {
    let mut out = Vec::new();
    if crate::kernels::simd::has_avx512() {
        out.push(avx512);
    }
    if crate::kernels::simd::has_avx2() {
        out.push(avx2);
    }
    out
}
