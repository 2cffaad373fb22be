//! Every error path: a typed error naming the op, the shapes or attribute at fault and
//! the caller's source line; never a panic, never a wrong answer.

use chainrule_autograd::{
    AvgPool2dParams, Conv2dParams, Error, InputGrads, MaxPool2dParams, Reduction, Tape, Tensor,
    TensorError, Var,
};

fn tape() -> Tape<f64> {
    Tape::new()
}

fn leaf(t: &Tape<f64>, dims: &[usize]) -> Var<f64> {
    t.leaf(Tensor::ones(dims).unwrap())
}

/// The line number after `errors.rs:` in a message.
fn line_of(msg: &str) -> u32 {
    let at = msg.find("errors.rs:").expect("message names this file") + "errors.rs:".len();
    msg[at..].split(':').next().unwrap().parse().unwrap()
}

/// Asserts an op error names `op`, points at one of `lines` of this file, and mentions `needle`.
#[track_caller]
fn expect_op_error<V: std::fmt::Debug>(
    r: chainrule_autograd::Result<V>,
    op: &str,
    lines: std::ops::RangeInclusive<u32>,
    needle: &str,
) -> TensorError {
    let err = r.expect_err("expected an error");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{op} at ")), "{msg}");
    assert!(
        lines.contains(&line_of(&msg)),
        "line not in {lines:?}: {msg}"
    );
    assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    match err {
        Error::Op { source, .. } => source,
        other => panic!("unexpected variant {other:?}"),
    }
}

#[test]
fn shape_mismatch_in_broadcasting_names_both_shapes() {
    let t = tape();
    let (a, b) = (leaf(&t, &[2, 3]), leaf(&t, &[4]));
    let first = line!();
    let r = &a + &b;
    let line = first..=line!();
    let e = expect_op_error(r, "add", line, "[2, 3] and [4]");
    assert!(matches!(e, TensorError::Shape(_)));
    let first = line!();
    let r = a.maximum(&b);
    let line = first..=line!();
    expect_op_error(r, "maximum", line, "do not broadcast");
}

#[test]
fn out_of_range_dims_are_rejected() {
    let t = tape();
    let x = leaf(&t, &[2, 3]);
    let first = line!();
    let r = x.sum_dims(&[2], false);
    let line = first..=line!();
    let e = expect_op_error(r, "sum", line, "dim 2");
    assert!(matches!(
        e,
        TensorError::DimOutOfRange {
            dim: 2,
            ndim: 2,
            ..
        }
    ));
    let first = line!();
    let r = x.softmax(-3);
    let line = first..=line!();
    expect_op_error(r, "softmax", line, "dim -3");
    let first = line!();
    let r = x.transpose(0, 5);
    let line = first..=line!();
    expect_op_error(r, "transpose", line, "dim 5");
    let first = line!();
    let r = x.max(9, true);
    let line = first..=line!();
    expect_op_error(r, "max", line, "dim 9");
    let first = line!();
    let r = x.sum_dims(&[0, -2], false);
    let line = first..=line!();
    expect_op_error(r, "sum", line, "twice");
    let first = line!();
    let r = x.permute(&[0, 0]);
    let line = first..=line!();
    expect_op_error(r, "permute", line, "not a permutation");
}

#[test]
fn conv2d_rejects_bad_attributes_and_shapes() {
    let t = tape();
    let x = leaf(&t, &[1, 3, 8, 8]);
    let w = leaf(&t, &[4, 1, 3, 3]);
    let d = Conv2dParams::default();
    let first = line!();
    let r = x.conv2d(
        &w,
        None,
        Conv2dParams {
            stride: [0, 1],
            ..d
        },
    );
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "invalid stride");
    let first = line!();
    let r = x.conv2d(
        &w,
        None,
        Conv2dParams {
            dilation: [1, 0],
            ..d
        },
    );
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "invalid dilation");
    let first = line!();
    let r = x.conv2d(&w, None, Conv2dParams { groups: 2, ..d });
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "invalid groups");
    let first = line!();
    let r = x.conv2d(&w, None, d);
    let line = first..=line!();
    expect_op_error(
        r,
        "conv2d",
        line,
        "input has 3 channels but weight expects 1",
    );
    let big = leaf(&t, &[4, 3, 11, 3]);
    let first = line!();
    let r = x.conv2d(&big, None, d);
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "does not fit the padded input");
    let ok_w = leaf(&t, &[4, 3, 3, 3]);
    let bad_b = leaf(&t, &[3]);
    let first = line!();
    let r = x.conv2d(&ok_w, Some(&bad_b), d);
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "bias [3]");
    let flat = leaf(&t, &[3, 8, 8]);
    let first = line!();
    let r = flat.conv2d(&ok_w, None, d);
    let line = first..=line!();
    expect_op_error(r, "conv2d", line, "4-D");
}

