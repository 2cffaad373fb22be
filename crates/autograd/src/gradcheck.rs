//! Checks any function's backward pass against central finite differences in f64.

use chainrule_tensor::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{grad, Error, GradOptions, GradcheckMismatch, Result, Tape, Var};

/// Settings of [`gradcheck_with`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (to the numeric value).
    pub rtol: f64,
    /// Seed of the random output cotangent.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0x5eed,
        }
    }
}

/// What a passing gradcheck saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Elements compared.
    pub checked: usize,
    /// The largest |analytic − numeric|.
    pub max_abs_error: f64,
}

/// [`gradcheck_with`] with PyTorch's default tolerances.
///
/// To check your own composite function, write it as a closure over `Var`s and pass
/// sample inputs away from kinks (ReLU at 0, ties in max):
///
/// ```
/// use chainrule_autograd::{gradcheck, Tensor};
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let w = Tensor::from_vec(vec![0.5, 0.1, -0.7], &[3])?;
/// let report = gradcheck(|v| (&v[0] * &v[1])?.tanh().exp().mean(), &[x, w])?;
/// assert_eq!(report.checked, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Gradcheck`] naming the worst element when any element is out of
/// tolerance; any error the function itself returns.
#[track_caller]
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// Compares backward with central differences element by element. The output is
/// reduced against a random cotangent `v` (`L = Σ f(x)·v`), so a rule that ignores
/// its upstream gradient fails.
///
/// # Errors
/// As [`gradcheck`].
#[track_caller]
pub fn gradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = f(&vars)?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let cot: Vec<f64> = (0..y.value().numel())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let cot = Tensor::from_vec(cot, y.dims()).map_err(|source| Error::Op {
        op: "gradcheck",
        site: crate::Site::caller(),
        source,
    })?;
    // an output the tape says depends on no input has a zero gradient
    let grads = if y.is_tracked() {
        Some(y.backward_with(&cot)?)
    } else {
        None
    };
    let analytic: Vec<Tensor<f64>> = vars
        .iter()
        .zip(inputs)
        .map(|(var, x)| {
            grads
                .as_ref()
                .and_then(|g| g.wrt(var))
                .cloned()
                .unwrap_or_else(|| x.zeros_like())
        })
        .collect();
    compare(&f, inputs, &cot, &analytic, opts)
}

/// Compares `analytic[i]`, claimed to be `∂<f(x), cot>/∂x_i`, with central differences.
fn compare<F>(
    f: &F,
    inputs: &[Tensor<f64>],
    cot: &Tensor<f64>,
    analytic: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let objective = |xs: &[Tensor<f64>]| -> Result<f64> {
        // leaves, not constants: `f` may itself differentiate (gradgradcheck)
        let tape = Tape::<f64>::new();
        let vars: Vec<Var<f64>> = xs.iter().map(|t| tape.leaf(t.clone())).collect();
        let y = f(&vars)?;
        Ok(y.value()
            .data()
            .iter()
            .zip(cot.data())
            .map(|(a, b)| a * b)
            .sum())
    };
    let mut tally = Tally::default();
    let mut xs: Vec<Tensor<f64>> = inputs.to_vec();
    for (i, analytic) in analytic.iter().enumerate() {
        for j in 0..inputs[i].numel() {
            let orig = inputs[i].data()[j];
            xs[i].data_mut()[j] = orig + opts.eps;
            let up = objective(&xs)?;
            xs[i].data_mut()[j] = orig - opts.eps;
            let down = objective(&xs)?;
            xs[i].data_mut()[j] = orig;
            let numeric = (up - down) / (2.0 * opts.eps);
            tally.compare(&opts, analytic.data()[j], numeric, || {
                (i, format!("input {i}"), multi_index(&inputs[i], j))
            });
        }
    }
    tally.finish()
}

/// The element-by-element comparison of analytic and numeric derivatives, keeping
/// the worst mismatch: shared by [`gradcheck`] and [`crate::gradcheck_params`].
#[derive(Default)]
pub(crate) struct Tally {
    checked: usize,
    failed: usize,
    max_abs_error: f64,
    worst: Option<(f64, GradcheckMismatch)>,
}

