//! "How do I know my gradients are right?" — `gradcheck` compares backward with finite
//! differences. It passes a user-written composite function, and catches a custom op
//! whose hand-written backward is wrong, naming the worst element. `gradgradcheck` does
//! the same for second derivatives, and `nn::check::gradcheck_module` checks a model's
//! own parameters by name, without rewriting it as a function.
//!
//! `cargo run --release --example gradcheck`

use chainrule::nn::check::{gradcheck_module, gradgradcheck_module};
use chainrule::nn::layers::{Linear, Sequential, Tanh};
use chainrule::nn::Module;
use chainrule::{
    gradcheck, gradgradcheck, Grads, Operand, Param, Reduction, Result, Saved, Unary, Var,
};
use rand::SeedableRng;

/// A composite function built from engine ops: swish(x·w) summed per row, then a log-sum-exp.
fn composite(v: &[Var<f64>]) -> Result<Var<f64>> {
    let z = v[0].matmul(&v[1])?;
    let swish = (&z * &z.sigmoid())?;
    swish.logsumexp(1, false)
}

/// softplus(x) = ln(1 + eˣ) as a custom op with a hand-written rule, `g · σ(x)`. The
/// rule is written over `Operand`s, so it also serves gradients of gradients. `wrong`
/// uses 1/(1 + eˣ) = σ(−x) as the derivative instead of the correct σ(x).
fn softplus(x: &Var<f64>, wrong: bool) -> Result<Var<f64>> {
    let xs = Saved::of(x);
    let y = x.value().map(|v| v.exp().ln_1p());
    let rule = move |g: &Operand<f64>, _: &[bool]| {
        let x = g.load(&xs);
        let x = if wrong { x.neg() } else { x };
        Ok(Grads::from_iter([Some(g.mul(&x.unary(Unary::Sigmoid))?)]))
    };
    let name = if wrong { "softplus_wrong" } else { "softplus" };
    x.tape().record(name, y, &[x], rule)
}

/// A custom module: softplus(x)·s with a learned per-feature scale `s`, built on the
/// custom op above.
/// Through the `chainrule` facade the derive is told where the nn crate is.
#[derive(Module)]
#[module(crate = "chainrule::nn")]
struct ScaledSoftplus {
    scale: Param<f64>,
    wrong: bool,
}

impl Module<f64> for ScaledSoftplus {
    fn forward(&self, x: &Var<f64>) -> Result<Var<f64>> {
        softplus(x, self.wrong)? * x.tape().param(&self.scale)
    }
}

/// A model holding the custom module after a linear layer.
fn model(wrong: bool) -> Result<Sequential<f64>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let scale = chainrule::Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3])?;
    Ok(Sequential::new()
        .push(Linear::new(2, 3, &mut rng)?)
        .push(Tanh)
        .push(ScaledSoftplus {
            scale: Param::new(scale),
            wrong,
        }))
}

/// Second order and the module checks: (gradgradcheck of the custom op, the module
/// at first order, at second order, and with the wrong rule inside).
pub fn run_module_checks() -> [Result<chainrule::GradcheckReport>; 4] {
    let x = chainrule::Tensor::from_vec(vec![0.3, -1.2, 0.8, 0.5], &[2, 2]).expect("4 values");
    let loss = |m: &Sequential<f64>, v: &[Var<f64>]| {
        m.forward(&v[0])?.cross_entropy(&[2, 0], Reduction::Mean)
    };
    let second = gradgradcheck(|v| softplus(&v[0], false), std::slice::from_ref(&x));
    let checks = |wrong: bool, second_order: bool| {
        let m = model(wrong)?;
        if second_order {
            gradgradcheck_module(&m, std::slice::from_ref(&x), loss)
        } else {
            gradcheck_module(&m, std::slice::from_ref(&x), loss)
        }
    };
    [
        second,
        checks(false, false),
        checks(false, true),
        checks(true, false),
    ]
}

/// The three checks: (composite, correct custom op, wrong custom op).
pub fn run() -> (
    Result<chainrule::GradcheckReport>,
    Result<chainrule::GradcheckReport>,
    Result<chainrule::GradcheckReport>,
) {
    let x = chainrule::Tensor::from_vec(vec![0.3, -1.2, 0.8, 0.5, 1.1, -0.4], &[2, 3])
        .expect("6 values");
    let w = chainrule::Tensor::from_vec(vec![0.2, -0.5, 0.7, 0.1, -0.3, 0.9], &[3, 2])
        .expect("6 values");
    let composite_check = gradcheck(composite, &[x.clone(), w]);
    let good = gradcheck(|v| softplus(&v[0], false), std::slice::from_ref(&x));
    let bad = gradcheck(|v| softplus(&v[0], true), &[x]);
    (composite_check, good, bad)
}

#[allow(dead_code)]
fn main() {
    let (composite_check, good, bad) = run();
    let show = |name: &str, r: &Result<chainrule::GradcheckReport>| match r {
        Ok(rep) => println!(
            "{name:<28} passed: {} elements, largest |analytic − numeric| {:.2e}",
            rep.checked, rep.max_abs_error
        ),
        Err(e) => println!("{name:<28} FAILED: {e}"),
    };
    show("composite swish/logsumexp", &composite_check);
    show("softplus, correct rule", &good);
    show("softplus, wrong rule", &bad);
    let [second, module, module2, module_bad] = run_module_checks();
    show("softplus, second order", &second);
    show("model with it, parameters", &module);
    show("model, second order", &module2);
    show("model, wrong rule inside", &module_bad);
}
