//! Gradient clipping, as PyTorch's `clip_grad_norm_` and `clip_grad_value_`, applied to
//! the [`Gradients`] a backward pass returned, before the optimizer step.

use chainrule_autograd::{Element, Gradients, Param};

fn invalid(reason: String) -> crate::Error {
    crate::Error::Invalid {
        what: "clip_grad",
        reason,
    }
}

/// Scales the gradients of `params` together so their total `norm_type`-norm (the norm
/// of the per-parameter norms; `f64::INFINITY` for the largest magnitude) is at most
/// `max_norm`, and returns the total norm before clipping. As in PyTorch the factor is
/// `min(1, max_norm / (total + 1e-6))`; parameters without a gradient are skipped. A
/// non-finite total is returned as it is (and scales the gradients to NaN, as PyTorch's
/// default): check it to skip such a step.
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::clip_grad_norm;
/// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0, 4.0], &[2])?);
/// let tape = Tape::new();
/// let mut grads = tape.param(&w).square().sum().backward()?; // gradient (6, 8)
/// let total = clip_grad_norm(&mut grads, &[w.clone()], 1.0, 2.0)?;
/// assert!((total - 10.0).abs() < 1e-12);
/// let g = grads.get(&w).unwrap().data();
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// `max_norm` negative or NaN, or `norm_type` not positive.
pub fn clip_grad_norm<T: Element>(
    grads: &mut Gradients<T>,
    params: &[Param<T>],
    max_norm: f64,
    norm_type: f64,
) -> crate::Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(invalid(format!("max_norm {max_norm} must be >= 0")));
    }
    if norm_type.is_nan() || norm_type <= 0.0 {
        return Err(invalid(format!(
            "norm_type {norm_type} must be positive (or f64::INFINITY)"
        )));
    }
    let norm = |values: &mut dyn Iterator<Item = f64>| -> f64 {
        if norm_type == f64::INFINITY {
            values.map(f64::abs).fold(0.0, f64::max)
        } else if norm_type == 1.0 {
            values.map(f64::abs).sum()
        } else if norm_type == 2.0 {
            values.map(|v| v * v).sum::<f64>().sqrt()
        } else {
            values
                .map(|v| v.abs().powf(norm_type))
                .sum::<f64>()
                .powf(1.0 / norm_type)
        }
    };
    let norms: Vec<f64> = params
        .iter()
        .filter_map(|p| grads.get(p))
        .map(|g| norm(&mut g.data().iter().map(|v| v.to_f64())))
        .collect();
    if norms.is_empty() {
        return Ok(0.0);
    }
    let total = norm(&mut norms.iter().copied());
    let factor = T::from_f64((max_norm / (total + 1e-6)).min(1.0));
    for p in params {
        if let Some(g) = grads.get_mut(p) {
            g.data_mut().iter_mut().for_each(|v| *v *= factor);
        }
    }
    Ok(total)
}

/// Clamps every gradient element of `params` to `[-clip_value, clip_value]`.
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::clip_grad_value;
/// let w = Param::new(Tensor::<f64>::from_vec(vec![0.1, -4.0], &[2])?);
/// let tape = Tape::new();
/// let mut grads = tape.param(&w).square().sum().backward()?; // gradient (0.2, −8)
/// clip_grad_value(&mut grads, &[w.clone()], 0.5)?;
/// assert_eq!(grads.get(&w).unwrap().data(), &[0.2, -0.5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// `clip_value` negative or NaN.
pub fn clip_grad_value<T: Element>(
    grads: &mut Gradients<T>,
    params: &[Param<T>],
    clip_value: f64,
) -> crate::Result<()> {
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(invalid(format!("clip_value {clip_value} must be >= 0")));
    }
    let (low, high) = (T::from_f64(-clip_value), T::from_f64(clip_value));
    for p in params {
        if let Some(g) = grads.get_mut(p) {
            g.data_mut()
                .iter_mut()
                .for_each(|v| *v = v.max(low).min(high));
        }
    }
    Ok(())
}
