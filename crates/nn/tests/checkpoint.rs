//! safetensors checkpoints: bit-exact round trip, interop with Python's `safetensors`,
//! and clear errors for mismatched, truncated or malformed files.

use chainrule_autograd::Tensor;
use chainrule_nn::checkpoint::LoadOptions;
use chainrule_nn::layers::{Conv2d, Linear, ReLU, Sequential};
use chainrule_nn::{checkpoint, Error, ModuleState};
use rand::{rngs::StdRng, SeedableRng};

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("chainrule-{}-{name}", std::process::id()))
}

fn net(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Conv2d::new(1, 3, [5, 5], &mut rng).unwrap())
        .push(ReLU)
        .push(Linear::new(432, 10, &mut rng).unwrap())
}

#[test]
fn save_then_load_round_trips_bit_exactly() {
    let (a, b) = (net(1), net(2));
    assert_ne!(a.parameters()[0].value(), b.parameters()[0].value());
    let path = tmp("roundtrip.safetensors");
    checkpoint::save(&a, &path).unwrap();
    checkpoint::load(&b, &path).unwrap();
    for ((na, pa), (nb, pb)) in a.named_parameters().iter().zip(b.named_parameters()) {
        assert_eq!(na, &nb);
        let bits = |t: Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(pa.value()), bits(pb.value()), "{na}");
    }
    assert!(
        !std::path::Path::new(&format!("{}.tmp", path.display())).exists(),
        "temporary file left behind"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_file_written_by_python_safetensors_loads() {
    let fc = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    checkpoint::load(&fc, data("from_python.safetensors")).unwrap();
    assert_eq!(
        fc.weight.value().data(),
        &[-0.25, -0.125, 0.0, 0.125, 0.25, 0.375]
    );
    assert_eq!(fc.bias.as_ref().unwrap().value().data(), &[1.5, -2.0]);
}

#[test]
fn a_file_we_write_matches_the_one_python_reads() {
    // `written_by_chainrule.safetensors` was written by this code and checked with
    // `python3 tests/data/make_safetensors.py check written_by_chainrule.safetensors`;
    // writing the same values again must give the same bytes.
    let fc = Linear::<f32>::from_tensors(
        Tensor::from_vec(vec![-0.25, -0.125, 0.0, 0.125, 0.25, 0.375], &[2, 3]).unwrap(),
        Some(Tensor::from_vec(vec![1.5, -2.0], &[2]).unwrap()),
    );
    let path = tmp("written.safetensors");
    checkpoint::save(&fc, &path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(data("written_by_chainrule.safetensors")).unwrap()
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn mismatched_names_shapes_and_dtypes_are_all_reported() {
    let path = tmp("mismatch.safetensors");
    checkpoint::save(
        &Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0)).unwrap(),
        &path,
    )
    .unwrap();
    let wrong_shape = Linear::<f32>::new(4, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    let before = wrong_shape.weight.value();
    let msg = checkpoint::load(&wrong_shape, &path)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"weight\" has shape [2, 3], the module expects [2, 4]"),
        "{msg}"
    );
    assert_eq!(
        wrong_shape.weight.value(),
        before,
        "a failed load must change nothing"
    );

    let other = net(0);
    let msg = checkpoint::load(&other, &path).unwrap_err().to_string();
    assert!(
        msg.contains("missing tensor \"0.weight\"") && msg.contains("unexpected tensor \"bias\""),
        "{msg}"
    );

    let wide = Linear::<f64>::new(3, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    let msg = checkpoint::load(&wide, &path).unwrap_err().to_string();
    assert!(msg.contains("dtype F32, the module expects F64"), "{msg}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn truncated_and_malformed_files_are_errors_not_panics() {
    let bytes = std::fs::read(data("from_python.safetensors")).unwrap();
    let fc = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0)).unwrap();
    for (name, content) in [
        ("truncated", bytes[..bytes.len() - 5].to_vec()),
        ("header-only", bytes[..10].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not a safetensors file at all".to_vec()),
    ] {
        let path = tmp(name);
        std::fs::write(&path, content).unwrap();
        let err = checkpoint::load(&fc, &path).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{name}: {err}");
        std::fs::remove_file(path).unwrap();
    }
    assert!(matches!(
        checkpoint::load(&fc, tmp("does-not-exist")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn buffers_are_saved_and_loaded_with_the_parameters() {
    use chainrule_nn::layers::{BatchNorm2d, Conv2d};
    use chainrule_nn::Module;
    let make = |seed| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Sequential::<f32>::new()
            .push(Conv2d::new(1, 2, [3, 3], &mut rng).unwrap())
            .push(BatchNorm2d::new(2).unwrap())
    };
    let (a, b) = (make(1), make(2));
    // two training steps move a's running statistics away from their start
    let x = chainrule_autograd::Tape::new().constant(
        chainrule_autograd::Tensor::from_vec(
            (0..50).map(|v| v as f32 / 7.0).collect(),
            &[2, 1, 5, 5],
        )
        .unwrap(),
    );
    a.forward(&x).unwrap();
    a.forward(&x).unwrap();
    let path = tmp("buffers.safetensors");
    checkpoint::save(&a, &path).unwrap();
    checkpoint::load(&b, &path).unwrap();
    let names: Vec<String> = b.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    );
    for ((_, x), (_, y)) in a.named_buffers().iter().zip(b.named_buffers().iter()) {
        assert_eq!(x.get(), y.get());
    }
    assert_eq!(b.named_buffers()[2].1.int().unwrap().data(), &[2]);
    a.eval();
    b.eval();
    assert_eq!(
        a.forward(&x).unwrap().value(),
        b.forward(&x).unwrap().value()
    );
    // the count is stored as I64, as PyTorch stores it
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("1.num_batches_tracked").unwrap().dtype(),
        safetensors::Dtype::I64
    );
    std::fs::remove_file(&path).ok();
}

fn mlp(seed: u64, layers: usize) -> Sequential<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..layers).fold(Sequential::new(), |s, _| {
        s.push(Linear::new(3, 3, &mut rng).unwrap())
    })
}