#[test]
fn pooling_rejects_bad_attributes() {
    let t = tape();
    let x = leaf(&t, &[1, 1, 4, 4]);
    let first = line!();
    let r = x.max_pool2d(MaxPool2dParams {
        stride: [0, 0],
        ..MaxPool2dParams::new([2, 2])
    });
    let line = first..=line!();
    expect_op_error(r, "max_pool2d", line, "invalid stride");
    let first = line!();
    let r = x.max_pool2d(MaxPool2dParams::new([5, 5]));
    let line = first..=line!();
    expect_op_error(r, "max_pool2d", line, "larger than the padded input");
    let first = line!();
    let r = x.avg_pool2d(AvgPool2dParams {
        padding: [2, 2],
        ..AvgPool2dParams::new([3, 3])
    });
    let line = first..=line!();
    expect_op_error(r, "avg_pool2d", line, "half the kernel");
    let first = line!();
    let r = x.adaptive_avg_pool2d([0, 1]);
    let line = first..=line!();
    expect_op_error(r, "adaptive_avg_pool2d", line, "output_size");
}

#[test]
fn labels_outside_the_classes_are_rejected() {
    let t = tape();
    let x = leaf(&t, &[2, 3]);
    let first = line!();
    let r = x.cross_entropy(&[0, 3], Reduction::Mean);
    let line = first..=line!();
    let e = expect_op_error(
        r,
        "cross_entropy",
        line,
        "label 3 at index 1 is outside 0..3",
    );
    assert_eq!(
        e,
        TensorError::LabelOutOfRange {
            label: 3,
            index: 1,
            classes: 3
        }
    );
    let first = line!();
    let r = x.nll_loss(&[0], Reduction::Sum);
    let line = first..=line!();
    expect_op_error(r, "nll_loss", line, "1 labels");
}

#[test]
fn empty_reductions_follow_pytorch() {
    let t = tape();
    let x = leaf(&t, &[2, 0]);
    // max over nothing has no value: an error, as in PyTorch
    let first = line!();
    let r = x.max(1, false);
    let line = first..=line!();
    let e = expect_op_error(r, "max", line, "zero elements");
    assert!(matches!(e, TensorError::EmptyReduction { .. }));
    // a mean over nothing is NaN, a logsumexp -inf, an empty sum 0 (PyTorch's values)
    let m = x.mean_dims(&[1], false).unwrap();
    assert!(m.value().data().iter().all(|v| v.is_nan()));
    let l = x.logsumexp(-1, false).unwrap();
    assert_eq!(l.value().data(), &[f64::NEG_INFINITY; 2]);
    let none = leaf(&t, &[0, 3]);
    let ce = none.cross_entropy(&[], Reduction::Mean).unwrap();
    assert!(ce.value().item().unwrap().is_nan());
    assert_eq!(x.sum_dims(&[1], false).unwrap().value().data(), &[0.0, 0.0]);
}

#[test]
fn matmul_and_linear_reject_mismatched_shapes() {
    let t = tape();
    let (a, b) = (leaf(&t, &[2, 3]), leaf(&t, &[4, 5]));
    let first = line!();
    let r = a.matmul(&b);
    let line = first..=line!();
    expect_op_error(r, "matmul", line, "[2, 3] by [4, 5]");
    let first = line!();
    let r = a.linear(&b, None);
    let line = first..=line!();
    expect_op_error(r, "linear", line, "weight [4, 5]");
    let s = t.leaf(Tensor::scalar(1.0));
    let first = line!();
    let r = s.matmul(&a);
    let line = first..=line!();
    expect_op_error(r, "matmul", line, "1-D");
}

