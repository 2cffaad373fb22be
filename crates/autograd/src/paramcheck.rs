//! gradcheck for named parameters: the gradient (and the Hessian-vector product) of a
//! scalar loss with respect to a model's own parameters and inputs, against finite
//! differences, naming the worst element by the parameter's name. The nn crate's
//! `check` module calls it with a module's `named_parameters`.

use chainrule_tensor::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::gradcheck::{multi_index, Tally};
use crate::{
    grad, Error, GradOptions, GradcheckOptions, GradcheckReport, Param, Result, Site, Tape, Var,
};

/// What is checked: the parameters by name, then the inputs (`"input k"`).
struct Targets<'a> {
    params: &'a [(String, Param<f64>)],
    inputs: Vec<Tensor<f64>>,
}

impl Targets<'_> {
    fn len(&self) -> usize {
        self.params.len() + self.inputs.len()
    }

    fn name(&self, k: usize) -> String {
        match self.params.get(k) {
            Some((name, _)) => name.clone(),
            None => format!("input {}", k - self.params.len()),
        }
    }

    fn value(&self, k: usize) -> Tensor<f64> {
        match self.params.get(k) {
            Some((_, p)) => p.value(),
            None => self.inputs[k - self.params.len()].clone(),
        }
    }

    fn set(&mut self, k: usize, t: Tensor<f64>) {
        match self.params.get(k) {
            Some((_, p)) => p.set(t),
            None => {
                let i = k - self.params.len();
                self.inputs[i] = t;
            }
        }
    }
}

/// Puts every parameter's value back, however the check ends.
struct Restore<'a>(&'a [(String, Param<f64>)], Vec<Tensor<f64>>);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for ((_, p), v) in self.0.iter().zip(self.1.drain(..)) {
            p.set(v);
        }
    }
}

/// The loss on a fresh tape with the inputs as leaves, and its first-order gradients
/// for every target (zeros where it does not depend on one).
fn first_order<F>(t: &Targets<'_>, loss: &F, site: Site) -> Result<(f64, Vec<Tensor<f64>>)>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let tape = Tape::<f64>::new();
    let xs: Vec<Var<f64>> = t.inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let l = loss(&xs)?;
    let value = l.value().item().ok_or_else(|| Error::BackwardCall {
        site,
        reason: format!("the loss must have one element, got shape {}", l.shape()),
    })?;
    if !l.is_tracked() {
        return Ok((
            value,
            (0..t.len()).map(|k| t.value(k).zeros_like()).collect(),
        ));
    }
    let g = l.backward()?;
    let mut out: Vec<Tensor<f64>> = t
        .params
        .iter()
        .map(|(_, p)| g.get(p).cloned().unwrap_or_else(|| p.value().zeros_like()))
        .collect();
    out.extend(
        xs.iter()
            .map(|x| g.wrt(x).cloned().unwrap_or_else(|| x.value().zeros_like())),
    );
    Ok((value, out))
}

