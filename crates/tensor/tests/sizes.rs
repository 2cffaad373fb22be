//! Sizes are checked once, at the source: overflowing shapes and attributes are typed
//! errors, impossible allocations are `OutOfMemory`, and out-of-range dims are errors —
//! in release builds, where wrapping arithmetic used to reach the GEMM's raw pointers.

use chainrule_tensor::{
    AvgPool2dParams, Conv2dParams, MaxPool2dParams, Shape, Tensor, TensorError,
};

fn is_too_large<T>(r: Result<T, TensorError>) -> bool {
    matches!(r, Err(TensorError::TooLarge { .. }))
}

fn is_oom<T>(r: Result<T, TensorError>) -> bool {
    matches!(r, Err(TensorError::OutOfMemory { .. }))
}

#[test]
fn shapes_whose_element_count_overflows_are_rejected() {
    assert!(is_too_large(Tensor::<f32>::zeros(&[(1 << 63) + 1, 2])));
    assert!(is_too_large(Tensor::<f32>::from_vec(vec![], &[1 << 63, 2])));
    // a zero dim does not hide the overflow of the others
    assert!(is_too_large(Tensor::<f32>::from_vec(
        vec![],
        &[0, 1 << 62, 1 << 4]
    )));
    assert!(is_too_large(Shape::new(&[1 << 32, 1 << 32])));
    assert!(is_too_large(Shape::new(&[usize::MAX])));
    // the bound is the byte size of the widest element
    assert!(Shape::new(&[Shape::MAX_NUMEL]).is_ok());
    assert!(is_too_large(Shape::new(&[Shape::MAX_NUMEL + 1])));
    // an empty tensor of a describable shape is fine, and sums to zero
    let e = Tensor::<f32>::from_vec(vec![], &[0, 1 << 20, 3]).unwrap();
    assert_eq!(e.sum_dims(&[0], false).unwrap().dims(), &[1 << 20, 3]);
}

#[test]
fn a_matmul_on_a_wrapped_shape_cannot_happen() {
    // Once accepted with 2 elements, this matmul wrote past its buffer (SIGSEGV).
    let a = Tensor::<f32>::zeros(&[(1 << 63) + 1, 2]);
    assert!(a.is_err());
    let b = Tensor::<f32>::ones(&[2, 2]).unwrap();
    assert_eq!(b.matmul(&b).unwrap().data(), &[2.0; 4]);
}

#[test]
fn impossible_allocations_are_out_of_memory_errors() {
    // 128 GiB and 1 TiB of f32, far beyond this machine: an error, not an abort.
    assert!(is_oom(Tensor::<f32>::zeros(&[1 << 35])));
    assert!(is_oom(Tensor::<f64>::full(&[1 << 37], 1.0)));
    let one = Tensor::<f32>::ones(&[1, 1, 1, 1]).unwrap();
    // padding 100000 makes a 200001 × 200001 output (160 GB)
    let p = Conv2dParams {
        padding: [100_000, 100_000],
        ..Default::default()
    };
    assert!(is_oom(one.conv2d(&one, None, p)));
    let small = Tensor::<f32>::ones(&[2, 3]).unwrap();
    assert!(is_oom(small.broadcast_to(&[1_000_000, 1_000_000, 2, 3])));
    let col = Tensor::<f32>::ones(&[1 << 18, 1]).unwrap();
    let row = Tensor::<f32>::ones(&[1, 1 << 18]).unwrap();
    assert!(is_oom(col.matmul(&row)));
    match Tensor::<f32>::zeros(&[1 << 35]) {
        Err(e) => assert!(e.to_string().contains("137438953472 bytes"), "{e}"),
        Ok(_) => unreachable!(),
    }
}

