//! The MNIST database (LeCun, Cortes, Burges) in its original IDX format, gzip
//! compressed, with a seeded shuffling batch iterator.
//!
//! ```no_run
//! let data = chainrule_nn::mnist::Mnist::load("data/mnist")?;
//! for (images, labels) in data.train.batches(64, Some(0)).take(1) {
//!     assert_eq!(images.dims(), &[64, 1, 28, 28]);
//!     assert_eq!(labels.len(), 64);
//! }
//! # Ok::<(), chainrule_nn::Error>(())
//! ```

use std::io::Read;
use std::path::Path;

use chainrule_autograd::{Tape, Tensor};
use flate2::read::GzDecoder;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::{Error, Module, Result};

/// Pixel mean and standard deviation of the training set (the usual normalization).
pub const MEAN: f32 = 0.1307;
/// See [`MEAN`].
pub const STD: f32 = 0.3081;

/// How pixel bytes become inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pixels {
    /// `(pixel/255 − MEAN)/STD`: zero mean and unit variance over the training set.
    Normalized,
    /// `pixel/255`, in [0, 1] (torchvision's `ToTensor`).
    Unit,
}

/// One split: images `[len, 28·28]` row-major, and labels `0..10`.
pub struct Split {
    /// 784 values per image, scaled as [`Pixels`] says.
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<usize>,
}

/// The training (60,000) and test (10,000) splits.
pub struct Mnist {
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
}

impl Mnist {
    /// Reads the four standard `*-ubyte.gz` files from `dir`, normalized
    /// ([`Pixels::Normalized`]).
    ///
    /// # Errors
    /// A file is missing, not gzip, has the wrong magic number, or is truncated.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(dir, Pixels::Normalized)
    }

    /// Reads the four standard files from `dir` with the given pixel scaling.
    ///
    /// ```no_run
    /// use chainrule_nn::mnist::{Mnist, Pixels};
    /// let data = Mnist::load_with("data/mnist", Pixels::Unit)?;
    /// assert!(data.train.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    /// # Ok::<(), chainrule_nn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Mnist::load`].
    pub fn load_with(dir: impl AsRef<Path>, pixels: Pixels) -> Result<Self> {
        let dir = dir.as_ref();
        let split =
            |images: &str, labels: &str| Split::load(&dir.join(images), &dir.join(labels), pixels);
        Ok(Mnist {
            train: split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?,
            test: split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?,
        })
    }
}

