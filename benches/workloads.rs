//! Criterion timings of the ten training steps of `examples/workloads/WORKLOADS.md`
//! (one thread; the two-thread figures come from `examples/workloads` with
//! `--threads 2`).
//!
//! `cargo bench --bench workloads`

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, SeedableRng};

#[path = "../examples/workloads/defs.rs"]
#[allow(dead_code)]
mod defs;

fn workloads(c: &mut Criterion) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let mut group = c.benchmark_group("workloads");
    group.sample_size(10);
    for id in ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10"] {
        let mut w = defs::build(id, &mut StdRng::seed_from_u64(0)).expect("known workload");
        group.bench_function(id, |b| b.iter(|| w.step().expect("step runs")));
    }
    group.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