#[test]
fn overflowing_conv_and_pool_attributes_are_errors() {
    let x = Tensor::<f32>::ones(&[1, 1, 3, 3]).unwrap();
    let w = Tensor::<f32>::ones(&[1, 1, 1, 1]).unwrap();
    let huge = 1usize << 63;
    for p in [
        Conv2dParams {
            padding: [huge, huge],
            ..Default::default()
        },
        Conv2dParams {
            padding: [usize::MAX / 2, 0],
            ..Default::default()
        },
    ] {
        let e = x.conv2d(&w, None, p).unwrap_err();
        assert!(
            matches!(
                e,
                TensorError::Attr {
                    attr: "padding",
                    ..
                }
            ),
            "{e}"
        );
    }
    let w3 = Tensor::<f32>::ones(&[1, 1, 3, 1]).unwrap();
    let dilated = Conv2dParams {
        dilation: [huge, 1],
        ..Default::default()
    };
    let e = x.conv2d(&w3, None, dilated).unwrap_err();
    assert!(
        matches!(
            e,
            TensorError::Attr {
                attr: "dilation",
                ..
            }
        ),
        "{e}"
    );
    let e = x.conv2d_backward(&w3, &x, dilated, [true; 3]).unwrap_err();
    assert!(
        matches!(
            e,
            TensorError::Attr {
                attr: "dilation",
                ..
            }
        ),
        "{e}"
    );
    let mut mp = MaxPool2dParams::new([2, 2]);
    mp.dilation = [huge, huge];
    assert!(x.max_pool2d(mp).is_err());
    let mut mp = MaxPool2dParams::new([usize::MAX, 2]);
    mp.padding = [usize::MAX / 2, 0];
    assert!(x.max_pool2d(mp).is_err());
    let mut ap = AvgPool2dParams::new([usize::MAX, 2]);
    ap.padding = [usize::MAX / 2, 0];
    assert!(x.avg_pool2d(ap).is_err());
    assert!(x.adaptive_avg_pool2d([usize::MAX, 1]).is_err());
    // a 2^50-window table is refused before it is built
    assert!(is_oom(x.adaptive_avg_pool2d([1 << 40, 1 << 10])));
}

#[test]
fn resolved_dims_out_of_range_are_errors_not_panics() {
    let t = Tensor::<f32>::ones(&[2, 3]).unwrap();
    let dim_err =
        |r: Result<Tensor<f32>, TensorError>| matches!(r, Err(TensorError::DimOutOfRange { .. }));
    assert!(dim_err(t.softmax(5)));
    assert!(dim_err(t.log_softmax(2)));
    assert!(dim_err(t.narrow(5, 0, 1)));
    assert!(t.max_dim(4, false).is_err());
    assert!(dim_err(t.logsumexp_dim(4, false)));
    // once silently a no-op
    assert!(dim_err(t.sum_dims(&[7], false)));
    assert!(t.sum_dims(&[1, 1], false).is_err());
    assert!(t.mean_dims(&[9], false).is_err());
    assert!(t.transpose(0, 9).is_err());
    let full = Shape::new(&[2, 3]).unwrap();
    assert!(t.unnarrow(&full, 7, 0).is_err());
    assert!(t.narrow(1, usize::MAX, 2).is_err());
    let g = Tensor::<f32>::ones(&[2, 3]).unwrap();
    assert!(g
        .max_pool2d_backward(&Shape::new(&[2, 3, 1, 1]).unwrap(), &[0; 6])
        .is_err());
}

#[test]
fn concat_and_reshape_sizes_are_checked() {
    let a = Tensor::<f32>::from_vec(vec![], &[0, 1 << 58]).unwrap();
    let b = Tensor::<f32>::from_vec(vec![], &[0, 1 << 58]).unwrap();
    // the joined extent 2^59 passes; 2^60 is past the bound (2^60 − 1)
    assert!(Tensor::concat(&[&a, &b], 1).is_ok());
    assert!(Tensor::concat(&[&a, &b, &a, &b], 1).is_err());
    let t = Tensor::<f32>::ones(&[4]).unwrap();
    assert!(t.reshape(&[isize::MAX, isize::MAX, 0]).is_err());
    // PyTorch: reshaping an empty tensor with -1 is ambiguous
    let e = Tensor::<f32>::from_vec(vec![], &[0, 3, 12, 12]).unwrap();
    assert!(e.reshape(&[0, -1]).is_err());
    assert_eq!(e.reshape(&[0, 432]).unwrap().dims(), &[0, 432]);
}