/// Reads an IDX file: big-endian magic (`0x0000080N`, N dims), N extents, then bytes.
/// Decompression stops at the size the header declares (a gzip bomb cannot grow past
/// it), and the declared size is a checked product of the dims.
///
/// # Errors
/// Not a regular file, not gzip, a wrong magic number, an overflowing or truncated
/// header, or data shorter or longer than the header declares.
pub fn read_idx(path: &Path, want_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |reason: String| Error::Data {
        path: path.display().to_string(),
        reason,
    };
    let file = crate::checkpoint::read_regular_file(path)?;
    let mut gz = GzDecoder::new(file.as_slice());
    let mut header = vec![0u8; 4 * (want_dims + 1)];
    gz.read_exact(&mut header).map_err(|e| {
        bad(format!(
            "cannot decompress the {}-byte header: {e} (not gzip, or shorter than its header)",
            header.len()
        ))
    })?;
    let word = |i: usize| u32::from_be_bytes(header[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let magic = word(0) as usize;
    if magic != 0x800 + want_dims {
        return Err(bad(format!(
            "magic {magic:#x}, expected {:#x}",
            0x800 + want_dims
        )));
    }
    let dims: Vec<usize> = (1..=want_dims).map(|i| word(i) as usize).collect();
    let need = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n < isize::MAX as usize)
        .ok_or_else(|| bad(format!("header dims {dims:?} overflow")))?;
    // read one byte more than declared, to tell "exactly" from "too much"
    let mut bytes = Vec::new();
    gz.take(need as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot decompress: {e}")))?;
    if bytes.len() != need {
        let found = if bytes.len() > need {
            "more".to_string()
        } else {
            bytes.len().to_string()
        };
        return Err(bad(format!(
            "header {dims:?} declares {need} data bytes, found {found}"
        )));
    }
    Ok((dims, bytes))
}

impl Split {
    fn load(images: &Path, labels: &Path, scaling: Pixels) -> Result<Self> {
        let (idims, pixels) = read_idx(images, 3)?;
        let (ldims, label_bytes) = read_idx(labels, 1)?;
        if idims[0] != ldims[0] || idims[1..] != [28, 28] {
            return Err(Error::Data {
                path: images.display().to_string(),
                reason: format!(
                    "images {idims:?} do not match {} labels of 28×28 digits",
                    ldims[0]
                ),
            });
        }
        if let Some(l) = label_bytes.iter().find(|&&l| l > 9) {
            return Err(Error::Data {
                path: labels.display().to_string(),
                reason: format!("label {l} outside 0..10"),
            });
        }
        Ok(Split {
            images: pixels
                .iter()
                .map(|&p| match scaling {
                    Pixels::Normalized => (p as f32 / 255.0 - MEAN) / STD,
                    Pixels::Unit => p as f32 / 255.0,
                })
                .collect(),
            labels: label_bytes.into_iter().map(usize::from).collect(),
        })
    }

    /// The fraction of this split that `model` classifies correctly (arg-max of its
    /// logits), evaluated without recording, 1000 images at a time.
    ///
    /// # Errors
    /// Whatever the model's forward pass reports.
    pub fn accuracy(&self, model: &dyn Module<f32>) -> chainrule_autograd::Result<f64> {
        let tape = Tape::new();
        let _off = tape.no_grad();
        let mut correct = 0;
        for (x, labels) in self.batches(1000, None) {
            let (_, predicted) = model
                .forward(&tape.constant(x))?
                .value()
                .max_dim(1, false)?;
            correct += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
        }
        Ok(correct as f64 / self.len().max(1) as f64)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Batches of `[b, 1, 28, 28]` images and their labels, in an order shuffled by
    /// `seed` (or in file order for `None`); the last batch may be smaller.
    pub fn batches(
        &self,
        batch_size: usize,
        seed: Option<u64>,
    ) -> impl Iterator<Item = (Tensor<f32>, Vec<usize>)> + '_ {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        let batch_size = batch_size.max(1);
        (0..order.len().div_ceil(batch_size)).map(move |b| {
            self.gather(&order[b * batch_size..((b + 1) * batch_size).min(order.len())])
                .expect("indices of a permutation of the split")
        })
    }

    /// The images `[idx.len(), 1, 28, 28]` and labels at `idx`, in that order (a
    /// sampler's batch, as in distributed training).
    ///
    /// ```no_run
    /// use chainrule_nn::mnist::Mnist;
    /// let data = Mnist::load("data/mnist")?;
    /// let (x, labels) = data.train.gather(&[5, 0, 7])?;
    /// assert_eq!((x.dims(), labels.len()), (&[3, 1, 28, 28][..], 3));
    /// # Ok::<(), chainrule_nn::Error>(())
    /// ```
    ///
    /// # Errors
    /// An index is not below [`Split::len`].
    pub fn gather(&self, idx: &[usize]) -> Result<(Tensor<f32>, Vec<usize>)> {
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(Error::Invalid {
                what: "mnist gather",
                reason: format!("index {bad} is outside a split of {} images", self.len()),
            });
        }
        let mut images = Vec::with_capacity(idx.len() * 784);
        idx.iter()
            .for_each(|&i| images.extend_from_slice(&self.images[i * 784..(i + 1) * 784]));
        let t = Tensor::from_vec(images, &[idx.len(), 1, 28, 28])?;
        Ok((t, idx.iter().map(|&i| self.labels[i]).collect()))
    }
}
