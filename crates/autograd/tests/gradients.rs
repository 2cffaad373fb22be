//! Gradients are editable per parameter, ordered by parameter creation, and flatten to
//! one vector and back.

use chainrule_autograd::{Param, Tape, Tensor};

#[test]
fn gradients_iterate_in_parameter_order_and_edit_safely() {
    let ps: Vec<Param<f64>> = (0..20)
        .map(|i| Param::new(Tensor::full(&[i % 3 + 1], i as f64).unwrap()))
        .collect();
    let tape = Tape::new();
    // use them in reverse order: the gradients still come out in creation order
    let mut loss = tape.param(&ps[19]).sum();
    for p in ps.iter().rev().skip(1) {
        loss = (&loss + &tape.param(p).square().sum()).unwrap();
    }
    let mut grads = loss.backward().unwrap();
    let ids: Vec<_> = grads.params().map(|(id, _)| id).collect();
    let want: Vec<_> = ps.iter().map(|p| p.id()).collect();
    assert_eq!(ids, want);
    // a wrong shape is refused and changes nothing
    assert!(grads.insert(&ps[0], Tensor::zeros(&[5]).unwrap()).is_err());
    assert_eq!(grads.get(&ps[0]).unwrap().data(), &[0.0]);
    let old = grads
        .insert(&ps[1], Tensor::full(&[2], 7.0).unwrap())
        .unwrap();
    assert_eq!(old.unwrap().data(), &[2.0, 2.0]);
    assert!(grads.remove(&ps[2]).is_some() && grads.get(&ps[2]).is_none());
    // flatten / unflatten round trip, a removed gradient reads as zeros
    let flat = grads.flatten(&ps).unwrap();
    assert_eq!(flat.numel(), ps.iter().map(|p| p.numel()).sum::<usize>());
    assert_eq!(&flat.data()[1..3], &[7.0, 7.0]);
    assert_eq!(&flat.data()[3..6], &[0.0; 3]);
    grads.unflatten(&ps, &flat.scale(2.0)).unwrap();
    assert_eq!(grads.get(&ps[1]).unwrap().data(), &[14.0, 14.0]);
    assert!(grads.unflatten(&ps, &Tensor::zeros(&[3]).unwrap()).is_err());
}
