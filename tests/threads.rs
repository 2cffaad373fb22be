//! Results do not depend on the number of threads: a training step's gradients are
//! bit-identical on a 1-thread and a 2-thread rayon pool (sums run in a fixed order).

use chainrule::nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use chainrule::nn::{Module, ModuleState};
use chainrule::{Reduction, Tape, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Gradients (as bits, in parameter order) of one step of a LeNet-like model, large
/// enough that every kernel takes its parallel path.
fn step_bits() -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(11);
    let net = Sequential::new()
        .push(Conv2d::new(1, 32, [3, 3], &mut rng).unwrap())
        .push(ReLU)
        .push(Conv2d::new(32, 64, [3, 3], &mut rng).unwrap())
        .push(ReLU)
        .push(MaxPool2d::new([2, 2]))
        .push(Flatten::default())
        .push(Linear::new(9216, 128, &mut rng).unwrap())
        .push(ReLU)
        .push(Linear::new(128, 10, &mut rng).unwrap());
    let x = Tensor::from_vec(
        (0..64 * 784).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
        &[64, 1, 28, 28],
    )
    .unwrap();
    let labels: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let tape = Tape::new();
    let grads = net
        .forward(&tape.constant(x))
        .unwrap()
        .cross_entropy(&labels, Reduction::Mean)
        .unwrap()
        .backward()
        .unwrap();
    net.parameters()
        .iter()
        .map(|p| {
            grads
                .get(p)
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

#[test]
fn gradients_are_bit_identical_on_one_and_two_threads() {
    // Called from outside any pool (the test's own thread) the 2-thread global pool
    // splits GEMM rows and conv batches; inside a 1-thread pool everything is serial.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    assert!(rayon::current_thread_index().is_none() && rayon::current_num_threads() == 2);
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = serial.install(step_bits);
    let two = step_bits();
    assert_eq!(one.len(), 8);
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        assert!(a == b, "parameter {i} differs between 1 and 2 threads");
    }
}