#[test]
fn zero_size_products_and_linear_layers_have_pytorchs_shapes() {
    let x = Tensor::<f32>::from_vec(vec![], &[5, 0]).unwrap();
    let w = Tensor::<f32>::from_vec(vec![], &[3, 0]).unwrap();
    let b = Tensor::<f32>::ones(&[3]).unwrap();
    // no input features: the output is the bias
    let y = x.linear(&w, Some(&b)).unwrap();
    assert_eq!((y.dims(), y.data()), (&[5, 3][..], &[1.0; 15][..]));
    let empty = Tensor::<f32>::from_vec(vec![], &[0, 4]).unwrap();
    let m = Tensor::<f32>::ones(&[4, 2]).unwrap();
    assert_eq!(empty.matmul(&m).unwrap().dims(), &[0, 2]);
}

/// Found by the fuzz harness: empty tensors whose other dims are huge made kernels
/// loop over the huge dims (hangs), and groups larger than two zero channel counts
/// made conv loop over 2^62 empty groups.
#[test]
fn empty_tensors_with_huge_dims_do_no_work() {
    let e = |dims: &[usize]| Tensor::<f32>::from_vec(vec![], dims).unwrap();
    assert_eq!(e(&[1 << 59, 0]).softmax(0).unwrap().dims(), &[1 << 59, 0]);
    assert_eq!(
        e(&[1 << 40, 0]).narrow(1, 0, 0).unwrap().dims(),
        &[1 << 40, 0]
    );
    let a = e(&[1 << 40, 0]);
    assert_eq!(Tensor::concat(&[&a, &a], 1).unwrap().dims(), &[1 << 40, 0]);
    assert_eq!(
        e(&[1 << 40, 3, 0]).logsumexp_dim(1, false).unwrap().dims(),
        &[1 << 40, 0]
    );
    let mut p = MaxPool2dParams::new([1, 1]);
    p.stride = [1, 1];
    assert_eq!(
        e(&[0, 1, 1 << 35, 1]).max_pool2d(p).unwrap().0.dims(),
        &[0, 1, 1 << 35, 1]
    );
    assert_eq!(
        e(&[0, 1, 1 << 30, 1 << 20])
            .avg_pool2d(AvgPool2dParams::new([1, 1]))
            .unwrap()
            .dims(),
        &[0, 1, 1 << 30, 1 << 20]
    );
    let x = e(&[2, 0, 3, 3]);
    let w = e(&[0, 0, 1, 1]);
    let groups = Conv2dParams {
        groups: 1 << 62,
        ..Default::default()
    };
    assert!(x.conv2d(&w, None, groups).is_err());
    let x = e(&[1 << 35, 0, 3, 3]);
    let w = Tensor::<f32>::from_vec(vec![], &[2, 0, 1, 1]).unwrap();
    let g = Tensor::<f32>::from_vec(vec![], &[0, 2, 3, 3]).unwrap();
    let ok = e(&[0, 0, 3, 3]);
    let (dx, dw, db) = ok
        .conv2d_backward(&w, &g, Conv2dParams::default(), [true; 3])
        .unwrap();
    assert_eq!((dx.unwrap().numel(), dw.unwrap().numel()), (0, 0));
    assert_eq!(db.unwrap().data(), &[0.0, 0.0]);
    // summing away an empty dim leaves 2^40 real zeros: refused (this aborted)
    assert!(is_oom(e(&[1 << 40, 0]).sum_dims(&[1], false)));
    assert!(is_oom(e(&[1 << 40, 0]).mean_dims(&[1], false)));
    assert!(is_oom(
        e(&[1 << 40, 0]).sum_to(&Shape::new(&[1 << 40, 1]).unwrap())
    ));
    // batched products of empty operands whose batch is huge: the output is refused
    // before the per-batch offset table is built (that allocation aborted)
    let a = e(&[5, 5, 1 << 35, 1, 0]);
    let b = e(&[0, 1]);
    assert!(is_oom(a.matmul(&b)));
    // a real output of 6·10^11 elements: refused, not attempted
    assert!(is_oom(x.conv2d(&w, None, Conv2dParams::default())));
}
