//! Hostile inputs to the nn crate: duplicate names, special files, malformed
//! checkpoints, gzip bombs, invalid hyperparameters, parameters held across a step,
//! and empty batches. Each case is a typed error or PyTorch's answer, never a panic,
//! a hang or an unbounded read.

use std::io::Write;
use std::path::{Path, PathBuf};

use chainrule_autograd::{Param, Tape, Tensor, Var};
use chainrule_nn::layers::{Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use chainrule_nn::optim::{Adam, Optimizer, Sgd};
use chainrule_nn::{checkpoint, mnist::read_idx, Error, Module, ModuleState};
use rand::{rngs::StdRng, SeedableRng};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chainrule-hard-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// A module whose two parameters share one name.
struct Twins(Param, Param);

impl ModuleState for Twins {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&format!("{prefix}w"), &self.0);
        f(&format!("{prefix}w"), &self.1);
    }
}

impl Module for Twins {
    fn forward(&self, x: &Var) -> chainrule_autograd::Result<Var> {
        Ok(x.clone())
    }
}

#[test]
fn duplicate_parameter_names_are_an_error_before_anything_is_written() {
    let dir = scratch_dir("dup");
    let m = Twins(
        Param::new(Tensor::zeros(&[2]).unwrap()),
        Param::new(Tensor::zeros(&[3]).unwrap()),
    );
    let path = dir.join("twins.safetensors");
    let e = checkpoint::save(&m, &path).unwrap_err().to_string();
    assert!(
        e.contains("two parameters or buffers are named \"w\""),
        "{e}"
    );
    assert!(!path.exists());
    assert!(leftovers(&dir).is_empty());
}

#[test]
fn special_files_are_refused_without_reading_them() {
    let fc = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    // /dev/zero would stream forever; a directory cannot be read
    for path in ["/dev/zero", "/dev/null", "/tmp"] {
        let e = checkpoint::load(&fc, path).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{path}: {e}");
    }
    // a FIFO would block open() forever
    let fifo = scratch_dir("fifo").join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let e = checkpoint::load(&fc, &fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(read_idx(&fifo, 1).is_err());
    } else {
        panic!("mkfifo is needed for this test");
    }
}

