//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use chainrule_autograd::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// A seeded tensor of values in `lo..hi`.
pub fn rand_tensor(dims: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.gen_range(lo..hi)).collect(), dims).unwrap()
}

/// A seeded tensor whose values are at least `gap` apart from each other and from 0,
/// so max, relu and abs have no kinks or ties within a finite-difference step.
pub fn spread_tensor(dims: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let mut vals: Vec<f64> = (0..n)
        .map(|i| (i as f64 + 0.5) * 0.05 - n as f64 * 0.025 + 0.013)
        .collect();
    // shuffle
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i);
        vals.swap(i, j);
    }
    Tensor::from_vec(vals, dims).unwrap()
}

/// The project's copy of the PyTorch fixtures, or `FIXTURES_DIR`.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::env::var_os("FIXTURES_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"))
}

/// gradcheck, then gradgradcheck: the first and second derivatives of `f` against
/// finite differences. Every op family's tests go through here, so no op is checked
/// at first order only.
pub fn gradchecks<F>(
    f: F,
    inputs: &[chainrule_autograd::Tensor<f64>],
) -> chainrule_autograd::Result<chainrule_autograd::GradcheckReport>
where
    F: Fn(
        &[chainrule_autograd::Var<f64>],
    ) -> chainrule_autograd::Result<chainrule_autograd::Var<f64>>,
{
    chainrule_autograd::gradcheck(&f, inputs)?;
    chainrule_autograd::gradgradcheck(&f, inputs)
}
