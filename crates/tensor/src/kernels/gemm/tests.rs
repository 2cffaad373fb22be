//! Every GEMM path (each micro-kernel this CPU runs, and matrixmultiply) against a
//! plain triple loop, over shapes that hit full and edge tiles, several k blocks, both
//! layouts of each operand and accumulation; and bitwise equality across thread counts.

use proptest::prelude::*;

use super::*;

/// `c (+)= a·b` by the definition, in f64.
fn reference(a: &MatRef<f64>, b: &MatRef<f64>, c0: &[f64], accumulate: bool) -> Vec<f64> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| a.at(i, p) * b.at(p, j)).sum();
            c[i * n + j] = if accumulate { c0[i * n + j] + s } else { s };
        }
    }
    c
}

fn values(len: usize, seed: u64) -> Vec<f64> {
    // small integers: every product and partial sum is exact in f64 and f32
    (0..len as u64)
        .map(|i| ((i * 7919 + seed * 104729) % 17) as f64 - 8.0)
        .collect()
}

/// Runs one path: `Some(kernel)` or the portable one.
fn run<T: Element>(
    kernel: Option<&MicroKernel<T>>,
    (a, b): (MatRef<T>, MatRef<T>),
    c: &mut [T],
    accumulate: bool,
    threads: usize,
) {
    let (m, n) = (a.rows, b.cols);
    match kernel {
        Some(k) => gemm_packed(k, a, b, MatMut::new(c, m, n), accumulate, threads),
        None => gemm_portable(a, b, MatMut::new(c, m, n), accumulate, threads),
    }
}

fn check_all_paths(m: usize, k: usize, n: usize, ta: bool, tb: bool, accumulate: bool) {
    let (a_data, b_data) = (values(m * k + 3, 1), values(k * n + 5, 2));
    let c0 = values(m * n, 3);
    let (ar, ac) = if ta { (k, m) } else { (m, k) };
    let (br, bc) = if tb { (n, k) } else { (k, n) };
    let a = MatRef::new(&a_data, 3, ar, ac, ta);
    let b = MatRef::new(&b_data, 5, br, bc, tb);
    let want = reference(&a, &b, &c0, accumulate);

    let mut paths: Vec<Option<&MicroKernel<f64>>> = kernels_f64().into_iter().map(Some).collect();
    paths.push(None);
    for path in paths {
        for threads in [1, 3] {
            let mut c = c0.clone();
            run(path, (a, b), &mut c, accumulate, threads);
            assert_eq!(
                c,
                want,
                "f64 {:?} m{m} k{k} n{n} ta{ta} tb{tb} acc{accumulate} t{threads}",
                path.map(|k| k.name)
            );
        }
    }
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (a32, b32) = (f(&a_data), f(&b_data));
    let (a, b) = (
        MatRef::new(&a32, 3, ar, ac, ta),
        MatRef::new(&b32, 5, br, bc, tb),
    );
    let want32 = f(&want);
    let mut paths: Vec<Option<&MicroKernel<f32>>> = kernels_f32().into_iter().map(Some).collect();
    paths.push(None);
    for path in paths {
        let mut c = f(&c0);
        run(path, (a, b), &mut c, accumulate, 2);
        assert_eq!(
            c,
            want32,
            "f32 {:?} m{m} k{k} n{n} ta{ta} tb{tb}",
            path.map(|k| k.name)
        );
    }
}

#[test]
fn edge_and_whole_tiles_in_every_layout() {
    for (m, k, n) in [
        (1, 1, 1),
        (8, 256, 32),
        (9, 257, 33),
        (17, 600, 70),
        (6, 3, 16),
        (300, 20, 5),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for accumulate in [false, true] {
                check_all_paths(m, k, n, ta, tb, accumulate);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_shapes_match_the_definition(
        m in 1usize..70, k in 1usize..600, n in 1usize..90,
        ta: bool, tb: bool, accumulate: bool,
    ) {
        check_all_paths(m, k, n, ta, tb, accumulate);
    }
}

/// Real-valued (inexact) sums: the bits must not depend on the thread count, and the
/// packed kernels must agree with the definition to rounding.
#[test]
fn bits_do_not_depend_on_threads() {
    let (m, k, n) = (200, 700, 300);
    let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.618).sin()).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.377).cos()).collect();
    let (av, bv) = (
        MatRef::new(&a, 0, m, k, false),
        MatRef::new(&b, 0, k, n, false),
    );
    for kernel in kernels_f32() {
        let mut one = vec![0.0f32; m * n];
        run(Some(kernel), (av, bv), &mut one, false, 1);
        for threads in [2, 3, 4] {
            let mut many = vec![0.0f32; m * n];
            run(Some(kernel), (av, bv), &mut many, false, threads);
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{} t{threads}",
                kernel.name
            );
        }
        for (i, j) in [(0, 0), (199, 299), (57, 123)] {
            let exact: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
            assert!(
                (one[i * n + j] as f64 - exact).abs() < 1e-3,
                "{} ({i},{j})",
                kernel.name
            );
        }
    }
}

#[test]
fn views_that_leave_their_slice_are_refused() {
    let data = [0.0f32; 12];
    assert!(std::panic::catch_unwind(|| MatRef::new(&data, 1, 3, 4, false)).is_err());
    assert!(std::panic::catch_unwind(|| MatRef::new(&data, 0, usize::MAX / 2, 4, true)).is_err());
    let view = MatRef::new(&data, 0, 3, 4, true);
    assert_eq!((view.rows, view.cols), (4, 3));
}
