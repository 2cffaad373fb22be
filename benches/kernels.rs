//! Criterion timings of the kernels behind the workloads, one group per op family
//! (matmul, conv, pool, softmax_ce, elementwise, normalize, special), so a kernel
//! change shows its effect
//! without a training run.
//!
//! `cargo bench --bench kernels`

use chainrule::tensor::{Conv2dParams, MaxPool2dParams, Tensor};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn rand(dims: &[usize]) -> Tensor<f32> {
    let mut rng = StdRng::seed_from_u64(0);
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(), dims).unwrap()
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    g.sample_size(20);
    for (m, k, n) in [
        (1024, 1024, 1024),
        (128, 784, 512),
        (64, 9216, 128),
        (64, 432, 10),
        (3, 25, 576),
    ] {
        let (a, b) = (rand(&[m, k]), rand(&[k, n]));
        g.bench_function(format!("{m}x{k}x{n}"), |bch| {
            bch.iter(|| black_box(a.matmul(&b).unwrap()))
        });
        let bt = rand(&[n, k]);
        g.bench_function(format!("{m}x{k}x{n}_bT"), |bch| {
            bch.iter(|| black_box(a.matmul_t(false, &bt, true).unwrap()))
        });
    }
    g.finish();
}

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    g.sample_size(10);
    let cases = [
        ("seed_1to3_5x5", [64, 1, 28, 28], [3, 1, 5, 5], 0),
        ("lenet_32to64_3x3", [64, 32, 26, 26], [64, 32, 3, 3], 0),
        ("w5_64to64_3x3", [32, 64, 32, 32], [64, 64, 3, 3], 1),
    ];
    for (name, xd, wd, pad) in cases {
        let (x, w) = (rand(&xd), rand(&wd));
        let p = Conv2dParams {
            padding: [pad, pad],
            ..Default::default()
        };
        let y = x.conv2d(&w, None, p).unwrap();
        g.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| black_box(x.conv2d(&w, None, p).unwrap()))
        });
        g.bench_function(format!("{name}/backward_input"), |b| {
            b.iter(|| black_box(x.conv2d_backward(&w, &y, p, [true, false, false]).unwrap()))
        });
        g.bench_function(format!("{name}/backward_weight"), |b| {
            b.iter(|| black_box(x.conv2d_backward(&w, &y, p, [false, true, true]).unwrap()))
        });
    }
    g.finish();
}

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    let x = rand(&[64, 64, 24, 24]);
    let p = MaxPool2dParams::new([2, 2]);
    let (y, arg) = x.max_pool2d(p).unwrap();
    g.bench_function("max_pool2d_2x2/forward", |b| {
        b.iter(|| black_box(x.max_pool2d(p).unwrap()))
    });
    g.bench_function("max_pool2d_2x2/backward", |b| {
        b.iter(|| black_box(y.max_pool2d_backward(x.shape(), &arg).unwrap()))
    });
    g.finish();
}

fn softmax_ce(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax_ce");
    let x = rand(&[128, 10]);
    let labels: Vec<usize> = (0..128).map(|i| i % 10).collect();
    g.bench_function("cross_entropy_rows_128x10", |b| {
        b.iter(|| black_box(x.cross_entropy_rows(&labels).unwrap()))
    });
    let big = rand(&[512, 1000]);
    g.bench_function("softmax_512x1000", |b| b.iter(|| black_box(big.softmax(1))));
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    let (a, b) = (rand(&[64, 3, 24, 24]), rand(&[64, 3, 24, 24]));
    let row = rand(&[24]);
    g.bench_function("relu_110k", |bch| {
        bch.iter(|| black_box(a.map(|v| v.max(0.0))))
    });
    g.bench_function("mul_110k", |bch| {
        bch.iter(|| black_box(a.zip_map(&b, |x, y| x * y).unwrap()))
    });
    g.bench_function("add_broadcast_row_110k", |bch| {
        bch.iter(|| black_box(a.broadcast_zip(&row, |x, y| x + y).unwrap()))
    });
    g.bench_function("sum_to_row_110k", |bch| {
        bch.iter(|| black_box(a.sum_to(row.shape()).unwrap()))
    });
    g.finish();
}

/// The fused batch and layer norm kernels at the shapes of `resnet_bn`'s first block
/// and `vit_tiny`'s tokens, each way.
fn normalize(c: &mut Criterion) {
    use chainrule::tensor::kernels::normalize::{self as k, AffineAxis, NormLayout};
    let mut g = c.benchmark_group("normalize");
    g.sample_size(20);
    let cases = [
        (
            "batch_norm_64x16x28x28",
            [64, 16, 28, 28],
            NormLayout {
                outer: 64,
                groups: 16,
                inner: 784,
            },
            AffineAxis::Group,
            16,
        ),
        (
            "layer_norm_64x16x64",
            [64, 16, 64, 1],
            NormLayout {
                outer: 1,
                groups: 1024,
                inner: 64,
            },
            AffineAxis::Inner,
            64,
        ),
    ];
    for (name, dims, layout, axis, affine) in cases {
        let (x, dy) = (rand(&dims), rand(&dims));
        let w = vec![1.5f32; affine];
        let stats = k::moments(x.data(), layout);
        let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
        let inv: Vec<f32> = stats
            .iter()
            .map(|s| (1.0 / (s.1 + 1e-5).sqrt()) as f32)
            .collect();
        g.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| {
                let m = k::moments(x.data(), layout);
                black_box((
                    m,
                    k::normalize(x.data(), layout, &mean, &inv, Some(&w), Some(&w), axis),
                ))
            })
        });
        g.bench_function(format!("{name}/backward"), |b| {
            b.iter(|| {
                black_box(k::normalize_backward(
                    x.data(),
                    dy.data(),
                    layout,
                    &mean,
                    &inv,
                    Some(&w),
                    axis,
                    true,
                ))
            })
        });
    }
    g.finish();
}

/// erf and erfc (the exact GELU's) over a million values in [−4, 4].
fn special(c: &mut Criterion) {
    let xs: Vec<f64> = (0..1 << 20)
        .map(|i| -4.0 + 8.0 * i as f64 / (1 << 20) as f64)
        .collect();
    let mut g = c.benchmark_group("special");
    g.sample_size(20);
    g.bench_function("erf_1M", |b| {
        b.iter(|| {
            black_box(
                xs.iter()
                    .map(|&x| chainrule::tensor::special::erf(x))
                    .sum::<f64>(),
            )
        })
    });
    g.bench_function("erfc_1M", |b| {
        b.iter(|| {
            black_box(
                xs.iter()
                    .map(|&x| chainrule::tensor::special::erfc(x))
                    .sum::<f64>(),
            )
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    matmul,
    conv,
    pool,
    softmax_ce,
    elementwise,
    normalize,
    special
);
criterion_main!(benches);
