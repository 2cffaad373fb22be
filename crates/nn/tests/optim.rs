//! Optimizer behaviour beyond the PyTorch trajectories: skipping, errors, groups, saved
//! state, clipping and schedules.

use chainrule_autograd::{Gradients, Param, Tape, Tensor};
use chainrule_nn::optim::{
    clip_grad_norm, clip_grad_value, Adagrad, Adam, OneCycleLr, Optimizer, OptimizerState,
    ParamGroup, Scheduler, Sgd, SgdOptions, StepLr,
};

fn param(values: &[f64]) -> Param<f64> {
    Param::new(Tensor::from_vec(values.to_vec(), &[values.len()]).unwrap())
}

/// Gradients of `Σ p²` for every parameter.
fn squares(params: &[Param<f64>]) -> Gradients<f64> {
    let tape = Tape::new();
    let mut loss = tape.constant(Tensor::scalar(0.0));
    for p in params {
        loss = (&loss + &tape.param(p).square().sum()).unwrap();
    }
    loss.backward().unwrap()
}

#[test]
fn a_parameter_in_two_groups_is_an_error() {
    let w = param(&[1.0]);
    let o = SgdOptions::default();
    let err = Sgd::with_groups(vec![
        ParamGroup::new(vec![w.clone()], o),
        ParamGroup::new(vec![w], o),
    ])
    .map(drop)
    .unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
}

#[test]
fn an_invalid_group_is_named() {
    let err = Sgd::with_groups(vec![
        ParamGroup::new(vec![param(&[1.0])], SgdOptions::default()),
        ParamGroup::new(
            vec![param(&[1.0])],
            SgdOptions {
                lr: -1.0,
                ..SgdOptions::default()
            },
        ),
    ])
    .map(drop)
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("group 1: invalid learning rate -1"),
        "{err}"
    );
}

#[test]
fn each_group_moves_with_its_own_rate_and_a_schedule_scales_each() {
    let (a, b) = (param(&[1.0]), param(&[1.0]));
    let mut opt = Sgd::with_groups(vec![
        ParamGroup::new(
            vec![a.clone()],
            SgdOptions {
                lr: 0.1,
                ..SgdOptions::default()
            },
        ),
        ParamGroup::new(
            vec![b.clone()],
            SgdOptions {
                lr: 0.2,
                ..SgdOptions::default()
            },
        ),
    ])
    .unwrap();
    opt.step(&squares(&[a.clone(), b.clone()])).unwrap();
    assert!((a.value().data()[0] - 0.8).abs() < 1e-15); // 1 − 0.1·2
    assert!((b.value().data()[0] - 0.6).abs() < 1e-15); // 1 − 0.2·2
    let mut sched = Scheduler::new(
        StepLr {
            step_size: 1,
            gamma: 0.5,
        },
        &mut opt,
    )
    .unwrap();
    sched.step(&mut opt).unwrap();
    assert_eq!(opt.lrs(), vec![0.05, 0.1]);
}

#[test]
fn a_bad_gradient_changes_no_parameter() {
    let (a, b) = (param(&[1.0, 2.0]), param(&[3.0]));
    let grads = squares(&[a.clone(), b.clone()]);
    b.set(Tensor::ones(&[2]).unwrap()); // b changed shape after backward
    let mut opt = Sgd::new(vec![a.clone(), b], 0.1).unwrap();
    assert!(opt.step(&grads).is_err());
    assert_eq!(a.value().data(), &[1.0, 2.0]);
}

#[test]
fn loading_a_mismatched_state_lists_every_problem_and_changes_nothing() {
    let a = param(&[1.0, 2.0]);
    let mut adam = Adam::new(vec![a.clone()], 0.1).unwrap();
    adam.step(&squares(std::slice::from_ref(&a))).unwrap();
    let mut sgd = Sgd::new(vec![param(&[1.0])], 0.3)
        .unwrap()
        .momentum(0.5)
        .unwrap();
    let before = sgd.state_dict();
    let err = sgd
        .load_state_dict(&adam.state_dict())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the state is a Adam's, this optimizer is a Sgd"),
        "{err}"
    );
    assert!(err.contains("no hyperparameter \"beta1\""), "{err}");
    assert_eq!(sgd.state_dict(), before);

    // same kind, but the parameter has another size
    let mut other = Adam::new(vec![param(&[1.0, 2.0, 3.0])], 0.5).unwrap();
    let before = other.state_dict();
    let err = other
        .load_state_dict(&adam.state_dict())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("parameter 0: exp_avg has 2 values, the parameter 3"),
        "{err}"
    );
    assert_eq!(other.state_dict(), before);
    assert_eq!(other.lr(), 0.5);
}

