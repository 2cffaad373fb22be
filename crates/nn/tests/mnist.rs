//! The IDX reader on the project's copy of MNIST, and its errors on bad files.

use chainrule_nn::mnist::{read_idx, Mnist};
use chainrule_nn::Error;

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

#[test]
fn mnist_loads_with_the_published_label_counts() {
    let m = Mnist::load(data_dir()).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    let mut counts = [0usize; 10];
    m.train.labels.iter().for_each(|&l| counts[l] += 1);
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let (x, y) = m.test.batches(64, Some(3)).next().unwrap();
    assert_eq!((x.dims(), y.len()), (&[64, 1, 28, 28][..], 64));
    let last = m.test.batches(64, None).last().unwrap();
    assert_eq!(last.1.len(), 10_000 % 64);
    // shuffling is seeded: same seed, same order; other seed, other order
    let first = |s| m.train.batches(8, Some(s)).next().unwrap().1;
    assert_eq!(first(1), first(1));
    assert_ne!(first(1), first(2));
}

#[test]
fn bad_idx_files_are_reported() {
    let dir = std::env::temp_dir().join(format!("chainrule-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("not-gzip", b"plain".to_vec(), "cannot decompress"),
        ("magic", gz(&[0, 0, 8, 3, 0, 0, 0, 1]), "magic 0x803"),
        (
            "short",
            gz(&[0, 0, 8, 1, 0, 0, 0, 5, 1, 2]),
            "header [5] declares 5 data bytes, found 2",
        ),
        ("header", gz(&[0, 0]), "shorter than its header"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_idx(&path, 1).unwrap_err();
        assert!(
            matches!(err, Error::Data { .. }) && err.to_string().contains(needle),
            "{name}: {err}"
        );
    }
    assert!(matches!(Mnist::load(&dir), Err(Error::Io { .. })));
    std::fs::remove_dir_all(dir).unwrap();
}