/// A safetensors file from a header and a data section.
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn malformed_checkpoints_say_what_is_wrong_and_where() {
    let dir = scratch_dir("malformed");
    let fc = Linear::<f32>::new(1, 1, &mut StdRng::seed_from_u64(0)).unwrap();
    let w = r#""weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}"#;
    let b = r#""bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "short",
            vec![1, 2, 3],
            "fewer than the 8-byte header length",
        ),
        (
            "long-header",
            {
                let mut v = 1000u64.to_le_bytes().to_vec();
                v.extend_from_slice(b"{}");
                v
            },
            "header length is 1000 bytes but only 2 bytes follow it",
        ),
        (
            "not-json",
            safetensors_bytes("{nope", &[]),
            "header is not valid JSON",
        ),
        (
            "past-the-end",
            safetensors_bytes(&format!("{{{w},{b}}}"), &[0; 6]),
            "tensor \"bias\" claims bytes 4..8 of a 6-byte data section",
        ),
        (
            "wrong-size",
            safetensors_bytes(
                r#"{"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "needs 16 bytes but its offsets 0..8 hold 8",
        ),
        (
            "overflow",
            safetensors_bytes(
                r#"{"weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "overflows",
        ),
        (
            "uncovered",
            safetensors_bytes(&format!("{{{w},{b}}}"), &[0; 12]),
            "the tensors cover 8 bytes of the 12-byte data section",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = checkpoint::load(&fc, &path).unwrap_err().to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
    // and a well-formed file of the right shapes loads
    let path = dir.join("good");
    std::fs::write(&path, safetensors_bytes(&format!("{{{w},{b}}}"), &[0; 8])).unwrap();
    checkpoint::load(&fc, &path).unwrap();
}

#[test]
fn a_failed_save_leaves_no_temporary_and_names_the_target() {
    let dir = scratch_dir("failed-save");
    let fc = Linear::<f32>::new(2, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    // the target is a directory: the rename fails after the temporary was written
    let target = dir.join("occupied");
    std::fs::create_dir_all(target.join("inside")).unwrap();
    let e = checkpoint::save(&fc, &target).unwrap_err().to_string();
    assert!(e.contains("occupied"), "{e}");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    // a missing directory
    let e = checkpoint::save(&fc, dir.join("missing/x.safetensors")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn concurrent_saves_to_one_path_each_succeed() {
    let dir = scratch_dir("concurrent");
    let path = dir.join("shared.safetensors");
    let fc = Linear::<f32>::new(16, 16, &mut StdRng::seed_from_u64(0)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10 {
                    checkpoint::save(&fc, &path).unwrap();
                }
            });
        }
    });
    let other = Linear::<f32>::new(16, 16, &mut StdRng::seed_from_u64(1)).unwrap();
    checkpoint::load(&other, &path).unwrap();
    assert_eq!(other.weight.value(), fc.weight.value());
    assert!(leftovers(&dir).is_empty());
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_reads_stop_at_the_declared_size() {
    let dir = scratch_dir("idx");
    // a bomb: the header declares 10 bytes, 64 MiB of zeros follow
    let mut bomb = vec![0, 0, 8, 1, 0, 0, 0, 10];
    bomb.resize(8 + (64 << 20), 0);
    let packed = gz(&bomb);
    assert!(
        packed.len() < 1 << 20,
        "compressed to {} bytes",
        packed.len()
    );
    let path = dir.join("bomb.gz");
    std::fs::write(&path, packed).unwrap();
    let e = read_idx(&path, 1).unwrap_err().to_string();
    assert!(e.contains("declares 10 data bytes, found more"), "{e}");
    // dims whose product overflows
    let mut header = vec![0, 0, 8, 3];
    for _ in 0..3 {
        header.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    std::fs::write(&path, gz(&header)).unwrap();
    let e = read_idx(&path, 3).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
}

#[test]
fn hyperparameters_are_validated_as_pytorch_does() {
    let bad = |r: Result<(), Error>, want: &str| {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    };
    for p in [1.5, -0.1, f64::NAN] {
        bad(Dropout::new(p, 0).map(drop), "between 0 and 1");
    }
    let w = || vec![Param::new(Tensor::<f32>::zeros(&[2]).unwrap())];
    bad(Sgd::new(w(), -0.1).map(drop), "learning rate");
    bad(Sgd::new(w(), f64::NAN).map(drop), "learning rate");
    bad(
        Sgd::new(w(), 0.1).and_then(|o| o.momentum(-5.0)).map(drop),
        "momentum -5",
    );
    bad(
        Sgd::new(w(), 0.1)
            .and_then(|o| o.weight_decay(-1.0))
            .map(drop),
        "weight_decay",
    );
    bad(
        Sgd::new(w(), 0.1).and_then(|o| o.nesterov(true)).map(drop),
        "Nesterov",
    );
    bad(
        Sgd::new(w(), 0.1)
            .and_then(|o| o.momentum(0.9))
            .and_then(|o| o.dampening(0.1))
            .and_then(|o| o.nesterov(true))
            .map(drop),
        "zero dampening",
    );
    bad(
        Adam::new(w(), 1e-3)
            .and_then(|o| o.betas(1.0, 0.999))
            .map(drop),
        "beta1 1",
    );
    bad(
        Adam::new(w(), 1e-3)
            .and_then(|o| o.betas(0.9, -0.1))
            .map(drop),
        "beta2",
    );
    bad(
        Adam::new(w(), 1e-3).and_then(|o| o.eps(-1e-8)).map(drop),
        "epsilon",
    );
    bad(
        Adam::adamw(w(), 1e-3, f64::INFINITY).map(drop),
        "weight_decay",
    );
    // the valid edges are accepted: p = 0 and 1, momentum 0, eps 0
    assert!(Dropout::new(1.0, 0).is_ok() && Dropout::new(0.0, 0).is_ok());
    assert!(Adam::new(w(), 0.0).and_then(|o| o.eps(0.0)).is_ok());
}

fn is_send_sync<T: Send + Sync>() {}

#[test]
fn parameters_are_snapshots_that_survive_a_step() {
    is_send_sync::<Param<f32>>();
    is_send_sync::<Linear<f32>>();
    is_send_sync::<Dropout>();
    let w = Param::new(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let mut opt = Sgd::new(vec![w.clone()], 0.5).unwrap();
    let held = w.value(); // once a RefCell borrow that made the step panic
    let tape = Tape::new();
    let grads = tape.param(&w).sum().backward().unwrap();
    opt.step(&grads).unwrap();
    assert_eq!(held.data(), &[1.0, 2.0]);
    assert_eq!(w.value().data(), &[0.5, 1.5]);
    // recording a use of the parameter inside its own update reads the old value
    let inner = w.update(|t| {
        let seen = Tape::<f64>::new().param(&w).value().clone();
        t.data_mut()[0] = 9.0;
        seen
    });
    assert_eq!(inner.data(), &[0.5, 1.5]);
    assert_eq!(w.value().data(), &[9.0, 1.5]);
}

#[test]
fn an_empty_batch_goes_through_the_seed_network() {
    let mut rng = StdRng::seed_from_u64(0);
    let net = Sequential::new()
        .push(Conv2d::new(1, 3, [5, 5], &mut rng).unwrap())
        .push(ReLU)
        .push(MaxPool2d::new([2, 2]))
        .push(Flatten::default())
        .push(Linear::new(432, 10, &mut rng).unwrap());
    let tape = Tape::<f32>::new();
    let x = tape.constant(Tensor::zeros(&[0, 1, 28, 28]).unwrap());
    let y = net.forward(&x).unwrap();
    assert_eq!(y.dims(), &[0, 10]);
    // PyTorch: the sum of nothing is 0 and every weight's gradient is zero
    let grads = y.sum().backward().unwrap();
    for p in net.parameters() {
        let g = grads.get(&p).unwrap();
        assert!(g.data().iter().all(|&v| v == 0.0));
    }
}

#[test]
fn layers_too_large_to_build_are_errors() {
    let mut rng = StdRng::seed_from_u64(0);
    // 2^80 weights wrapped to 0 before; 2^40 aborted on allocation
    assert!(Linear::<f32>::new(1 << 40, 1 << 40, &mut rng).is_err());
    assert!(Linear::<f32>::new(1 << 20, 1 << 20, &mut rng).is_err());
    assert!(Conv2d::<f32>::new(1 << 20, 1 << 20, [3, 3], &mut rng).is_err());
    assert!(chainrule_nn::init::kaiming_normal::<f32, _>(
        &[1 << 40, 1 << 40],
        chainrule_nn::init::FanMode::FanIn,
        chainrule_nn::init::Nonlinearity::Relu,
        &mut rng
    )
    .is_err());
}
