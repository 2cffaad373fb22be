//! gradcheck and gradgradcheck in f64 for padding (constant, reflect, replicate) and
//! interpolation (nearest, bilinear with and without aligned corners) over random
//! shapes and sizes.

mod common;
use common::{gradchecks, rand_tensor};

use chainrule_autograd::{InterpolateMode, InterpolateSize, PadMode, Tape, Tensor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn pad_in_every_mode_matches(
        dims in prop::collection::vec(2usize..5, 1..4), raw in prop::collection::vec(0usize..3, 2..7), seed in 0u64..1000,
    ) {
        let pairs = (raw.len() / 2).min(dims.len());
        let x = rand_tensor(&dims, -1.0, 1.0, seed);
        for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Replicate] {
            // reflect padding must stay below the dim's extent
            let pad: Vec<usize> = (0..2 * pairs)
                .map(|k| if mode == PadMode::Reflect { raw[k].min(dims[dims.len() - 1 - k / 2] - 1) } else { raw[k] })
                .collect();
            gradchecks(|v| Ok(v[0].pad(&pad, mode, 0.5)?.square()), std::slice::from_ref(&x))
                .unwrap_or_else(|e| panic!("{mode:?} {pad:?}: {e}"));
        }
    }

    #[test]
    fn interpolate_in_every_mode_matches(
        h in 1usize..5, w in 1usize..5, oh in 1usize..7, ow in 1usize..7, seed in 0u64..1000,
    ) {
        let x = rand_tensor(&[1, 2, h, w], -1.0, 1.0, seed);
        for mode in [InterpolateMode::Nearest, InterpolateMode::Bilinear { align_corners: false }, InterpolateMode::Bilinear { align_corners: true }] {
            gradchecks(|v| Ok(v[0].interpolate(InterpolateSize::Size([oh, ow]), mode)?.square()), std::slice::from_ref(&x))
                .unwrap_or_else(|e| panic!("{mode:?} to {oh}x{ow}: {e}"));
        }
        gradchecks(
            |v| Ok(v[0].interpolate(InterpolateSize::Scale([2.0, 1.5]), InterpolateMode::Bilinear { align_corners: false })?.square()),
            &[x],
        )
        .unwrap();
    }
}

#[test]
fn bad_padding_and_sizes_are_errors() {
    let x = Tape::<f64>::new().leaf(Tensor::zeros(&[1, 1, 2, 3]).unwrap());
    let e = x
        .pad(&[3, 0], PadMode::Reflect, 0.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("pad at ") && e.contains("Reflect padding (3, 0) of dim 3 of extent 3"),
        "{e}"
    );
    let e = x.pad(&[1], PadMode::Constant, 0.0).unwrap_err().to_string();
    assert!(e.contains("pairs"), "{e}");
    let e = x
        .interpolate(InterpolateSize::Size([0, 2]), InterpolateMode::Nearest)
        .unwrap_err()
        .to_string();
    assert!(e.contains("interpolate at"), "{e}");
    let e = x
        .interpolate(
            InterpolateSize::Scale([f64::NAN, 1.0]),
            InterpolateMode::Nearest,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("scale_factor"), "{e}");
}
