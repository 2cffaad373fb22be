//! Checking a model's gradients as it is: the gradient of a loss with respect to every
//! parameter of a [`ModuleState`] (by its name) and every input, against finite differences
//! in f64 — and the same at second order. No need to rewrite the model as a function
//! of leaves first.

use chainrule_autograd::{
    gradcheck_params, gradgradcheck_params, GradcheckOptions, GradcheckReport, Result, Tensor, Var,
};

use crate::ModuleState;

/// Compares the gradient of `loss(module, inputs)` (one element) with respect to each
/// of the module's parameters and each input with central differences, PyTorch's
/// tolerances. Parameters are perturbed in place and restored; put a module with
/// dropout in eval mode first.
///
/// ```
/// use chainrule_autograd::{Reduction, Tensor};
/// use chainrule_nn::{check::gradcheck_module, layers::{Linear, Sequential, Tanh}, Module};
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Sequential::<f64>::new().push(Linear::new(3, 4, &mut rng)?).push(Tanh).push(Linear::new(4, 2, &mut rng)?);
/// let x = Tensor::from_vec(vec![0.1, -0.4, 0.9, 0.3, 0.2, -0.8], &[2, 3])?;
/// let report = gradcheck_module(&net, &[x], |m, v| m.forward(&v[0])?.cross_entropy(&[0, 1], Reduction::Mean))?;
/// assert_eq!(report.checked, 12 + 4 + 8 + 2 + 6); // every weight, bias and input element
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`chainrule_autograd::Error::Gradcheck`] naming the parameter (`"2.weight"`) or
/// input (`"input 0"`) and the element that disagree most.
#[track_caller]
pub fn gradcheck_module<M, F>(
    module: &M,
    inputs: &[Tensor<f64>],
    loss: F,
) -> Result<GradcheckReport>
where
    M: ModuleState<f64> + ?Sized,
    F: Fn(&M, &[Var<f64>]) -> Result<Var<f64>>,
{
    let params = module.named_parameters();
    gradcheck_params(
        &params,
        inputs,
        |v| loss(module, v),
        GradcheckOptions::default(),
    )
}

/// [`gradcheck_module`] at second order: Hessian-vector products in random directions
/// from the recorded backward, against central differences of the gradient.
///
/// # Errors
/// As [`gradcheck_module`].
#[track_caller]
pub fn gradgradcheck_module<M, F>(
    module: &M,
    inputs: &[Tensor<f64>],
    loss: F,
) -> Result<GradcheckReport>
where
    M: ModuleState<f64> + ?Sized,
    F: Fn(&M, &[Var<f64>]) -> Result<Var<f64>>,
{
    let params = module.named_parameters();
    gradgradcheck_params(
        &params,
        inputs,
        |v| loss(module, v),
        GradcheckOptions::default(),
    )
}
