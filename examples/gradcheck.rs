//! "How do I know my gradients are right?" — `gradcheck` compares backward with finite
//! differences. It passes a user-written composite function, and catches a custom op
//! whose hand-written backward is wrong, naming the worst element.
//!
//! `cargo run --release --example gradcheck`

use chainrule::{gradcheck, Grads, Operand, Result, Saved, Unary, Var};

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
}
