//! Anomaly mode: the first NaN or inf, in forward or in backward, is an error naming
//! the op, the value and the line that recorded it; off, nothing is checked.

use chainrule_autograd::{grad, Error, GradOptions, Grads, Operand, Tape, Tensor};

fn vec1(v: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

#[test]
fn the_first_bad_forward_value_is_reported_with_its_line() {
    let tape = Tape::<f64>::new();
    let _on = tape.detect_anomaly();
    let x = tape.leaf(vec1(&[0.0, 1.0]));
    let line = line!() + 1;
    let y = x.log(); // log 0 = −inf
    let z = y.exp().sum(); // finite again
    assert!(matches!(
        tape.anomaly(),
        Err(Error::Anomaly { op: "log", .. })
    ));
    let err = z.backward().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("inf in the output of log"), "{msg}");
    assert!(msg.contains(&format!("anomaly.rs:{line}:")), "{msg}");
    let err = grad(&[&z], &[&x], &[], GradOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Anomaly { op: "log", .. }));
}

#[test]
fn bad_inputs_are_named_as_inputs() {
    let tape = Tape::<f64>::new();
    let _on = tape.detect_anomaly();
    let x = tape.leaf(vec1(&[f64::NAN]));
    let err = x.sum().backward().unwrap_err();
    assert!(
        err.to_string().contains("NaN in the input of leaf"),
        "{err}"
    );
}

#[test]
fn a_rule_returning_a_bad_gradient_is_caught_in_backward() {
    let tape = Tape::<f64>::new();
    let _on = tape.detect_anomaly();
    let x = tape.leaf(vec1(&[1.0]));
    let bad = tape
        .record(
            "bad_rule",
            x.value().clone(),
            &[&x],
            |g: &Operand<f64>, _: &[bool]| Ok(Grads::from_iter([Some(g.scale(f64::INFINITY))])),
        )
        .unwrap();
    let err = bad.sum().backward().unwrap_err();
    assert!(
        matches!(err, Error::Anomaly { op: "bad_rule", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("inf in the gradient for input 0"),
        "{err}"
    );
}

#[test]
fn off_by_default_and_after_the_guard() {
    let tape = Tape::<f64>::new();
    {
        let _on = tape.detect_anomaly();
    }
    let x = tape.leaf(vec1(&[-1.0]));
    let y = x.sqrt().sum();
    assert!(tape.anomaly().is_ok());
    assert!(y.backward().unwrap().wrt(&x).unwrap().data()[0].is_nan());
}
