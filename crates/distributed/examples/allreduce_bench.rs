//! All-reduce bandwidth of `World::all_reduce_sum` for 1–64 MB buffers of f32.
//!
//! `mpirun -np 2 target/release/examples/allreduce_bench`
//!
//! Prints, per size, the median time over repetitions, the algorithm bandwidth
//! (bytes / time) and the bus bandwidth (× 2(n−1)/n, what a ring moves per rank, the
//! figure to compare with a link's speed); plus the latency of an 8-byte all-reduce,
//! which includes the length check every `all_reduce_sum` makes first.

use std::time::Instant;

use chainrule_distributed::{Error, World};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_all_reduce(world: &World, len: usize, reps: usize) -> Result<f64, Error> {
    let data = vec![1.0f32; len];
    world.all_reduce_sum(data.clone())?; // warm-up: first touch, connection setup
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let input = data.clone(); // the copy is not timed
        world.barrier()?;
        let start = Instant::now();
        let sum = world.all_reduce_sum(input)?;
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(sum[len - 1], world.size() as f32);
    }
    // every rank's median, the slowest wins: a collective is as fast as its last rank
    let mine = median(times);
    let all = world.all_reduce_sum(
        (0..world.size())
            .map(|r| if r == world.rank() { mine } else { 0.0 })
            .collect(),
    )?;
    Ok(all.into_iter().fold(0.0, f64::max))
}

fn main() -> Result<(), Error> {
    let world = World::init()?;
    let n = world.size() as f64;
    let latency = time_all_reduce(&world, 2, 200)?;
    if world.is_main() {
        println!(
            "{} ranks; 8-byte all_reduce_sum: {:.1} µs",
            world.size(),
            latency * 1e6
        );
        println!("| MB | median ms | algbw GB/s | busbw GB/s |");
        println!("|---|---|---|---|");
    }
    for mb in [1usize, 2, 4, 8, 16, 32, 64] {
        let bytes = mb << 20;
        let t = time_all_reduce(&world, bytes / 4, if mb <= 8 { 30 } else { 10 })?;
        let algbw = bytes as f64 / t / 1e9;
        if world.is_main() {
            println!(
                "| {mb} | {:.3} | {algbw:.2} | {:.2} |",
                t * 1e3,
                algbw * 2.0 * (n - 1.0) / n
            );
        }
    }
    Ok(())
}