/// Central differences of `objective` at every element of every target, compared
/// with `analytic`.
fn compare(
    t: &mut Targets<'_>,
    analytic: &[Tensor<f64>],
    opts: GradcheckOptions,
    mut objective: impl FnMut(&Targets<'_>) -> Result<f64>,
) -> Result<GradcheckReport> {
    let mut tally = Tally::default();
    for (k, analytic) in analytic.iter().enumerate() {
        let orig = t.value(k);
        for j in 0..orig.numel() {
            let mut at = |delta: f64| -> Result<f64> {
                let mut x = orig.clone();
                x.data_mut()[j] += delta;
                t.set(k, x);
                objective(t)
            };
            let (up, down) = (at(opts.eps)?, at(-opts.eps)?);
            t.set(k, orig.clone());
            let numeric = (up - down) / (2.0 * opts.eps);
            tally.compare(&opts, analytic.data()[j], numeric, || {
                (k, t.name(k), multi_index(&orig, j))
            });
        }
    }
    tally.finish()
}

/// Checks the gradient of a one-element `loss` with respect to every named parameter
/// and every input against central differences in f64. `loss` gets the inputs as
/// values on a fresh tape and brings the parameters in itself (`tape.param`), as a
/// model's forward does; parameters are perturbed in place and restored.
///
/// ```
/// use chainrule_autograd::{gradcheck_params, GradcheckOptions, Param, Tensor};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![0.3, -0.7], &[2])?);
/// let params = vec![("w".to_string(), w.clone())];
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
/// let report = gradcheck_params(&params, &[x], |v| {
///     (&v[0] * &v[0].tape().param(&w))?.tanh().sum_dims(&[0], false)
/// }, GradcheckOptions::default())?;
/// assert_eq!(report.checked, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Gradcheck`] naming the parameter (or `"input k"`) and element that
/// disagree most; a loss with more than one element; the loss's own errors.
#[track_caller]
pub fn gradcheck_params<F>(
    params: &[(String, Param<f64>)],
    inputs: &[Tensor<f64>],
    loss: F,
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let site = Site::caller();
    let _restore = Restore(params, params.iter().map(|(_, p)| p.value()).collect());
    let mut t = Targets {
        params,
        inputs: inputs.to_vec(),
    };
    let (_, analytic) = first_order(&t, &loss, site)?;
    compare(&mut t, &analytic, opts, |t| {
        Ok(first_order(t, &loss, site)?.0)
    })
}

/// The second-order check of [`gradcheck_params`]: with random directions `u` (one per
/// parameter and input), the Hessian-vector product `∂/∂θ Σ <∇L, u>` from the recorded
/// backward (`create_graph`) against central differences of the first-order gradient.
///
/// # Errors
/// As [`gradcheck_params`]; the mismatch names where the Hessian-vector product is
/// wrong.
#[track_caller]
pub fn gradgradcheck_params<F>(
    params: &[(String, Param<f64>)],
    inputs: &[Tensor<f64>],
    loss: F,
    opts: GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var<f64>]) -> Result<Var<f64>>,
{
    let site = Site::caller();
    let _restore = Restore(params, params.iter().map(|(_, p)| p.value()).collect());
    let mut t = Targets {
        params,
        inputs: inputs.to_vec(),
    };
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x4e55);
    let mut dirs = Vec::with_capacity(t.len());
    for k in 0..t.len() {
        let mut u = t.value(k);
        u.data_mut()
            .iter_mut()
            .for_each(|v| *v = rng.gen_range(-1.0..1.0));
        dirs.push(u);
    }
    // analytic: the recorded gradient, dotted with u, differentiated again
    let tape = Tape::<f64>::new();
    let xs: Vec<Var<f64>> = t.inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let l = loss(&xs)?;
    let pv: Vec<Var<f64>> = params.iter().map(|(_, p)| tape.param(p)).collect();
    let wrt: Vec<&Var<f64>> = pv.iter().chain(&xs).collect();
    let analytic: Vec<Tensor<f64>> = if l.is_tracked() {
        let g = grad(
            &[&l],
            &wrt,
            &[],
            GradOptions::create_graph().allow_unused(true),
        )?;
        let mut s: Option<Var<f64>> = None;
        for (gk, u) in g.iter().zip(&dirs) {
            let term = gk.mul(&tape.constant(u.clone()))?.sum();
            s = Some(match s {
                None => term,
                Some(acc) => acc.add(&term)?,
            });
        }
        match s.filter(Var::is_tracked) {
            Some(s) => grad(&[&s], &wrt, &[], GradOptions::default().allow_unused(true))?
                .iter()
                .map(|v| v.value().clone())
                .collect(),
            None => wrt.iter().map(|v| v.value().zeros_like()).collect(),
        }
    } else {
        wrt.iter().map(|v| v.value().zeros_like()).collect()
    };
    compare(&mut t, &analytic, opts, |t| {
        let (_, g) = first_order(t, &loss, site)?;
        Ok(g.iter()
            .zip(&dirs)
            .map(|(g, u)| {
                g.data()
                    .iter()
                    .zip(u.data())
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .sum())
    })
}