#[test]
fn movement_ops_reject_bad_arguments() {
    let t = tape();
    let x = leaf(&t, &[2, 3]);
    let first = line!();
    let r = x.reshape(&[4, -1]);
    let line = first..=line!();
    expect_op_error(r, "reshape", line, "cannot reshape [2, 3]");
    let first = line!();
    let r = x.reshape(&[-1, -1]);
    let line = first..=line!();
    expect_op_error(r, "reshape", line, "more than one -1");
    let first = line!();
    let r = x.broadcast_to(&[3, 3]);
    let line = first..=line!();
    expect_op_error(r, "broadcast_to", line, "[2, 3]");
    let first = line!();
    let r = x.narrow(1, 2, 2);
    let line = first..=line!();
    expect_op_error(r, "narrow", line, "exceeds dim 1");
    let y = leaf(&t, &[3, 3]);
    let first = line!();
    let r = Var::concat(&[&x, &y], 1);
    let line = first..=line!();
    expect_op_error(r, "concat", line, "differ off dim 1");
    let first = line!();
    let r = Var::<f64>::concat(&[], 0);
    let line = first..=line!();
    expect_op_error(r, "concat", line, "at least one");
    let first = line!();
    let r = x.mse_loss(&y, Reduction::Mean);
    let line = first..=line!();
    expect_op_error(r, "mse_loss", line, "differ");
}

#[test]
fn mixing_tapes_is_an_error() {
    let (t1, t2) = (tape(), tape());
    let (a, b) = (leaf(&t1, &[2]), leaf(&t2, &[2]));
    let err = (&a + &b).unwrap_err();
    assert!(
        matches!(err, Error::TapeMismatch { op: "add", .. }),
        "{err}"
    );
}

#[test]
fn backward_needs_a_tracked_scalar() {
    let t = tape();
    let x = leaf(&t, &[2]);
    let y = x.exp();
    let first = line!();
    let r = y.backward();
    let line = first..=line!();
    let msg = r.unwrap_err().to_string();
    assert!(
        line.contains(&line_of(&msg)) && msg.contains("one element, got shape [2]"),
        "{msg}"
    );
    let c = t.constant(Tensor::ones(&[1]).unwrap()).exp();
    assert!(c
        .backward()
        .unwrap_err()
        .to_string()
        .contains("does not depend"));
    assert!(y
        .backward_with(&Tensor::ones(&[3]).unwrap())
        .unwrap_err()
        .to_string()
        .contains("differs"));
}

#[test]
fn an_error_raised_during_backward_points_at_the_recording_line() {
    let t = tape();
    let x = leaf(&t, &[2]);
    // A custom op whose rule returns a gradient of the wrong shape.
    let bad_rule = |_: &Tensor<f64>, _: &[bool]| {
        Ok(InputGrads::from_iter([Some(Tensor::ones(&[5]).unwrap())]))
    };
    let first = line!();
    let y = t
        .record_first_order("broken", x.value().clone(), &[&x], bad_rule)
        .unwrap();
    let line = first..=line!();
    let err = y.sum().backward().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Backward { op: "broken", .. }), "{msg}");
    assert!(line.contains(&line_of(&msg)), "{msg}");
    // A rule returning the wrong number of gradients is caught too.
    let short = |_: &Tensor<f64>, _: &[bool]| Ok(InputGrads::new());
    let z = t
        .record_first_order("short", x.value().clone(), &[&x], short)
        .unwrap();
    assert!(z
        .sum()
        .backward()
        .unwrap_err()
        .to_string()
        .contains("returned 0 gradients for 1 inputs"));
}

#[test]
fn tensor_construction_checks_the_data_length() {
    let e = Tensor::<f32>::from_vec(vec![1.0; 5], &[2, 3]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "data has 5 elements but shape [2, 3] needs 6"
    );
}

#[test]
fn a_narrow_range_that_overflows_is_an_error_not_a_panic() {
    let t = tape();
    let x = leaf(&t, &[4]);
    let first = line!();
    let r = x.narrow(0, usize::MAX, 2);
    let line = first..=line!();
    expect_op_error(r, "narrow", line, "exceeds dim 0");
}

#[test]
fn a_second_backward_through_the_same_records_is_an_error() {
    let t = tape();
    let x = leaf(&t, &[3]);
    let y = x.exp().sum();
    assert!(y.backward().is_ok());
    let err = y.backward().unwrap_err();
    assert!(matches!(err, Error::GraphFreed { op: "sum", .. }), "{err}");
    assert!(err.to_string().contains("record the forward pass again"));
    // a new forward on the same tape, over the same leaf, works
    let z = x.square().sum();
    assert_eq!(
        z.backward().unwrap().wrt(&x).unwrap().data(),
        &[2.0, 2.0, 2.0]
    );
}
