//! The error message the README quotes is the one the code prints: the seed network
//! (as in the README) fed 3-channel images through `Sequential`, reported at the
//! line that called the model, with the layer's path and type.

use chainrule::nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use chainrule::nn::Module;
use chainrule::{Tape, Tensor};
use rand::SeedableRng;

fn seed_network() -> Sequential {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    Sequential::new()
        .push(Conv2d::new(1, 3, [5, 5], &mut rng).unwrap())
        .push(ReLU)
        .push(MaxPool2d::new([2, 2]))
        .push(Flatten::default())
        .push(Linear::new(432, 10, &mut rng).unwrap())
}

#[test]
fn the_readme_quotes_a_real_error_message() {
    let net = seed_network();
    let tape = Tape::new();
    let images = tape.constant(Tensor::zeros(&[64, 3, 28, 28]).unwrap());
    let message = net.forward(&images).unwrap_err().to_string();
    // the site is this file's line above, where the model was called
    assert!(
        message
            .starts_with("conv2d in \"0\" (Conv2d) of Sequential at tests/readme_error.rs:25:23: "),
        "{message}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("`{message}`")),
        "README.md should quote `{message}`"
    );
}

#[test]
fn nested_containers_report_the_full_path_at_the_outer_call() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = Sequential::<f32>::new()
        .push(ReLU)
        .push(Sequential::new().push(Linear::new(4, 2, &mut rng).unwrap()));
    let tape = Tape::new();
    let x = tape.constant(Tensor::zeros(&[2, 5]).unwrap());
    let message = net.forward(&x).unwrap_err().to_string();
    let line = line!() - 1;
    assert!(
        message.starts_with(&format!(
            "linear in \"1.0\" (Linear) of Sequential at tests/readme_error.rs:{line}:"
        )),
        "{message}"
    );
}