fn values(m: &Sequential<f64>) -> Vec<Vec<f64>> {
    m.parameters()
        .iter()
        .map(|p| p.value().data().to_vec())
        .collect()
}

#[test]
fn a_non_strict_load_reports_missing_and_unexpected_and_loads_the_rest() {
    let (two, three) = (mlp(1, 2), mlp(2, 3));
    let path = tmp("nonstrict.safetensors");
    checkpoint::save(&three, &path).unwrap();
    let strict = checkpoint::load(&two, &path).unwrap_err().to_string();
    assert!(
        strict.contains("unexpected tensor \"2.weight\""),
        "{strict}"
    );
    let options = LoadOptions {
        strict: false,
        ..LoadOptions::default()
    };
    let report = checkpoint::load_with(&two, &path, &options).unwrap();
    assert_eq!(report.unexpected, ["2.bias", "2.weight"]);
    assert!(report.missing.is_empty());
    assert_eq!(values(&two), values(&three)[..4].to_vec());

    // the other way round: the third layer stays as it was
    let (small, big) = (mlp(3, 2), mlp(4, 3));
    let before = values(&big);
    checkpoint::save(&small, &path).unwrap();
    let report = checkpoint::load_with(&big, &path, &options).unwrap();
    assert_eq!(report.missing, ["2.bias", "2.weight"]);
    assert_eq!(values(&big)[..4].to_vec(), values(&small));
    assert_eq!(values(&big)[4..], before[4..]);
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_shape_mismatch_is_an_error_even_when_not_strict_and_changes_nothing() {
    let a = mlp(1, 1);
    let mut rng = StdRng::seed_from_u64(5);
    let b = Sequential::<f64>::new().push(Linear::new(3, 4, &mut rng).unwrap());
    let path = tmp("shapes.safetensors");
    checkpoint::save(&a, &path).unwrap();
    let before = values(&b);
    let options = LoadOptions {
        strict: false,
        ..LoadOptions::default()
    };
    let err = checkpoint::load_with(&b, &path, &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"0.weight\" has shape [3, 3], the module expects [4, 3]"),
        "{err}"
    );
    assert!(
        err.contains("\"0.bias\" has shape [3], the module expects [4]"),
        "{err}"
    );
    assert_eq!(values(&b), before);
    std::fs::remove_file(&path).ok();
}

#[test]
fn prefixes_and_renames_map_file_names_to_module_names() {
    let src = mlp(1, 2);
    let path = tmp("renamed.safetensors");
    checkpoint::save(&src, &path).unwrap();
    // a file whose names carry DDP's "module." prefix loads into the bare model
    let dst = mlp(2, 2);
    let wrapped = LoadOptions::default().rename(|n| Some(format!("module.{n}")));
    let err = checkpoint::load_with(&dst, &path, &wrapped)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing tensor \"0.bias\""), "{err}");
    let unwrapped = LoadOptions::default()
        .rename(|n| Some(format!("module.{n}")))
        .strip_prefix("module.");
    checkpoint::load_with(&dst, &path, &unwrapped).unwrap();
    assert_eq!(values(&dst), values(&src));
    // one layer of a two-layer file, by its prefix
    let one = mlp(3, 1);
    let under = LoadOptions::default()
        .only_under("1.")
        .rename(|n| Some(format!("0.{n}")));
    checkpoint::load_with(&one, &path, &under).unwrap();
    assert_eq!(values(&one), values(&src)[2..].to_vec());
    // two file names onto one module name is an error, not a silent choice
    let clash = LoadOptions::default().rename(|n| Some(n.replace('1', "0")));
    let err = checkpoint::load_with(&mlp(4, 2), &path, &clash)
        .unwrap_err()
        .to_string();
    assert!(err.contains("both map to \"0.bias\""), "{err}");
    std::fs::remove_file(&path).ok();
}
