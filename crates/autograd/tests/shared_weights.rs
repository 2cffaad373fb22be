//! "If the same module is used three times in one iteration, does its gradient need
//! special processing? Will backward() work correctly?" — No special processing: the
//! gradient of a weight used three times is the sum of the three uses' gradients.

use chainrule_autograd::{grad, GradOptions, Param, Tape, Tensor};

/// A linear block's weight and bias.
type Block = (Param<f64>, Param<f64>);

fn rand(dims: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = dims.iter().product();
    let data = (0..n)
        .map(|i| (((i as u64 + 1) * 2654435761 + seed * 97) % 1000) as f64 / 1000.0 - 0.5)
        .collect();
    Tensor::from_vec(data, dims).unwrap()
}

#[test]
fn weight_used_three_times_gets_the_sum_of_three_copies_gradients() {
    let (w0, b0, x) = (rand(&[4, 4], 1), rand(&[4], 2), rand(&[3, 4], 3));

    // One block used three times: tanh(L(tanh(L(tanh(L(x)))))).
    let (w, b) = (Param::new(w0.clone()), Param::new(b0.clone()));
    let tape = Tape::new();
    let mut h = tape.constant(x.clone());
    for _ in 0..3 {
        h = h
            .linear(&tape.param(&w), Some(&tape.param(&b)))
            .unwrap()
            .tanh();
    }
    let shared = h.sum().backward().unwrap();

    // Three separate, identically initialised copies in the same chain.
    let copies: Vec<Block> = (0..3)
        .map(|_| (Param::new(w0.clone()), Param::new(b0.clone())))
        .collect();
    let tape = Tape::new();
    let mut h = tape.constant(x);
    for (w, b) in &copies {
        h = h
            .linear(&tape.param(w), Some(&tape.param(b)))
            .unwrap()
            .tanh();
    }
    let separate = h.sum().backward().unwrap();

    // The backward pass meets the uses last-first, so it adds them in that order.
    let sum_of = |pick: fn(&Block) -> &Param<f64>| {
        let mut acc = separate.get(pick(&copies[2])).unwrap().clone();
        acc.add_assign(separate.get(pick(&copies[1])).unwrap())
            .unwrap();
        acc.add_assign(separate.get(pick(&copies[0])).unwrap())
            .unwrap();
        acc
    };
    assert_eq!(
        shared.get(&w).unwrap(),
        &sum_of(|c| &c.0),
        "weight gradient differs from the sum of the copies'"
    );
    assert_eq!(
        shared.get(&b).unwrap(),
        &sum_of(|c| &c.1),
        "bias gradient differs from the sum of the copies'"
    );
    // and each copy's contribution is non-trivial, so the sum is a real check
    assert!(copies.iter().all(|c| separate
        .get(&c.0)
        .unwrap()
        .data()
        .iter()
        .any(|v| v.abs() > 1e-6)));
}

#[test]
fn gradients_accumulate_across_backward_calls_only_when_asked() {
    let w = Param::new(Tensor::<f64>::from_vec(vec![2.0], &[1]).unwrap());
    let step = || {
        let tape = Tape::new();
        let wv = tape.param(&w);
        (&wv * &wv).unwrap().sum().backward().unwrap()
    };
    let first = step();
    let second = step();
    assert_eq!(
        second.get(&w).unwrap().data(),
        &[4.0],
        "a new backward starts from zero"
    );
    let mut acc = first;
    acc.accumulate(second).unwrap();
    assert_eq!(acc.get(&w).unwrap().data(), &[8.0]);
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let w = Param::new(Tensor::<f64>::from_vec(vec![3.0], &[1]).unwrap());
    let tape = Tape::new();
    {
        let _off = tape.no_grad();
        let y = tape.param(&w).exp();
        assert!(!y.is_tracked());
    }
    assert_eq!(tape.len(), 0);
    let wv = tape.param(&w);
    let y = (&wv * &wv.detach()).unwrap().sum();
    assert_eq!(y.backward().unwrap().get(&w).unwrap().data(), &[3.0]);
}

#[test]
fn the_gradient_of_an_intermediate_is_available_on_request() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let h = x.mul_scalar(3.0);
    h.retain_grad();
    let g = h.square().sum().backward().unwrap();
    assert_eq!(g.wrt(&h).unwrap().data(), &[6.0, 12.0]);
    assert_eq!(g.wrt(&x).unwrap().data(), &[18.0, 36.0]);
}

/// Slices of one value (`split`, `narrow`) add their gradients into its regions in
/// place on the fast pass; the sum must equal the rule's zero-padded contributions, as
/// a recorded pass (which runs the rule) computes them.
#[test]
fn slices_of_one_value_sum_their_gradients() {
    let x0 = rand(&[6, 4], 4);
    let weights = [rand(&[2, 4], 5), rand(&[2, 4], 6), rand(&[2, 4], 7)];
    let grad = |create_graph: bool| {
        let tape = Tape::new();
        let x = tape.leaf(x0.clone());
        let pieces = x.split(2, 0).unwrap();
        // the middle rows twice more through a narrow of a narrow, and x whole once
        let mut loss = x.sum();
        for (p, w) in pieces.iter().zip(&weights) {
            loss = loss
                .add(&p.mul(&tape.constant(w.clone())).unwrap().sum())
                .unwrap();
        }
        let mid = x.narrow(0, 1, 4).unwrap().narrow(0, 1, 2).unwrap();
        loss = loss.add(&mid.add(&mid).unwrap().sum()).unwrap();
        let options = if create_graph {
            GradOptions::create_graph()
        } else {
            GradOptions::default()
        };
        grad(&[&loss], &[&x], &[], options).unwrap()[0]
            .value()
            .clone()
    };
    let (fast, recorded) = (grad(false), grad(true));
    assert_eq!(fast, recorded);
    // by hand: 1 + the piece's weight + 2 on rows 2 and 3
    for r in 0..6 {
        for c in 0..4 {
            let want = 1.0
                + weights[r / 2].data()[(r % 2) * 4 + c]
                + if r == 2 || r == 3 { 2.0 } else { 0.0 };
            assert_eq!(fast.data()[r * 4 + c], want, "row {r}, column {c}");
        }
    }
}
