//! `grad` and backward's options with PyTorch's semantics: chosen inputs (leaves,
//! parameters, intermediates), only the records on the path run, retain_graph,
//! allow_unused, grad_outputs, gradients of any order, and typed errors.

use std::cell::Cell;
use std::rc::Rc;

use chainrule_autograd::{
    checkpoint, grad, BackwardOptions, Error, GradOptions, InputGrads, Param, Tape, Tensor, Var,
};

fn vec1(v: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

#[test]
fn grad_of_a_leaf_a_parameter_and_an_intermediate() {
    let tape = Tape::<f64>::new();
    let w = Param::new(vec1(&[2.0]));
    let x = tape.leaf(vec1(&[3.0]));
    let wv = tape.param(&w);
    let h = (&x * &wv).unwrap(); // 6
    let y = h.square().sum(); // 36
    let g = grad(&[&y], &[&x, &wv, &h], &[], GradOptions::default()).unwrap();
    assert_eq!(g[0].value().data(), &[24.0]); // 2h·w
    assert_eq!(g[1].value().data(), &[36.0]); // 2h·x
    assert_eq!(g[2].value().data(), &[12.0]); // 2h
    assert!(g.iter().all(|v| !v.is_tracked()));
}

#[test]
fn only_records_on_a_path_from_the_inputs_run() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0, 2.0]));
    let z = tape.leaf(vec1(&[5.0, 6.0]));
    let ran = Rc::new(Cell::new(false));
    let flag = Rc::clone(&ran);
    // an op on z alone, with a rule that records that it ran
    let zz = tape
        .record_first_order("watched", z.value().clone(), &[&z], move |g, _| {
            flag.set(true);
            Ok(InputGrads::from_iter([Some(g.clone())]))
        })
        .unwrap();
    let y = (&x * &zz).unwrap().sum();
    let g = grad(&[&y], &[&x], &[], GradOptions::default()).unwrap();
    assert_eq!(g[0].value().data(), &[5.0, 6.0]);
    assert!(!ran.get(), "a record off the path from x ran");
}

#[test]
fn retain_graph_lets_a_second_backward_walk_the_same_records() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[3.0]));
    let y = x.exp().sum();
    let keep = BackwardOptions { retain_graph: true };
    let a = y.backward_with_options(None, keep).unwrap();
    let b = y.backward().unwrap();
    assert_eq!(a.wrt(&x).unwrap().data(), b.wrt(&x).unwrap().data());
    assert!(matches!(
        y.backward(),
        Err(Error::GraphFreed { op: "sum", .. })
    ));
    // two losses sharing records, without summing them first
    let h = x.tanh();
    let (l1, l2) = (h.sum(), h.square().sum());
    let opts = GradOptions::default().retain_graph(true);
    let g1 = grad(&[&l1], &[&x], &[], opts).unwrap();
    let g2 = grad(&[&l2], &[&x], &[], GradOptions::default()).unwrap();
    let t = 3.0f64.tanh();
    assert!((g1[0].value().data()[0] - (1.0 - t * t)).abs() < 1e-15);
    assert!((g2[0].value().data()[0] - 2.0 * t * (1.0 - t * t)).abs() < 1e-15);
}

#[test]
fn unused_inputs_are_an_error_unless_allowed() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0]));
    let unused = tape.leaf(vec1(&[1.0, 2.0]));
    let constant = tape.constant(vec1(&[1.0]));
    let y = x.exp().sum();
    let opts = GradOptions::default().retain_graph(true);
    let err = grad(&[&y], &[&x, &unused], &[], opts).unwrap_err();
    assert!(matches!(err, Error::UnusedInput { index: 1, .. }), "{err}");
    assert!(err.to_string().contains("grad_api.rs"), "{err}");
    let g = grad(&[&y], &[&unused, &constant], &[], opts.allow_unused(true)).unwrap();
    assert_eq!(g[0].value().data(), &[0.0, 0.0]);
    assert_eq!(g[1].value().data(), &[0.0]);
}

#[test]
fn grad_outputs_seed_many_element_outputs_and_are_checked() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0, 2.0]));
    let y = x.square();
    let v = tape.constant(vec1(&[1.0, -1.0]));
    let opts = GradOptions::default().retain_graph(true);
    let g = grad(&[&y], &[&x], &[&v], opts).unwrap();
    assert_eq!(g[0].value().data(), &[2.0, -4.0]);
    assert!(matches!(
        grad(&[&y], &[&x], &[], opts),
        Err(Error::BackwardCall { .. })
    ));
    let wrong = tape.constant(vec1(&[1.0]));
    assert!(matches!(
        grad(&[&y], &[&x], &[&wrong], opts),
        Err(Error::BackwardCall { .. })
    ));
    let other = Tape::<f64>::new().leaf(vec1(&[1.0]));
    assert!(matches!(
        grad(&[&y], &[&other], &[&v], opts),
        Err(Error::BackwardCall { .. })
    ));
    // several outputs: the gradients add
    let z = x.exp();
    let both = grad(&[&y, &z], &[&x], &[&v, &v], GradOptions::default()).unwrap();
    let e = [1f64.exp(), -(2f64.exp())];
    assert_eq!(both[0].value().data(), &[2.0 + e[0], -4.0 + e[1]]);
}

