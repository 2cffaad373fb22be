//! A kernel that writes its output over a pooled buffer without zeroing it first must
//! write every element: outputs computed over buffers full of NaN equal, bit for bit,
//! the ones computed over fresh memory. Its own binary: the pool is global.

use chainrule_tensor::{pool, Conv2dParams, Tensor};

fn ramp(dims: &[usize], scale: f32) -> Tensor<f32> {
    let n: usize = dims.iter().product();
    let v = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
        .collect();
    Tensor::from_vec(v, dims).unwrap()
}

/// Every kind of output that may come from the pool unzeroed, each at least 16 KiB.
fn outputs() -> Vec<Tensor<f32>> {
    let (a, b) = (ramp(&[64, 96], 0.01), ramp(&[96, 128], 0.02));
    let (w, bias) = (ramp(&[80, 96], 0.03), ramp(&[80], 0.1));
    let x = ramp(&[2, 3, 20, 20], 0.05);
    let k = ramp(&[16, 3, 3, 3], 0.04);
    let empty_k = (
        Tensor::<f32>::zeros(&[2, 64, 0]).unwrap(),
        Tensor::<f32>::zeros(&[2, 0, 64]).unwrap(),
    );
    let p = Conv2dParams {
        padding: [1, 1],
        ..Conv2dParams::default()
    };
    vec![
        a.matmul(&b).unwrap(),
        ramp(&[3, 64, 96], 0.01).matmul(&b).unwrap(), // batched
        empty_k.0.matmul(&empty_k.1).unwrap(),        // sums of nothing: zeros
        a.linear(&w, None).unwrap(),
        a.linear(&w, Some(&bias)).unwrap(),
        x.conv2d(&k, None, p).unwrap(),
        x.conv2d(&k, Some(&ramp(&[16], 0.2)), p).unwrap(),
        a.map(|v| v * 3.0),
        a.zip_map(&a, |u, v| u - v * 0.5).unwrap(),
        a.zip3_map(&a, &a, |u, v, w| u * v + w).unwrap(),
        a.gelu(),
        ramp(&[8, 16, 64], 0.1).softmax(2).unwrap(), // last dim
        ramp(&[8, 64, 16], 0.1).softmax(1).unwrap(), // strided
        ramp(&[8, 16, 64], 0.1).log_softmax(2).unwrap(),
        ramp(&[8, 16, 64], 0.1).permute(&[2, 0, 1]).unwrap(),
    ]
}

#[test]
fn outputs_over_reused_buffers_match_outputs_over_fresh_ones() {
    pool::release();
    let fresh = outputs();
    assert!(fresh.iter().all(|t| t.numel() * 4 >= pool::MIN_BYTES));
    // a buffer of every output's size, full of NaN, into the pool (all alive at once,
    // so that outputs of one size each find one)
    let poison: Vec<_> = fresh
        .iter()
        .map(|t| Tensor::full(t.dims(), f32::NAN).unwrap())
        .collect();
    drop(poison);
    assert!(pool::held_bytes() > 0);
    let reused = outputs();
    let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (i, (f, r)) in fresh.iter().zip(&reused).enumerate() {
        assert_eq!(bits(f), bits(r), "output {i}");
    }
    assert!(fresh[2].data().iter().all(|&v| v == 0.0));
}
