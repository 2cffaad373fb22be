//! Special functions the standard library lacks on stable Rust: the error function
//! (for the exact GELU). Evaluated in f64; `f32` rounds the result. Measured against the C
//! library over [0, 6] in steps of 0.001: `erf` within 5 ε relative, `erfc` within 120 ε.

use std::f64::consts::PI;

/// Where `erf`'s series hands over to the continued fraction of `erfc`.
const SPLIT: f64 = 2.5;
/// Below this, `erfc = 1 − erf` loses at most 5 bits; above it the continued fraction
/// converges within [`fraction_terms`].
const ERFC_SPLIT: f64 = 1.5;

/// The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`.
///
/// ```
/// use chainrule_tensor::special::erf;
/// assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
/// assert_eq!(erf(-1.0), -erf(1.0));
/// ```
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < SPLIT {
        erf_series(a)
    } else {
        1.0 - erfc_fraction(a)
    };
    r.copysign(x)
}

/// The complementary error function `erfc(x) = 1 − erf(x)`, accurate in relative terms
/// for large positive `x` where `1 − erf(x)` would lose every digit.
///
/// ```
/// use chainrule_tensor::special::erfc;
/// assert!((erfc(5.0) / 1.537_459_794_428_035_1e-12 - 1.0).abs() < 1e-14);
/// ```
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else if x >= ERFC_SPLIT {
        erfc_fraction(x)
    } else if x > -SPLIT {
        1.0 - erf(x)
    } else {
        2.0 - erfc_fraction(-x)
    }
}

/// `erf(a)` for `0 ≤ a < SPLIT` from `2/√π · e^(−a²) · Σ (2a²)ⁿ a / (1·3·…·(2n+1))`,
/// whose terms are all positive, so nothing cancels.
fn erf_series(a: f64) -> f64 {
    let two_a2 = 2.0 * a * a;
    let (mut term, mut sum) = (a, a);
    let mut n = 0.0;
    while term > sum * 1e-17 {
        n += 1.0;
        term *= two_a2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / PI.sqrt() * (-a * a).exp() * sum
}

/// Terms the continued fraction needs for full f64 precision at `a ≥ ERFC_SPLIT`
/// (measured: 100 at 1.5, 60 from 2.5 on).
fn fraction_terms(a: f64) -> usize {
    if a < SPLIT {
        100
    } else {
        60
    }
}

/// `erfc(a)` for `a ≥ ERFC_SPLIT` from the continued fraction
/// `e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …))))`, evaluated bottom-up.
fn erfc_fraction(a: f64) -> f64 {
    let mut f = a;
    for k in (1..=fraction_terms(a)).rev() {
        f = a + (k as f64 / 2.0) / f;
    }
    (-a * a).exp() / PI.sqrt() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Python's `math.erf` / `math.erfc` (the C library's).
    #[test]
    fn matches_the_c_library() {
        let cases: [(f64, f64, f64); 9] = [
            (0.0, 0.0, 1.0),
            (1e-10, 1.1283791670955126e-10, 0.999999999887162),
            (0.3, 0.3286267594591274, 0.6713732405408726),
            (1.0, 0.8427007929497149, 0.15729920705028513),
            (2.0, 0.9953222650189527, 0.004677734981047265),
            (2.4999, 0.9995928300996666, 0.0004071699003334514),
            (2.5, 0.999593047982555, 0.0004069520174449589),
            (4.0, 0.9999999845827421, 1.541725790028002e-08),
            (10.0, 1.0, 2.088487583762545e-45),
        ];
        for (x, e, c) in cases {
            assert!(
                (erf(x) - e).abs() <= 5.0 * f64::EPSILON * e,
                "erf({x}) = {}, want {e}",
                erf(x)
            );
            assert_eq!(erf(-x), -erf(x));
            assert!(
                (erfc(x) / c - 1.0).abs() <= 120.0 * f64::EPSILON,
                "erfc({x}) = {}, want {c}",
                erfc(x)
            );
            assert!(
                (erfc(-x) - (2.0 - c)).abs() <= 4.0 * f64::EPSILON,
                "erfc(-{x})"
            );
        }
        assert!(erf(f64::NAN).is_nan());
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
    }
}