#[test]
fn a_saved_state_round_trips_and_a_model_checkpoint_is_refused() {
    let a = param(&[1.0, -2.0]);
    let mut opt = Adam::new(vec![a.clone()], 0.1).unwrap().amsgrad(true);
    for _ in 0..3 {
        opt.step(&squares(std::slice::from_ref(&a))).unwrap();
    }
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "chainrule-optim-{}.safetensors",
        std::process::id()
    ));
    opt.state_dict().save(&path).unwrap();
    let loaded = OptimizerState::<f64>::load(&path).unwrap();
    assert_eq!(loaded, opt.state_dict());
    assert_eq!(loaded.params[0].as_ref().unwrap().step, 3);
    // an f64 state loads into an f32 optimizer, converted
    let as_f32 = OptimizerState::<f32>::load(&path).unwrap();
    assert_eq!(as_f32.params[0].as_ref().unwrap().slots[0].len(), 2);

    let model = dir.join(format!(
        "chainrule-optim-model-{}.safetensors",
        std::process::id()
    ));
    let net =
        chainrule_nn::layers::Linear::<f64>::new(2, 1, &mut rand::rngs::mock::StepRng::new(1, 1))
            .unwrap();
    chainrule_nn::checkpoint::save(&net, &model).unwrap();
    let err = OptimizerState::<f64>::load(&model).unwrap_err().to_string();
    assert!(err.contains("not an optimizer state"), "{err}");
    std::fs::write(&path, b"12345678garbage").unwrap();
    assert!(OptimizerState::<f64>::load(&path).is_err());
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&model).ok();
}

#[test]
fn clipping_rejects_bad_arguments_and_skips_missing_gradients() {
    let (a, b) = (param(&[3.0, 4.0]), param(&[1.0]));
    let mut grads = squares(std::slice::from_ref(&a));
    assert!(clip_grad_norm(&mut grads, std::slice::from_ref(&a), -1.0, 2.0).is_err());
    assert!(clip_grad_norm(&mut grads, std::slice::from_ref(&a), 1.0, 0.0).is_err());
    assert!(clip_grad_norm(&mut grads, std::slice::from_ref(&a), 1.0, f64::NAN).is_err());
    assert!(clip_grad_value(&mut grads, std::slice::from_ref(&a), -0.5).is_err());
    assert_eq!(
        clip_grad_norm(&mut grads, std::slice::from_ref(&b), 1.0, 2.0).unwrap(),
        0.0
    );
    // below the limit the gradients stay exactly as they were
    let total = clip_grad_norm(&mut grads, &[a.clone(), b], 100.0, 2.0).unwrap();
    assert!((total - 10.0).abs() < 1e-12);
    assert_eq!(grads.get(&a).unwrap().data(), &[6.0, 8.0]);
}

#[test]
fn a_one_cycle_schedule_ends_and_needs_a_momentum() {
    let w = param(&[1.0]);
    let mut opt = Sgd::new(vec![w.clone()], 0.1)
        .unwrap()
        .momentum(0.9)
        .unwrap();
    let mut sched = Scheduler::new(OneCycleLr::new(0.5, 3), &mut opt).unwrap();
    for _ in 0..3 {
        sched.step(&mut opt).unwrap();
    }
    let err = sched.step(&mut opt).unwrap_err().to_string();
    assert!(
        err.contains("stepped 4 times, past the schedule's 3 total steps"),
        "{err}"
    );
    assert_eq!(sched.steps(), 3);

    let mut adagrad = Adagrad::new(vec![w], 0.1).unwrap();
    let err = Scheduler::new(OneCycleLr::new(0.5, 3), &mut adagrad)
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("cycles momentum"), "{err}");
    assert!(Scheduler::new(
        StepLr {
            step_size: 0,
            gamma: 0.5
        },
        &mut opt
    )
    .is_err());
}

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
