//! gradcheck and gradgradcheck in f64 for batch, layer and group normalization over
//! random shapes, with and without the affine parameters, and batch norm's running
//! statistics and errors.

mod common;
use common::{gradchecks, rand_tensor};

use chainrule_autograd::{BatchNormOptions, RunningStats, Tape, Tensor, Var};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn batch_norm_in_training_and_eval_matches(
        n in 2usize..4, c in 1usize..4, spatial in prop::collection::vec(1usize..3, 0..3),
        affine in any::<bool>(), training in any::<bool>(), seed in 0u64..1000,
    ) {
        let dims: Vec<usize> = [n, c].into_iter().chain(spatial).collect();
        let mut inputs = vec![rand_tensor(&dims, -2.0, 2.0, seed)];
        if affine {
            inputs.push(rand_tensor(&[c], 0.5, 1.5, seed + 1));
            inputs.push(rand_tensor(&[c], -1.0, 1.0, seed + 2));
        }
        let stats = RunningStats { mean: rand_tensor(&[c], -1.0, 1.0, seed + 3), var: rand_tensor(&[c], 0.5, 2.0, seed + 4) };
        let opts = BatchNormOptions { training, momentum: 0.3, eps: 1e-5 };
        gradchecks(
            |v| {
                let mut s = stats.clone();
                v[0].batch_norm(Some(&mut s), v.get(1), v.get(2), opts)
            },
            &inputs,
        )
        .unwrap();
    }

    #[test]
    fn layer_and_group_norm_match(
        n in 1usize..3, groups in 1usize..3, per_group in 1usize..3, spatial in prop::collection::vec(1usize..3, 0..2),
        trailing in 1usize..3, affine in any::<bool>(), seed in 0u64..1000,
    ) {
        let c = groups * per_group;
        let dims: Vec<usize> = [n, c].into_iter().chain(spatial).collect();
        // at least two values per normalized group, so the variance is not 0
        prop_assume!(dims[1..].iter().product::<usize>() / groups >= 2);
        let x = rand_tensor(&dims, -2.0, 2.0, seed);
        let k = trailing.min(dims.len() - 1);
        let normalized: Vec<usize> = dims[dims.len() - k..].to_vec();
        prop_assume!(normalized.iter().product::<usize>() >= 2);
        let mut inputs = vec![x.clone()];
        if affine {
            inputs.push(rand_tensor(&normalized, 0.5, 1.5, seed + 1));
            inputs.push(rand_tensor(&normalized, -1.0, 1.0, seed + 2));
        }
        gradchecks(|v| v[0].layer_norm(&normalized, v.get(1), v.get(2), 1e-5), &inputs).unwrap();
        let mut inputs = vec![x];
        if affine {
            inputs.push(rand_tensor(&[c], 0.5, 1.5, seed + 3));
            inputs.push(rand_tensor(&[c], -1.0, 1.0, seed + 4));
        }
        gradchecks(|v| v[0].group_norm(groups, v.get(1), v.get(2), 1e-5), &inputs).unwrap();
    }
}

#[test]
fn batch_norm_updates_running_statistics_like_pytorch() {
    // PyTorch: running = (1 − m)·running + m·batch, with the unbiased batch variance
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[4, 1]).unwrap());
    let mut stats = RunningStats::new(1).unwrap();
    let opts = BatchNormOptions {
        training: true,
        momentum: 0.25,
        eps: 0.0,
    };
    let y = x.batch_norm(Some(&mut stats), None, None, opts).unwrap();
    assert_eq!(stats.mean.data(), &[0.75 * 0.0 + 0.25 * 3.0]);
    // mean 3, squared deviations 4 + 1 + 0 + 9 = 14: biased 3.5, unbiased 14/3
    assert!((stats.var.data()[0] - (0.75 + 0.25 * 14.0 / 3.0)).abs() < 1e-15);
    assert!((y.value().data()[0] - (1.0 - 3.0) / 3.5f64.sqrt()).abs() < 1e-15);
    // eval mode uses the running statistics, and leaves them alone
    let before = stats.clone();
    let eval = x
        .batch_norm(
            Some(&mut stats),
            None,
            None,
            BatchNormOptions {
                eps: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stats, before);
    let want = (1.0 - before.mean.data()[0]) / before.var.data()[0].sqrt();
    assert!((eval.value().data()[0] - want).abs() < 1e-15);
}

#[test]
fn batch_norm_rejects_one_value_per_channel_in_training_and_eval_without_statistics() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::zeros(&[1, 3, 1, 1]).unwrap());
    let train = BatchNormOptions {
        training: true,
        ..Default::default()
    };
    let first = line!();
    let e = x
        .batch_norm(None, None, None, train)
        .unwrap_err()
        .to_string();
    let lines = first..=line!();
    assert!(e.starts_with("batch_norm at "), "{e}");
    assert!(
        lines
            .clone()
            .any(|l| e.contains(&format!("gradcheck_normalization.rs:{l}:"))),
        "{e} names none of lines {lines:?}"
    );
    assert!(e.contains("more than 1 value per channel"), "{e}");
    let e = x
        .batch_norm(None, None, None, BatchNormOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("running statistics"), "{e}");
    let w = tape.leaf(Tensor::zeros(&[4]).unwrap());
    let e = Var::batch_norm(&x, None, Some(&w), None, BatchNormOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight [4] for 3 channels"), "{e}");
    let e = x.group_norm(2, None, None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("num_groups"), "{e}");
    let e = x
        .layer_norm(&[3, 2], None, None, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("normalized_shape"), "{e}");
}