#[test]
fn gradients_of_any_order() {
    // y = x⁴: y' = 4x³, y'' = 12x², y''' = 24x, y'''' = 24
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.5]));
    let mut d = x.powf(4.0).sum();
    let mut got = Vec::new();
    for _ in 0..4 {
        d = grad(&[&d], &[&x], &[], GradOptions::create_graph()).unwrap()[0].sum();
        got.push(d.value().data()[0]);
    }
    let want = [4.0 * 1.5f64.powi(3), 12.0 * 1.5 * 1.5, 24.0 * 1.5, 24.0];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn a_gradient_penalty_trains_through_the_gradient() {
    // ‖∇ₓ f‖² for f = Σ tanh(w·x): its gradient with respect to w flows through the
    // recorded backward
    let w = Param::new(vec1(&[0.7, -0.4]));
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[0.3, 0.9]));
    let wv = tape.param(&w);
    let f = (&wv * &x).unwrap().tanh().sum();
    let gx = grad(&[&f], &[&x], &[], GradOptions::create_graph()).unwrap();
    let penalty = gx[0].square().sum();
    let grads = penalty.backward().unwrap();
    // d/dw (w·sech²(w·x))² = 2w s²·(s² − 2w·x·s²·t) with s² = sech², t = tanh
    let want: Vec<f64> = [0.7f64, -0.4]
        .iter()
        .zip([0.3f64, 0.9])
        .map(|(&w, x)| {
            let (t, s2) = ((w * x).tanh(), 1.0 - (w * x).tanh().powi(2));
            2.0 * w * s2 * (s2 - 2.0 * w * x * s2 * t)
        })
        .collect();
    let got = grads.get(&w).unwrap().data();
    assert!(
        got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12),
        "{got:?} {want:?}"
    );
}

#[test]
fn create_graph_through_a_first_order_rule_is_a_typed_error() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0]));
    let y = tape
        .record_first_order("mine", x.value().clone(), &[&x], |g, _| {
            Ok(InputGrads::from_iter([Some(g.clone())]))
        })
        .unwrap()
        .sum();
    let err = grad(&[&y], &[&x], &[], GradOptions::create_graph()).unwrap_err();
    assert!(
        matches!(err, Error::NotDifferentiable { op: "mine", .. }),
        "{err}"
    );
}

#[test]
fn recorded_and_fast_first_order_gradients_agree() {
    let tape = Tape::<f64>::new();
    let x = tape
        .leaf(Tensor::from_vec((0..12).map(|i| i as f64 * 0.1 - 0.5).collect(), &[3, 4]).unwrap());
    let w = tape.leaf(
        Tensor::from_vec((0..20).map(|i| (i as f64 * 0.37).sin()).collect(), &[5, 4]).unwrap(),
    );
    let loss = |x: &Var<f64>, w: &Var<f64>| {
        x.linear(w, None)
            .unwrap()
            .relu()
            .softmax(1)
            .unwrap()
            .log()
            .mean()
            .unwrap()
    };
    let fast = loss(&x, &w).backward().unwrap();
    let y = loss(&x, &w);
    let rec = grad(&[&y], &[&x, &w], &[], GradOptions::create_graph()).unwrap();
    for (var, r) in [(&x, &rec[0]), (&w, &rec[1])] {
        let f = fast.wrt(var).unwrap();
        for (a, b) in f.data().iter().zip(r.value().data()) {
            assert!((a - b).abs() <= 1e-14 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}

#[test]
fn second_order_flows_through_a_checkpoint() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![0.3, -0.8], &[2]).unwrap());
    let f = |v: &[Var<f64>]| Ok(v[0].tanh().square());
    let direct = f(std::slice::from_ref(&x)).unwrap().sum();
    let through = checkpoint(f, &[&x]).unwrap().sum();
    let d2 = |y: &Var<f64>| {
        let g = grad(&[y], &[&x], &[], GradOptions::create_graph()).unwrap();
        grad(&[&g[0].sum()], &[&x], &[], GradOptions::default()).unwrap()[0]
            .value()
            .clone()
    };
    let (a, b) = (d2(&direct), d2(&through));
    for (p, q) in a.data().iter().zip(b.data()) {
        assert!((p - q).abs() < 1e-14, "{a:?} vs {b:?}");
    }
}
