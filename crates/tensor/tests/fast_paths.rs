//! The kernels' contiguous fast paths (bias broadcasts, row and whole sums, last-dim
//! softmax) against the general strided paths they stand in for.

use chainrule_tensor::Tensor;

fn rand(dims: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = dims.iter().product();
    let data = (0..n)
        .map(|i| (((i as u64 + 1) * 2654435761 + seed * 97) % 1000) as f64 / 100.0 - 5.0)
        .collect();
    Tensor::from_vec(data, dims).unwrap()
}

#[test]
fn bias_broadcasts_equal_the_explicit_broadcast() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[4, 3], &[3]),
        (&[2, 3, 4], &[3, 4]),
        (&[2, 3, 4], &[1, 4]),
        (&[5], &[2, 5]),
        (&[3, 1], &[2, 3, 1]),
    ];
    for (i, (a, b)) in cases.into_iter().enumerate() {
        let (a, b) = (rand(a, i as u64), rand(b, 10 + i as u64));
        let fast = a.broadcast_zip(&b, |x, y| x * 2.0 - y).unwrap();
        let dims = fast.dims().to_vec();
        let (a, b) = (
            a.broadcast_to(&dims).unwrap(),
            b.broadcast_to(&dims).unwrap(),
        );
        assert_eq!(fast, a.zip_map(&b, |x, y| x * 2.0 - y).unwrap(), "case {i}");
    }
}

#[test]
fn row_and_whole_sums_equal_an_f64_loop() {
    let x = rand(&[7, 5, 3], 1);
    let at = |i: usize, j: usize, k: usize| x.data()[(i * 5 + j) * 3 + k];
    // leading dims away (a bias gradient): the sequential order, so equal bits
    let rows = x.sum_dims(&[0, 1], false).unwrap();
    for k in 0..3 {
        let mut want = 0.0;
        for i in 0..7 {
            for j in 0..5 {
                want += at(i, j, k);
            }
        }
        assert_eq!(rows.data()[k], want);
    }
    // trailing dims away and the whole sum: eight lanes, so equal to rounding
    let per_row = x.sum_dims(&[1, 2], false).unwrap();
    for i in 0..7 {
        let want: f64 = (0..15).map(|r| x.data()[i * 15 + r]).sum();
        assert!((per_row.data()[i] - want).abs() < 1e-12, "row {i}");
    }
    let whole = x.sum_dims(&[0, 1, 2], false).unwrap().data()[0];
    assert!((whole - x.data().iter().sum::<f64>()).abs() < 1e-11);
    // a middle dim goes the general way
    let mid = x.sum_dims(&[1], false).unwrap();
    assert!((mid.data()[0] - (0..5).map(|j| at(0, j, 0)).sum::<f64>()).abs() < 1e-12);
}

#[test]
fn last_dim_softmax_equals_the_strided_one() {
    let x = rand(&[6, 37], 2);
    for log in [false, true] {
        let along = |t: &Tensor<f64>, dim| {
            if log {
                t.log_softmax(dim)
            } else {
                t.softmax(dim)
            }
        };
        let fast = along(&x, 1).unwrap();
        let strided = along(&x.transpose(0, 1).unwrap(), 0)
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        for (a, b) in fast.data().iter().zip(strided.data()) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b} (log {log})");
        }
    }
    // NaN and infinities as PyTorch: a NaN row is NaN, −inf entries get 0
    let special = Tensor::from_vec(vec![f64::NAN, 1.0, f64::NEG_INFINITY, 0.0], &[2, 2]).unwrap();
    let s = special.softmax(1).unwrap();
    assert!(s.data()[0].is_nan() && s.data()[1].is_nan());
    assert_eq!(&s.data()[2..], &[0.0, 1.0]);
}
