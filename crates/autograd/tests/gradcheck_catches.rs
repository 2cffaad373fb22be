//! gradcheck itself must fail on a wrong rule and name the worst element.

use chainrule_autograd::{gradcheck, Error, InputGrads, Tensor};

#[test]
fn gradcheck_names_the_worst_element_of_a_wrong_rule() {
    let x = Tensor::from_vec(vec![0.5, 1.0, 1.5, 2.0], &[2, 2]).unwrap();
    // cube(x) with a wrong rule: 3x (should be 3x²)
    let err = gradcheck(
        |v| {
            let xv = v[0].value().clone();
            let rule = move |g: &Tensor<f64>, _: &[bool]| {
                Ok(InputGrads::from_iter([Some(
                    g.zip_map(&xv, |g, x| 3.0 * x * g)?,
                )]))
            };
            v[0].tape()
                .record_first_order("cube", v[0].value().map(|x| x * x * x), &[&v[0]], rule)
        },
        &[x],
    )
    .unwrap_err();
    let Error::Gradcheck(m) = err else {
        panic!("wrong error")
    };
    // |3x − 3x²|·|v| is largest at x = 2 unless the cotangent is tiny there; it must
    // at least name a real element with the true numeric value 3x²·v.
    assert_eq!(m.input, 0);
    assert_eq!(m.failed, 3, "x = 1 is the only element where 3x = 3x²");
    assert!(m.index.len() == 2 && m.index.iter().all(|&i| i < 2));
    assert!((m.numeric - m.analytic).abs() > m.tolerance);
}

#[test]
fn gradcheck_fails_a_rule_that_ignores_the_upstream_gradient() {
    let x = Tensor::from_vec(vec![0.3, -0.4, 0.9], &[3]).unwrap();
    let r = gradcheck(
        |v| {
            let rule = |g: &Tensor<f64>, _: &[bool]| {
                Ok(InputGrads::from_iter([Some(
                    Tensor::ones(g.dims()).unwrap(),
                )]))
            };
            v[0].tape()
                .record_first_order("ignores_g", v[0].value().clone(), &[&v[0]], rule)
        },
        &[x],
    );
    assert!(matches!(r, Err(Error::Gradcheck(_))));
}
