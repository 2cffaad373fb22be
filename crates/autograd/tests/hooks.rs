//! Gradient hooks on values and parameters, and post-accumulate hooks.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use chainrule_autograd::{Error, Param, Tape, Tensor};

fn vec1(v: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

#[test]
fn a_value_hook_sees_the_summed_gradient_once_and_can_replace_it() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0, 2.0]));
    let h = x.mul_scalar(3.0);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    h.register_hook(move |g| {
        log.borrow_mut().push(g.data().to_vec());
        None
    })
    .unwrap();
    h.register_hook(|g| Some(g.scale(10.0))).unwrap();
    let y = (&h + &h).unwrap().sum(); // h used twice
    let g = y.backward().unwrap();
    assert_eq!(*seen.borrow(), vec![vec![2.0, 2.0]]);
    assert_eq!(g.wrt(&x).unwrap().data(), &[60.0, 60.0]); // 2 · 10 · 3
}

#[test]
fn a_hook_returning_the_wrong_shape_names_the_line_that_registered_it() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0, 2.0]));
    let h = x.exp();
    let line = line!() + 1;
    h.register_hook(|_| Some(Tensor::zeros(&[3]).unwrap()))
        .unwrap();
    let err = h.sum().backward().unwrap_err();
    assert!(matches!(err, Error::HookShape { op: "exp", .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("hooks.rs:{line}:")),
        "{err}"
    );
}

#[test]
fn a_hook_on_an_untracked_value_is_an_error() {
    let tape = Tape::<f64>::new();
    let c = tape.constant(vec1(&[1.0]));
    assert!(matches!(
        c.register_hook(|_| None),
        Err(Error::HookOnUntracked { .. })
    ));
}

#[test]
fn parameter_hooks_replace_and_post_accumulate_hooks_fire_once_final() {
    let (w1, w2) = (Param::new(vec1(&[0.5])), Param::new(vec1(&[2.0])));
    w1.register_hook(|g| Some(g.map(|v| v.clamp(-0.1, 0.1))));
    let order = Arc::new(Mutex::new(Vec::new()));
    for (name, w) in [("w1", &w1), ("w2", &w2)] {
        let log = Arc::clone(&order);
        w.register_post_accumulate_grad_hook(move |g| {
            log.lock().unwrap().push((name, g.data()[0]))
        });
    }
    let tape = Tape::<f64>::new();
    let x = tape.leaf(vec1(&[1.0]));
    let v1 = tape.param(&w1);
    let h = (&x * &v1).unwrap().tanh();
    let v2 = tape.param(&w2);
    let y = (&(&h * &v2).unwrap() * &v2).unwrap().sum(); // w2 used twice
    let g = y.backward().unwrap();
    let t = 0.5f64.tanh();
    // the last parameter brought in is final first; w1's gradient was clipped
    let log = order.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0], ("w2", 2.0 * 2.0 * t));
    assert_eq!(log[1], ("w1", 0.1));
    assert_eq!(g.get(&w1).unwrap().data(), &[0.1]);
}
