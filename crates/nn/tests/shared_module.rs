//! One Linear module used three times in a forward pass: its gradient is the sum of the
//! three uses', equal to the summed gradients of three identically initialised copies.

use chainrule_autograd::{Reduction, Tape, Tensor};
use chainrule_nn::layers::Linear;
use chainrule_nn::Module;
use rand::{rngs::StdRng, Rng, SeedableRng};

#[test]
fn one_linear_used_three_times_gets_the_sum_of_three_copies_gradients() {
    let mut rng = StdRng::seed_from_u64(7);
    let shared = Linear::<f64>::new(8, 8, &mut rng).unwrap();
    let copies: Vec<Linear<f64>> = (0..3)
        .map(|_| {
            Linear::from_tensors(
                shared.weight.value(),
                shared.bias.as_ref().map(|b| b.value()),
            )
        })
        .collect();
    let x = Tensor::from_vec((0..32).map(|_| rng.gen_range(-1.0..1.0)).collect(), &[4, 8]).unwrap();
    let target =
        Tensor::from_vec((0..32).map(|_| rng.gen_range(-1.0..1.0)).collect(), &[4, 8]).unwrap();

    let run = |layers: [&Linear<f64>; 3]| {
        let tape = Tape::new();
        let mut h = tape.constant(x.clone());
        for l in layers {
            h = l.forward(&h).unwrap().tanh();
        }
        h.mse_loss(&tape.constant(target.clone()), Reduction::Mean)
            .unwrap()
            .backward()
            .unwrap()
    };
    let g_shared = run([&shared, &shared, &shared]);
    let g_copies = run([&copies[0], &copies[1], &copies[2]]);

    for (pick, name) in [(0usize, "weight"), (1, "bias")] {
        let param = |l: &Linear<f64>| {
            if pick == 0 {
                l.weight.clone()
            } else {
                l.bias.clone().unwrap()
            }
        };
        // backward reaches the third use first, so it adds the uses in reverse order
        let mut sum = g_copies.get(&param(&copies[2])).unwrap().clone();
        sum.add_assign(g_copies.get(&param(&copies[1])).unwrap())
            .unwrap();
        sum.add_assign(g_copies.get(&param(&copies[0])).unwrap())
            .unwrap();
        assert_eq!(g_shared.get(&param(&shared)).unwrap(), &sum, "{name}");
    }
    assert_eq!(g_shared.len(), 2, "one gradient per parameter, not per use");
}
