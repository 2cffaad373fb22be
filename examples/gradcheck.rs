//! "How do I know my gradients are right?" — `gradcheck` compares backward with finite
//! differences. It passes a user-written composite function, and catches a custom op
//! whose hand-written backward is wrong, naming the worst element.
//!
//! `cargo run --release --example gradcheck`

use chainrule::{gradcheck, InputGrads, Result, Site, Tensor, Var};

/// A composite function built from engine ops: swish(x·w) summed per row, then a log-sum-exp.
fn composite(v: &[Var<f64>]) -> Result<Var<f64>> {
    let z = v[0].matmul(&v[1])?;
    let swish = (&z * &z.sigmoid())?;
    swish.logsumexp(1, false)
}

/// softplus(x) = ln(1 + eˣ) as a custom op with a hand-written rule. `wrong` uses
/// 1/(1 + eˣ) as the derivative instead of the correct σ(x) = 1/(1 + e⁻ˣ).
fn softplus(x: &Var<f64>, wrong: bool) -> Result<Var<f64>> {
    let xv = x.value().clone();
    let y = xv.map(|v| v.exp().ln_1p());
    let rule = move |g: &Tensor<f64>, _: &[bool]| {
        let sign = if wrong { 1.0 } else { -1.0 };
        Ok(InputGrads::from_iter([Some(
            g.zip_map(&xv, |g, x| g / (1.0 + (sign * x).exp()))?,
        )]))
    };
    x.tape().record(
        if wrong { "softplus_wrong" } else { "softplus" },
        Site::caller(),
        y,
        &[x],
        rule,
    )
}

/// The three checks: (composite, correct custom op, wrong custom op).
pub fn run() -> (
    Result<chainrule::GradcheckReport>,
    Result<chainrule::GradcheckReport>,
    Result<chainrule::GradcheckReport>,
) {
    let x = Tensor::from_vec(vec![0.3, -1.2, 0.8, 0.5, 1.1, -0.4], &[2, 3]).expect("6 values");
    let w = Tensor::from_vec(vec![0.2, -0.5, 0.7, 0.1, -0.3, 0.9], &[3, 2]).expect("6 values");
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
