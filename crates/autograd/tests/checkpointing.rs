//! Gradient checkpointing on a 100-block MLP: the same gradients to the bit, and the
//! peak memory of forward + backward (heap bytes above what the parameters and input
//! hold, counted by this test's allocator) down at least 3×. The binary holds this one
//! test, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chainrule_autograd::{checkpoint, Param, Result, Tape, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters
// are only arithmetic on the sizes it was asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const BLOCKS: usize = 100;
const SEGMENT: usize = 10;
const WIDTH: usize = 64;
const BATCH: usize = 512;

fn blocks() -> Vec<(Param<f32>, Param<f32>)> {
    let mut rng = StdRng::seed_from_u64(3);
    let mut t = |dims: &[usize], s: f32| {
        let n = dims.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.gen_range(-s..s)).collect(), dims).unwrap()
    };
    (0..BLOCKS)
        .map(|_| {
            (
                Param::new(t(&[WIDTH, WIDTH], 0.2)),
                Param::new(t(&[WIDTH], 0.1)),
            )
        })
        .collect()
}

fn run_blocks(x: &Var<f32>, layers: &[(Param<f32>, Param<f32>)]) -> Result<Var<f32>> {
    let tape = x.tape();
    let mut h = x.clone();
    for (w, b) in layers {
        h = h.linear(&tape.param(w), Some(&tape.param(b)))?.tanh();
    }
    Ok(h)
}

/// Forward and backward, with or without checkpointed segments: the gradients as bits
/// (parameter order) and the peak heap bytes above the bytes live at the start.
fn step(layers: &[(Param<f32>, Param<f32>)], segmented: bool) -> (Vec<u32>, usize) {
    let x = Tensor::from_vec(
        (0..BATCH * WIDTH)
            .map(|i| (i as f32 * 0.01).sin())
            .collect(),
        &[BATCH, WIDTH],
    )
    .unwrap();
    // the live tensors are what checkpointing controls: the buffer pool's cache of
    // free ones (`pool::release` empties it) would count in both runs
    chainrule_tensor::pool::set_limit(0);
    chainrule_tensor::pool::release();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let tape = Tape::<f32>::new();
    let mut h = tape.leaf(x);
    if segmented {
        for seg in layers.chunks(SEGMENT) {
            let seg = seg.to_vec();
            h = checkpoint(move |v| run_blocks(&v[0], &seg), &[&h]).unwrap();
        }
    } else {
        h = run_blocks(&h, layers).unwrap();
    }
    let grads = h.sum().backward().unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let bits = layers
        .iter()
        .flat_map(|(w, b)| [w, b])
        .flat_map(|p| grads.get(p).unwrap().data().to_vec())
        .map(f32::to_bits)
        .collect();
    (bits, peak)
}

#[test]
fn checkpointed_segments_give_the_same_gradients_in_a_third_of_the_memory() {
    let layers = blocks();
    let (plain, plain_peak) = step(&layers, false);
    let (ckpt, ckpt_peak) = step(&layers, true);
    println!(
        "checkpointing {BLOCKS} blocks in segments of {SEGMENT}: peak {:.2} MB without, {:.2} MB with ({:.1}x less)",
        plain_peak as f64 / 1e6,
        ckpt_peak as f64 / 1e6,
        plain_peak as f64 / ckpt_peak as f64
    );
    assert_eq!(plain.len(), BLOCKS * (WIDTH * WIDTH + WIDTH));
    assert!(plain == ckpt, "gradients differ with checkpointing");
    assert!(
        plain_peak >= 3 * ckpt_peak,
        "peak {plain_peak} B without, {ckpt_peak} B with"
    );
}
