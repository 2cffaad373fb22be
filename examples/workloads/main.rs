//! The ten benchmark workloads of `WORKLOADS.md` next to this file (W1…W10), timed
//! as training steps, printing one JSON object on stdout.
//!
//! `cargo run --release --example workloads -- --workload W1 --threads 2 [--steps 50] [--warmup 5] [--anomaly on] [--micro N]`
//!
//! `--micro N` splits a classifier's batch into N micro-batches run on rayon's threads
//! (`chainrule_nn::parallel`) instead of relying on kernel threads alone.

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};

mod defs;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut id, mut threads, mut steps, mut warmup) = ("W1".to_string(), 1usize, 50usize, 5usize);
    let (mut anomaly, mut micro) = (false, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--workload" => id = value.to_uppercase(),
            "--threads" => threads = value.parse()?,
            "--steps" => steps = value.parse()?,
            "--warmup" => warmup = value.parse()?,
            "--anomaly" => anomaly = value == "on",
            "--micro" => micro = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let mut rng = StdRng::seed_from_u64(0);
    let mut w = defs::build(&id, &mut rng)?;
    w.anomaly = anomaly;
    w.micro = micro;
    for i in 0..warmup {
        let grads = w.step()?;
        if i == 0 {
            let norm: f64 = grads
                .params()
                .map(|(_, g)| g.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>())
                .sum::<f64>()
                .sqrt();
            eprintln!(
                "{id}: {} parameter gradients, global norm {norm:.6e}",
                grads.len()
            );
        }
    }
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let t = Instant::now();
            w.step().map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mut json = format!(
        "{{\"peer\":\"chainrule\",\"workload\":\"{id}\",\"threads\":{threads},\"micro_batches\":{micro},\"warmup_steps\":{warmup},\"timed_steps\":{},\"step\":{{\"median_ms\":{median:.4},\"min_ms\":{:.4},\"max_ms\":{:.4}}},\"images_per_s\":{}",
        times.len(),
        times[0],
        times[times.len() - 1],
        w.batch.map_or("null".to_string(), |b| format!("{:.1}", b as f64 / (median / 1e3)))
    );
    if let Some(f) = w.flops {
        json += &format!(",\"gflops\":{:.2}", f / (median / 1e3) / 1e9);
    }
    if let Some(ops) = w.ops {
        json += &format!(",\"us_per_op\":{:.4}", median * 1e3 / ops as f64);
    }
    println!("{json}}}");
    Ok(())
}