impl Tally {
    /// Compares one element; `at` names it (input position, name, multi-index) and is
    /// called only for a new worst mismatch.
    pub(crate) fn compare(
        &mut self,
        opts: &GradcheckOptions,
        analytic: f64,
        numeric: f64,
        at: impl FnOnce() -> (usize, String, Vec<usize>),
    ) {
        let err = (analytic - numeric).abs();
        let tolerance = opts.atol + opts.rtol * numeric.abs();
        self.checked += 1;
        self.max_abs_error = self.max_abs_error.max(err);
        if !(err.is_nan() || err > tolerance) {
            return;
        }
        self.failed += 1;
        let excess = if err.is_nan() {
            f64::INFINITY
        } else {
            err / tolerance
        };
        if self.worst.as_ref().is_none_or(|(w, _)| excess > *w) {
            let (input, name, index) = at();
            let m = GradcheckMismatch {
                input,
                name,
                index,
                analytic,
                numeric,
                tolerance,
                failed: 0,
            };
            self.worst = Some((excess, m));
        }
    }

    /// The report, or the worst mismatch with the count of failed elements.
    pub(crate) fn finish(self) -> Result<GradcheckReport> {
        match self.worst {
            Some((_, mut m)) => {
                m.failed = self.failed;
                Err(Error::Gradcheck(Box::new(m)))
            }
            None => Ok(GradcheckReport {
                checked: self.checked,
                max_abs_error: self.max_abs_error,
            }),
        }
    }
}

/// The multi-index of flat element `j` of `t`.
pub(crate) fn multi_index(t: &Tensor<f64>, j: usize) -> Vec<usize> {
    let strides = t.shape().strides();
    strides
        .iter()
        .zip(t.dims())
        .map(|(s, d)| j / s % d)
        .collect()
}

/// [`gradgradcheck_with`] with PyTorch's default tolerances.
///
/// ```
/// use chainrule_autograd::{gradgradcheck, Tensor};
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let w = Tensor::from_vec(vec![0.5, 0.1, -0.7], &[3])?;
/// let report = gradgradcheck(|v| (&v[0] * &v[1])?.tanh().exp().sum_dims(&[0], true), &[x, w])?;
/// // first order: the 6 input elements; second: those and the output's cotangent
/// assert_eq!(report.checked, 6 + 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`gradcheck`]: [`Error::Gradcheck`] names the input (an index past the inputs is
/// the output's cotangent) and element whose second derivative is wrong.
#[track_caller]
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    gradgradcheck_with(f, inputs, GradcheckOptions::default())
}

/// Checks second derivatives as PyTorch's `gradgradcheck` does: the first-order
/// gradient, computed with `create_graph` against an output cotangent `v`, is itself
/// gradchecked as a function of the inputs and of `v`. Because a rule may compute the
/// recorded gradient differently from the fast one, the recorded first-order gradient
/// is first compared with finite differences of `f` too. The report counts both.
///
/// # Errors
/// As [`gradgradcheck`].
#[track_caller]
pub fn gradgradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let probe = Tape::<f64>::new();
    let y = f(&inputs
        .iter()
        .map(|t| probe.constant(t.clone()))
        .collect::<Vec<_>>())?;
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x9e37_79b9);
    let cot: Vec<f64> = (0..y.value().numel())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let cot = Tensor::from_vec(cot, y.dims())?;
    // the recorded first-order gradient against finite differences of f
    let tape = Tape::<f64>::new();
    let leaves: Vec<Var<f64>> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = f(&leaves)?;
    let recorded: Vec<Tensor<f64>> = if y.is_tracked() {
        let v = tape.constant(cot.clone());
        let options = GradOptions::create_graph().allow_unused(true);
        let refs: Vec<&Var<f64>> = leaves.iter().collect();
        grad(&[&y], &refs, &[&v], options)?
            .iter()
            .map(|g| g.value().clone())
            .collect()
    } else {
        inputs.iter().map(Tensor::zeros_like).collect()
    };
    let first = compare(&f, inputs, &cot, &recorded, opts)?;
    let mut all = inputs.to_vec();
    all.push(cot);
    let n = inputs.len();
    let first_order = |v: &[Var<f64>]| -> Result<Var<f64>> {
        let y = f(&v[..n])?;
        let xs: Vec<&Var<f64>> = v[..n].iter().collect();
        let options = GradOptions::create_graph().allow_unused(true);
        let gs = grad(&[&y], &xs, &[&v[n]], options)?;
        let flat: Vec<Var<f64>> = gs.iter().map(|g| g.reshape(&[-1])).collect::<Result<_>>()?;
        Var::concat(&flat.iter().collect::<Vec<_>>(), 0)
    };
    let second = gradcheck_with(first_order, &all, opts)?;
    Ok(GradcheckReport {
        checked: first.checked + second.checked,
        max_abs_error: first.max_abs_error.max(second.max_abs_error),
    })
}
