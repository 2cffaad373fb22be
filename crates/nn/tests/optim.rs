//! Optimizer behaviour beyond the PyTorch trajectories: skipping, errors, schedules.

use chainrule_autograd::{Param, Tape, Tensor};
use chainrule_nn::optim::{Adam, Optimizer, Sgd};

#[test]
fn parameters_without_gradients_are_left_alone() {
    let (a, b) = (
        Param::new(Tensor::<f64>::ones(&[2]).unwrap()),
        Param::new(Tensor::<f64>::ones(&[2]).unwrap()),
    );
    let tape = Tape::new();
    let grads = tape.param(&a).square().sum().backward().unwrap();
    let mut opt = Adam::new(vec![a.clone(), b.clone()], 0.1).unwrap();
    opt.step(&grads).unwrap();
    assert_ne!(a.value().data(), &[1.0, 1.0]);
    assert_eq!(b.value().data(), &[1.0, 1.0]);
}

#[test]
fn sgd_minimises_a_quadratic() {
    let w = Param::new(Tensor::<f64>::from_vec(vec![3.0, -2.0], &[2]).unwrap());
    let mut opt = Sgd::new(vec![w.clone()], 0.1)
        .and_then(|o| o.momentum(0.9))
        .and_then(|o| o.nesterov(true))
        .unwrap();
    for _ in 0..200 {
        let tape = Tape::new();
        opt.step(&tape.param(&w).square().sum().backward().unwrap())
            .unwrap();
    }
    assert!(
        w.value().data().iter().all(|v| v.abs() < 1e-6),
        "{:?}",
        w.value()
    );
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error() {
    let w = Param::new(Tensor::<f64>::ones(&[2]).unwrap());
    let tape = Tape::new();
    let grads = tape.param(&w).square().sum().backward().unwrap();
    w.set(Tensor::ones(&[3]).unwrap()); // the parameter changed shape after backward
    let err = Sgd::new(vec![w], 0.1).unwrap().step(&grads).unwrap_err();
    assert!(
        err.to_string()
            .contains("gradient shape [2] differs from parameter shape [3]"),
        "{err}"
    );
}
