//! gradgradcheck itself: it must fail on a wrong second-order rule, pass a right one,
//! and count what it compared.

mod common;

use chainrule_autograd::{gradcheck, gradgradcheck, Error, Grads, Operand, Saved, Var};
use common::rand_tensor;

/// cube(x) whose recorded rule may be wrong while its fast rule is right.
fn cube(x: &Var<f64>, wrong_second_order: bool) -> chainrule_autograd::Result<Var<f64>> {
    let xs = Saved::of(x);
    let rule = move |g: &Operand<f64>, _: &[bool]| {
        let x = g.load(&xs);
        let d = match g {
            Operand::Tensor(_) => x.mul(&x)?.scale(3.0),
            // 3x·x with one factor cut off the graph: right value, wrong derivative
            Operand::Var(_) if wrong_second_order => {
                x.mul(&g.constant(x.value().clone()))?.scale(3.0)
            }
            Operand::Var(_) => x.mul(&x)?.scale(3.0),
        };
        Ok(Grads::from_iter([Some(g.mul(&d)?)]))
    };
    x.tape()
        .record("cube", x.value().map(|v| v * v * v), &[x], rule)
}

#[test]
fn gradgradcheck_passes_a_right_rule_and_counts_every_element() {
    let x = rand_tensor(&[2, 3], -1.0, 1.0, 1);
    let r = gradgradcheck(|v| cube(&v[0], false), &[x]).unwrap();
    // first order: every element of x (6); second: those and the cotangent's (6)
    assert_eq!(r.checked, 6 + 12);
}

#[test]
fn gradgradcheck_catches_a_wrong_second_order_rule_that_gradcheck_misses() {
    let x = rand_tensor(&[2, 3], 0.5, 1.5, 2);
    gradcheck(|v| cube(&v[0], true), std::slice::from_ref(&x)).unwrap();
    let err = gradgradcheck(|v| cube(&v[0], true), &[x]).unwrap_err();
    let Error::Gradcheck(m) = err else {
        panic!("wrong error: {err}")
    };
    assert_eq!(m.input, 0, "the error is in d/dx, not in d/dv");
    // d/dx of 3x²·v is 6x·v; the broken rule gives 3x·v: half
    assert!((m.analytic - m.numeric / 2.0).abs() < 1e-6, "{m}");
}

#[test]
fn gradgradcheck_sees_through_a_whole_network() {
    let x = rand_tensor(&[3, 4], -1.0, 1.0, 3);
    let w1 = rand_tensor(&[5, 4], -0.5, 0.5, 4);
    let w2 = rand_tensor(&[2, 5], -0.5, 0.5, 5);
    let net = |v: &[Var<f64>]| {
        v[0].linear(&v[1], None)?
            .tanh()
            .linear(&v[2], None)?
            .softmax(1)?
            .log()
            .mean()
    };
    let r = gradgradcheck(net, &[x, w1, w2]).unwrap();
    // 12 + 20 + 10 input elements, then those and a one-element cotangent
    assert_eq!(r.checked, 42 + 43);
}
