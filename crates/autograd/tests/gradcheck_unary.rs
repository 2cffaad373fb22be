//! gradcheck in f64 for every row of the unary table, over several shapes.

mod common;
use common::gradchecks;

use chainrule_autograd::Unary;
use common::{rand_tensor, spread_tensor};

const SHAPES: [&[usize]; 4] = [&[1], &[7], &[3, 5], &[2, 1, 4]];

#[test]
fn every_unary_op_matches_finite_differences() {
    for &op in Unary::ALL {
        for (s, dims) in SHAPES.iter().enumerate() {
            // log, sqrt and powf need positive inputs; kinked ops need inputs off 0.
            let x = match op {
                Unary::Log | Unary::Sqrt | Unary::Powf(_) => rand_tensor(dims, 0.5, 2.0, s as u64),
                _ => spread_tensor(dims, s as u64),
            };
            gradchecks(|v| Ok(v[0].unary(op)), &[x])
                .unwrap_or_else(|e| panic!("{op:?} on {dims:?}: {e}"));
        }
    }
}

#[test]
fn negative_exponents_and_slopes_match_finite_differences() {
    for op in [
        Unary::Powf(-1.0),
        Unary::Powf(0.5),
        Unary::Powf(3.0),
        Unary::LeakyRelu(0.2),
        Unary::Scale(0.0),
        Unary::Softplus(1.0, 20.0),
        Unary::Softplus(2.0, 2.0),
        Unary::Elu(1.0),
        Unary::Clamp(f64::NEG_INFINITY, 0.31),
        Unary::Clamp(-0.21, f64::INFINITY),
        Unary::Clamp(0.5, -0.5),
    ] {
        gradchecks(|v| Ok(v[0].unary(op)), &[rand_tensor(&[4, 3], 0.5, 2.0, 9)])
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
}

#[test]
fn chained_unary_ops_match_finite_differences() {
    let x = rand_tensor(&[3, 4], -2.0, 2.0, 3);
    gradchecks(
        |v| Ok(v[0].tanh().sigmoid().exp().square().add_scalar(1.0).log()),
        &[x],
    )
    .unwrap();
}

#[test]
fn relu_has_zero_gradient_at_zero_like_pytorch() {
    let tape = chainrule_autograd::Tape::<f64>::new();
    let x = tape.leaf(chainrule_autograd::Tensor::from_vec(vec![0.0, 1.0, -1.0], &[3]).unwrap());
    let g = x.relu().sum().backward().unwrap();
    assert_eq!(g.wrt(&x).unwrap().data(), &[0.0, 1.0, 0.0]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    #[test]
    fn every_unary_op_on_random_shapes_and_attributes_matches(
        dims in proptest::collection::vec(1usize..4, 0..4), attr in 0.05f64..2.5, seed in 0u64..1000,
    ) {
        for &op in Unary::ALL {
            // the same variant with a random attribute
            let op = match op {
                Unary::LeakyRelu(_) => Unary::LeakyRelu(attr),
                Unary::Powf(_) => Unary::Powf(attr - 1.0),
                Unary::Scale(_) => Unary::Scale(attr - 1.25),
                Unary::AddScalar(_) => Unary::AddScalar(attr),
                // the threshold's jump (βx = 20) stays outside the inputs
                Unary::Softplus(..) => Unary::Softplus(attr, 20.0),
                Unary::Elu(_) => Unary::Elu(attr),
                // bounds 0.011 away from the spread grid (0.013 plus multiples of
                // 0.025), so no input sits on a kink
                Unary::Clamp(..) => {
                    let q = (attr * 20.0).round() / 20.0;
                    Unary::Clamp(-q - 0.001, q + 0.002)
                }
                other => other,
            };
            let x = match op {
                Unary::Log | Unary::Sqrt | Unary::Powf(_) => rand_tensor(&dims, 0.5, 2.0, seed),
                _ => spread_tensor(&dims, seed),
            };
            gradchecks(|v| Ok(v[0].unary(op)), &[x])
                .unwrap_or_else(|e| panic!("{op:?} on {dims:?}: {e}"));
        }
    }
}
