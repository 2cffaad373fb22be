//! The fused kernel behind batch and layer norm: one record for normalize + scale +
//! shift. The fast path (`Operand::Tensor`) runs `kernels::normalize`; the recorded
//! path writes the same gradient with recorded ops, so the op stays differentiable to
//! any order — that arm is the definition, the kernel its fast equivalent.

use chainrule_tensor::kernels::normalize::{self, AffineAxis, NormLayout};
use chainrule_tensor::{Element, Tensor};

use crate::error::InOp;
use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

/// Where the statistics come from.
pub(crate) enum Statistics<T> {
    /// From the input itself (training batch norm, layer norm), with this ε.
    Batch { eps: f64 },
    /// Given constants (eval batch norm): per-group mean and 1/√(var + ε).
    Fixed { mean: Vec<T>, invstd: Vec<T> },
}

/// How the op's dims map onto the kernel's `[outer, groups, inner]` view.
pub(crate) struct Plan {
    pub layout: NormLayout,
    pub axis: AffineAxis,
    /// The dims each group's statistics reduce over.
    pub stats_dims: Vec<usize>,
    /// The dims the weight and bias gradients sum over.
    pub affine_dims: Vec<usize>,
    /// The weight's shape broadcast against the input (`[c, 1, …]` or the normalized
    /// shape).
    pub affine_shape: Vec<usize>,
}

/// The normalized, scaled and shifted input as one recorded op, plus the batch's
/// per-group mean and biased variance (for running statistics).
#[allow(clippy::type_complexity)]
pub(crate) fn normalize_recorded<T: Element>(
    x: &Var<T>,
    op: &'static str,
    site: Site,
    plan: Plan,
    statistics: Statistics<T>,
    weight: Option<&Var<T>>,
    bias: Option<&Var<T>>,
) -> Result<(Var<T>, Option<(Vec<f64>, Vec<f64>)>)> {
    let data = x.value().data();
    let (mean, invstd, moments, batch) = match statistics {
        Statistics::Batch { eps } => {
            let m = normalize::moments(data, plan.layout);
            let mean = m.iter().map(|&(mu, _)| T::from_f64(mu)).collect();
            let invstd = m
                .iter()
                .map(|&(_, v)| T::from_f64(1.0 / (v + eps).sqrt()))
                .collect();
            let split = m.into_iter().unzip();
            (mean, invstd, Some((split, eps)), true)
        }
        Statistics::Fixed { mean, invstd } => (mean, invstd, None, false),
    };
    let w = weight.map(|w| w.value().data());
    let b = bias.map(|b| b.value().data());
    let y = normalize::normalize(data, plan.layout, &mean, &invstd, w, b, plan.axis);
    let y = Tensor::from_vec(y, x.dims()).in_op(op, site)?;
    let eps = moments.as_ref().map(|m| m.1);
    let stats = moments.map(|m| m.0);

    let xs = Saved::of(x);
    let ws = weight.map(Saved::of);
    let (has_w, has_b) = (weight.is_some(), bias.is_some());
    let dims = x.dims().to_vec();
    let rule = move |g: &Operand<T>, _: &[bool]| -> Result<Grads<T>> {
        let (dx, dw, db) = match g {
            Operand::Tensor(dy) => {
                let wd = ws.as_ref().map(|w| w.value().data());
                let (dx, dw, db) = normalize::normalize_backward(
                    xs.value().data(),
                    dy.data(),
                    plan.layout,
                    &mean,
                    &invstd,
                    wd,
                    plan.axis,
                    batch,
                );
                let param_dims = ws.as_ref().map(|w| w.value().dims().to_vec());
                let shaped = |v: Vec<T>, d: &[usize]| Tensor::from_vec(v, d).map(Operand::Tensor);
                let affine: Vec<usize> =
                    param_dims.unwrap_or_else(|| affine_len_dims(&plan, &dims));
                (
                    Operand::Tensor(Tensor::from_vec(dx, &dims)?),
                    dw.map(|v| shaped(v, &affine)).transpose()?,
                    shaped(db, &affine)?,
                )
            }
            Operand::Var(_) => {
                recorded_gradient(g, &xs, ws.as_ref(), &plan, &dims, eps, &mean, &invstd)?
            }
        };
        let mut grads = Grads::new();
        grads.push(Some(dx));
        if has_w {
            grads.push(dw);
        }
        if has_b {
            grads.push(Some(db));
        }
        Ok(grads)
    };
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let out = x.tape().record_at(op, site, y, &inputs, rule)?;
    Ok((out, stats))
}

/// The shape of the weight and bias gradients when there is no weight to copy it from.
fn affine_len_dims(plan: &Plan, dims: &[usize]) -> Vec<usize> {
    match plan.axis {
        AffineAxis::Group => vec![plan.layout.groups],
        AffineAxis::Inner => dims[dims.len() - plan.affine_shape.len()..].to_vec(),
    }
}

/// The same gradient as the kernel, written with recorded ops.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn recorded_gradient<T: Element>(
    g: &Operand<T>,
    xs: &Saved<T>,
    ws: Option<&Saved<T>>,
    plan: &Plan,
    dims: &[usize],
    eps: Option<f64>,
    mean: &[T],
    invstd: &[T],
) -> Result<(Operand<T>, Option<Operand<T>>, Operand<T>)> {
    let x = g.load(xs);
    let red = &plan.stats_dims;
    let n = red.iter().map(|&d| dims[d]).product::<usize>().max(1) as f64;
    let mean_over =
        |v: &Operand<T>| -> Result<Operand<T>> { Ok(v.sum_dims(red, true)?.scale(1.0 / n)) };
    let group_shape: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(d, &s)| if red.contains(&d) { 1 } else { s })
        .collect();
    let (xhat, inv) = match eps {
        Some(eps) => {
            let centered = x.sub(&mean_over(&x)?)?;
            let var = mean_over(&centered.mul(&centered)?)?;
            let inv = var.unary(Unary::AddScalar(eps)).unary(Unary::Powf(-0.5));
            (centered.mul(&inv)?, inv)
        }
        None => {
            let constant = |v: &[T]| -> Result<Operand<T>> {
                Ok(g.constant(Tensor::from_vec(v.to_vec(), &group_shape)?))
            };
            let inv = constant(invstd)?;
            (x.sub(&constant(mean)?)?.mul(&inv)?, inv)
        }
    };
    let gw = match ws {
        Some(w) => g.mul(&g.load(w).reshape(&plan.affine_shape)?)?,
        None => g.clone(),
    };
    let dx = match eps {
        Some(_) => {
            let centred_g = gw.sub(&mean_over(&gw)?)?;
            inv.mul(&centred_g.sub(&xhat.mul(&mean_over(&gw.mul(&xhat)?)?)?)?)?
        }
        None => gw.mul(&inv)?,
    };
    let affine = affine_len_dims(plan, dims);
    let sum_affine = |v: &Operand<T>| -> Result<Operand<T>> {
        v.sum_dims(&plan.affine_dims, false)?.reshape(&affine)
    };
    let dw = ws.map(|_| sum_affine(&g.mul(&xhat)?)).transpose()?;
    Ok((dx, dw, sum_affine(g)?))
}
