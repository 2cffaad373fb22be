//! The numeric kernels, one file per op family. Each adds methods to [`crate::Tensor`].

pub mod activation;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod index;
pub mod lstm_gates;
pub mod matmul;
pub mod movement;
pub mod normalize;
pub(crate) mod parallel;
pub mod pool;
pub mod reduce;
pub mod scan;
pub(crate) mod simd;
pub mod softmax;

pub use parallel::PARALLEL_THRESHOLD;

/// Calls `f(i, offsets)` for every element `i` of `dims` in row-major order, where
/// `offsets[s]` is `Σ index_d · strides[s][d]`. Broadcast operands use stride 0.
pub(crate) fn for_each_offset<const S: usize>(
    dims: &[usize],
    strides: [&[usize]; S],
    mut f: impl FnMut(usize, [usize; S]),
) {
    let nd = dims.len();
    let total: usize = dims.iter().product();
    if total == 0 {
        return;
    }
    if nd == 0 {
        f(0, [0; S]);
        return;
    }
    let last = dims[nd - 1];
    let last_strides: [usize; S] = std::array::from_fn(|s| strides[s][nd - 1]);
    let mut index = vec![0usize; nd];
    let mut base = [0usize; S];
    let mut i = 0;
    loop {
        let mut off = base;
        for _ in 0..last {
            f(i, off);
            i += 1;
            for s in 0..S {
                off[s] += last_strides[s];
            }
        }
        // Advance the odometer over the outer dims.
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for s in 0..S {
                base[s] += strides[s][d];
            }
            if index[d] < dims[d] {
                break;
            }
            for s in 0..S {
                base[s] -= strides[s][d] * dims[d];
            }
            index[d] = 0;
        }
    }
}

/// Strides of `shape` seen from a broadcast result of `ndim` dims: 0 where the operand
/// has extent 1 or is missing.
pub(crate) fn broadcast_strides(shape: &crate::Shape, ndim: usize) -> Vec<usize> {
    let own = shape.strides();
    let pad = ndim - shape.ndim();
    (0..ndim)
        .map(|d| {
            if d < pad || shape.dims()[d - pad] == 1 {
                0
            } else {
                own[d - pad]
            }
        })
        .collect()
}
