//! Save and load a module's parameters and buffers as safetensors, the format
//! PyTorch, JAX and candle users already exchange, keyed by name (`"0.weight"`,
//! `"bn.running_mean"`; integer buffers such as `num_batches_tracked` as `I64`, as
//! PyTorch writes them). [`load_with`] loads PyTorch's `state_dict` files with
//! `strict: false`, renaming (a `module.` prefix, one submodule of a larger model) and
//! F32 ↔ F64 conversion.
//!
//! Loading reads only regular files and never more than the file holds; every size the
//! header declares is checked against the file before any tensor is read, and a
//! malformed file is an error that says what is wrong and where. Saving writes a
//! uniquely named temporary file beside the target, syncs it, renames it into place and
//! syncs the directory, removing the temporary on any failure.
//!
//! ```
//! use chainrule_nn::{checkpoint, layers::Linear, Module};
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let a = Linear::<f32>::new(3, 2, &mut rng)?;
//! let b = Linear::<f32>::new(3, 2, &mut rng)?;
//! let path = std::env::temp_dir().join("chainrule-doc-example.safetensors");
//! checkpoint::save(&a, &path)?;
//! checkpoint::load(&b, &path)?;
//! assert_eq!(a.weight.value(), b.weight.value());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), chainrule_nn::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chainrule_autograd::{Element, IntTensor, Param, Tensor};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{Buffer, BufferValue, Error, ModuleState, Result};

pub(crate) fn dtype_of<T: Element>() -> Dtype {
    match T::DTYPE {
        "F64" => Dtype::F64,
        _ => Dtype::F32,
    }
}

/// One named entry of a module's state.
enum Slot<T: Element> {
    Param(Param<T>),
    Buffer(Buffer<T>),
}

/// A value read from a file, checked against its slot.
enum Loaded<T: Element> {
    Float(Tensor<T>),
    Int(IntTensor),
}

impl<T: Element> Slot<T> {
    fn dims(&self) -> Vec<usize> {
        match self {
            Slot::Param(p) => p.dims(),
            Slot::Buffer(b) => b.get().dims().to_vec(),
        }
    }

    fn dtype(&self) -> Dtype {
        match self {
            Slot::Buffer(b) if matches!(b.get(), BufferValue::Int(_)) => Dtype::I64,
            _ => dtype_of::<T>(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Slot::Param(p) => T::to_le_bytes_vec(p.value().data()),
            Slot::Buffer(b) => match b.get() {
                BufferValue::Float(t) => T::to_le_bytes_vec(t.data()),
                BufferValue::Int(t) => t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
        }
    }

    fn set(&self, value: Loaded<T>) {
        match (self, value) {
            (Slot::Param(p), Loaded::Float(t)) => p.set(t),
            (Slot::Buffer(b), Loaded::Float(t)) => b.set_float(t),
            (Slot::Buffer(b), Loaded::Int(t)) => b.set_int(t),
            (Slot::Param(_), Loaded::Int(_)) => {
                unreachable!("dtypes are checked before any value is set")
            }
        }
    }
}

/// Every parameter and buffer of `module`, by name.
fn slots<T: Element>(module: &dyn ModuleState<T>) -> Vec<(String, Slot<T>)> {
    let mut out = Vec::new();
    module.visit_params("", &mut |n, p| {
        out.push((n.to_string(), Slot::Param(p.clone())))
    });
    module.visit_buffers("", &mut |n, b| {
        out.push((n.to_string(), Slot::Buffer(b.clone())))
    });
    out
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn checkpoint_error(path: &Path, problems: Vec<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        problems,
    }
}

/// Writes every parameter and buffer of `module` to `path`, atomically: a crash or an error never
/// leaves a half-written checkpoint at `path` nor a temporary file beside it, and two
/// saves to one path at once each write their own temporary.
///
/// # Errors
/// Two parameters share a name (checked before anything is written), or the file
/// cannot be written.
pub fn save<T: Element>(module: &dyn ModuleState<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let params = slots(module);
    let mut seen = HashSet::new();
    let duplicates: Vec<String> = params
        .iter()
        .filter(|(n, _)| !seen.insert(n.as_str()))
        .map(|(n, _)| format!("two parameters or buffers are named {n:?}"))
        .collect();
    if !duplicates.is_empty() {
        return Err(checkpoint_error(path, duplicates));
    }
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|(n, p)| (n.clone(), p.dtype(), p.dims(), p.bytes()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, dtype, dims, b)| Ok((n.clone(), TensorView::new(*dtype, dims.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| checkpoint_error(path, vec![e.to_string()]))?;
    let data = safetensors::serialize(views, &None)
        .map_err(|e| checkpoint_error(path, vec![e.to_string()]))?;
    write_atomically(path, &data)
}

/// A temporary name beside `path`, unique to this process and call.
fn temporary_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = temporary_beside(path);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // best effort: the temporary may not exist if creating it failed
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    // The rename is durable only once the directory entry is on disk.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Reads a whole regular file, refusing devices, FIFOs and directories (which could
/// stream forever or block), and never reading past the size it had when opened.
pub(crate) fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(Error::Data {
            path: path.display().to_string(),
            reason: "not a regular file (a device, FIFO or directory is refused)".into(),
        });
    }
    let file = std::fs::File::open(path).map_err(io(path))?;
    let size = meta.len();
    let mut bytes = Vec::new();
    let capacity = usize::try_from(size).map_err(|_| Error::Data {
        path: path.display().to_string(),
        reason: format!("{size} bytes do not fit in memory on this machine"),
    })?;
    bytes.try_reserve_exact(capacity).map_err(|_| Error::Data {
        path: path.display().to_string(),
        reason: format!("cannot allocate {size} bytes to read it"),
    })?;
    file.take(size).read_to_end(&mut bytes).map_err(io(path))?;
    Ok(bytes)
}

/// Checks the header of a safetensors file against its size, naming the first defect:
/// the 8-byte header length, the JSON, and for every tensor its dtype, shape and data
/// offsets (each within the data section, each the size its shape and dtype need, and
/// together covering the section).
pub(crate) fn check_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(format!(
            "the file has {} bytes, fewer than the 8-byte header length",
            bytes.len()
        ));
    };
    let declared = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    let available = bytes.len() as u64 - 8;
    if declared > available {
        return Err(format!(
            "the header length is {declared} bytes but only {available} bytes follow it"
        ));
    }
    let header_end = 8 + declared as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| format!("the {declared}-byte header is not valid JSON: {e}"))?;
    let Some(entries) = header.as_object() else {
        return Err("the header is not a JSON object".into());
    };
    let data_len = (bytes.len() - header_end) as u64;
    let mut covered = 0u64;
    for (name, info) in entries.iter().filter(|(n, _)| *n != "__metadata__") {
        let dtype = info["dtype"].as_str().unwrap_or("?");
        let size: u64 = match dtype {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
            other => return Err(format!("tensor {name:?} has an unknown dtype {other:?}")),
        };
        let shape: Option<Vec<u64>> = info["shape"]
            .as_array()
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let Some(shape) = shape else {
            return Err(format!("tensor {name:?} has no valid shape"));
        };
        let offsets: Option<Vec<u64>> = info["data_offsets"]
            .as_array()
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let Some(&[begin, end]) = offsets.as_deref() else {
            return Err(format!("tensor {name:?} has no valid data_offsets"));
        };
        let needed = shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("tensor {name:?}: shape {shape:?} overflows"))?;
        if begin > end || end > data_len {
            return Err(format!(
                "tensor {name:?} claims bytes {begin}..{end} of a {data_len}-byte data section"
            ));
        }
        if end - begin != needed {
            return Err(format!(
                "tensor {name:?} ({dtype}, shape {shape:?}) needs {needed} bytes but its offsets {begin}..{end} hold {}",
                end - begin
            ));
        }
        covered = covered.max(end);
    }
    if covered != data_len {
        return Err(format!(
            "the tensors cover {covered} bytes of the {data_len}-byte data section"
        ));
    }
    Ok(())
}

/// Loads `path` into `module`'s parameters and buffers. Names, shapes and dtypes must match
/// exactly; on any mismatch nothing is changed and the error lists every problem
/// (missing, unexpected, wrong shape, wrong dtype). A truncated or malformed file is
/// an error that says what is wrong, never a panic. [`load_with`] relaxes the rules.
///
/// # Errors
/// The file is not a regular file or cannot be read, is not valid safetensors, or does
/// not match the module.
pub fn load<T: Element>(module: &dyn ModuleState<T>, path: impl AsRef<Path>) -> Result<()> {
    load_with(module, path, &LoadOptions::default()).map(drop)
}

/// Maps a file's tensor name to the module's (`None`: skip the tensor).
pub type Rename = Box<dyn Fn(&str) -> Option<String>>;

/// How [`load_with`] matches a file to a module: PyTorch's `strict=False`, renaming
/// (a DDP `module.` prefix, a submodule moved), and dtype conversion.
///
/// ```
/// use chainrule_nn::checkpoint::LoadOptions;
/// let options = LoadOptions { strict: false, cast: true, ..LoadOptions::default() }
///     .strip_prefix("module.");
/// assert!(!options.strict);
/// ```
pub struct LoadOptions {
    /// Missing and unexpected tensors are errors (PyTorch's default); when false they
    /// are returned in the [`LoadReport`]. A shape mismatch is an error either way.
    pub strict: bool,
    /// Convert F32 ↔ F64 tensors to the module's float type (and I32 → I64 buffers);
    /// off, another dtype is an error.
    pub cast: bool,
    /// Maps each name in the file to the module's name; `None` skips the entry.
    pub rename: Option<Rename>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            strict: true,
            cast: false,
            rename: None,
        }
    }
}

impl LoadOptions {
    /// Renames every file entry with `rename` (`None` skips it), after any earlier
    /// renaming.
    ///
    /// ```
    /// use chainrule_nn::checkpoint::LoadOptions;
    /// let o = LoadOptions::default().rename(|n| Some(n.replace("encoder.", "body.")));
    /// assert!(o.rename.is_some());
    /// ```
    pub fn rename(mut self, rename: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.rename = Some(match self.rename.take() {
            Some(first) => Box::new(move |n| first(n).and_then(|m| rename(&m))),
            None => Box::new(rename),
        });
        self
    }

    /// Removes `prefix` from the file's names that have it (PyTorch's
    /// `consume_prefix_in_state_dict_if_present`, for checkpoints saved from a
    /// `DistributedDataParallel` wrapper as `module.…`).
    ///
    /// ```
    /// use chainrule_nn::checkpoint::LoadOptions;
    /// let o = LoadOptions::default().strip_prefix("module.");
    /// assert_eq!((o.rename.as_ref().unwrap())("module.fc.weight").as_deref(), Some("fc.weight"));
    /// ```
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.to_string();
        self.rename(move |n| Some(n.strip_prefix(prefix.as_str()).unwrap_or(n).to_string()))
    }

    /// Keeps only the file's entries under `prefix`, without it: loads a submodule from
    /// a whole model's checkpoint.
    ///
    /// ```
    /// use chainrule_nn::checkpoint::LoadOptions;
    /// let o = LoadOptions::default().only_under("encoder.");
    /// let f = o.rename.as_ref().unwrap();
    /// assert_eq!((f("encoder.0.weight").as_deref(), f("head.weight")), (Some("0.weight"), None));
    /// ```
    pub fn only_under(self, prefix: &str) -> Self {
        let prefix = prefix.to_string();
        self.rename(move |n| n.strip_prefix(prefix.as_str()).map(str::to_string))
    }
}

/// What a non-strict [`load_with`] left out, as PyTorch's `load_state_dict` returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The module's parameters and buffers the file does not hold (left unchanged).
    pub missing: Vec<String>,
    /// The file's entries (after renaming) the module does not have (ignored).
    pub unexpected: Vec<String>,
}

/// Loads `path` into `module` as `options` say, and reports what was left out. Nothing
/// changes unless every problem that remains an error is absent.
///
/// ```
/// use chainrule_nn::checkpoint::{self, LoadOptions};
/// use chainrule_nn::layers::{Linear, Sequential};
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let small = Sequential::<f64>::new().push(Linear::new(3, 2, &mut rng)?);
/// let path = std::env::temp_dir().join("chainrule-doc-load-with.safetensors");
/// checkpoint::save(&small, &path)?;
/// // an f32 model with one more layer: cast the f64 file, report the rest
/// let big = Sequential::<f32>::new()
///     .push(Linear::new(3, 2, &mut rng)?)
///     .push(Linear::new(2, 2, &mut rng)?);
/// let options = LoadOptions { strict: false, cast: true, ..LoadOptions::default() };
/// let report = checkpoint::load_with(&big, &path, &options)?;
/// assert_eq!(report.missing, ["1.bias", "1.weight"]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
///
/// # Errors
/// As [`load`], except that with `strict: false` missing and unexpected tensors are
/// reported instead, and with `cast: true` a float dtype is converted.
pub fn load_with<T: Element>(
    module: &dyn ModuleState<T>,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let path = path.as_ref();
    let bytes = read_regular_file(path)?;
    let fail = |problems: Vec<String>| checkpoint_error(path, problems);
    check_header(&bytes).map_err(|p| fail(vec![format!("not a valid safetensors file: {p}")]))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(vec![format!("not a valid safetensors file: {e}")]))?;
    // the module's name for each file entry kept
    let mut by_name: HashMap<String, String> = HashMap::new();
    let mut problems = Vec::new();
    let mut file_names: Vec<&String> = st.names();
    file_names.sort_unstable();
    for file_name in file_names {
        let name = match &options.rename {
            Some(f) => match f(file_name) {
                Some(n) => n,
                None => continue,
            },
            None => file_name.clone(),
        };
        if let Some(other) = by_name.insert(name.clone(), file_name.clone()) {
            problems.push(format!("{other:?} and {file_name:?} both map to {name:?}"));
        }
    }
    let mut report = LoadReport::default();
    let mut values: HashMap<String, Loaded<T>> = HashMap::new();
    let params = slots(module);
    for (name, p) in &params {
        let Some(file_name) = by_name.get(name) else {
            report.missing.push(name.clone());
            continue;
        };
        let view = st
            .tensor(file_name)
            .map_err(|e| fail(vec![e.to_string()]))?;
        let shown = if file_name == name {
            format!("{name:?}")
        } else {
            format!("{file_name:?} (as {name:?})")
        };
        if view.shape() != p.dims() {
            problems.push(format!(
                "{shown} has shape {:?}, the module expects {:?}",
                view.shape(),
                p.dims()
            ));
            continue;
        }
        match read_value::<T>(&view, p.dtype(), options.cast) {
            Ok(v) => {
                values.insert(name.clone(), v);
            }
            Err(why) => problems.push(format!("{shown} {why}")),
        }
    }
    report.unexpected = by_name
        .keys()
        .filter(|n| !params.iter().any(|(p, _)| p == *n))
        .cloned()
        .collect();
    report.missing.sort_unstable();
    report.unexpected.sort_unstable();
    if options.strict {
        problems.extend(
            report
                .missing
                .iter()
                .map(|n| format!("missing tensor {n:?}")),
        );
        problems.extend(
            report
                .unexpected
                .iter()
                .map(|n| format!("unexpected tensor {n:?}")),
        );
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    for (name, p) in &params {
        if let Some(v) = values.remove(name) {
            p.set(v);
        }
    }
    Ok(report)
}

/// A file tensor as a value for a slot of dtype `want`, converting between float
/// dtypes (and I32 → I64) only when `cast`; the error completes "{name} …".
fn read_value<T: Element>(
    view: &TensorView<'_>,
    want: Dtype,
    cast: bool,
) -> std::result::Result<Loaded<T>, String> {
    let (have, data, dims) = (view.dtype(), view.data(), view.shape());
    if have != want && !cast {
        return Err(format!(
            "has dtype {have:?}, the module expects {want:?} (LoadOptions::cast converts)"
        ));
    }
    let partial = || format!("has {} data bytes for shape {dims:?}", data.len());
    let float = |values: Option<Vec<T>>| {
        values
            .and_then(|d| Tensor::from_vec(d, dims).ok())
            .map(Loaded::Float)
            .ok_or_else(partial)
    };
    match (want, have) {
        (Dtype::I64, Dtype::I64) => read_i64(data),
        (Dtype::I64, Dtype::I32) => Some(
            data.chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("chunks of 4"))))
                .collect(),
        ),
        (Dtype::I64, other) => return Err(format!("has dtype {other:?}, the module expects I64")),
        (_, Dtype::F32 | Dtype::F64) => return float(floats_as::<T>(have, data)),
        (_, other) => {
            return Err(format!(
                "has dtype {other:?}, the module expects {want:?} (only F32 and F64 convert)"
            ))
        }
    }
    .and_then(|d| IntTensor::from_vec(d, dims).ok())
    .map(Loaded::Int)
    .ok_or_else(partial)
}

/// The F32 or F64 values of `bytes` (little-endian, of `dtype`) as `T`, converting
/// between the two float types; `None` for another dtype or a partial value.
pub(crate) fn floats_as<T: Element>(dtype: Dtype, bytes: &[u8]) -> Option<Vec<T>> {
    let own = if T::DTYPE == "F64" {
        Dtype::F64
    } else {
        Dtype::F32
    };
    match dtype {
        d if d == own => T::from_le_bytes_slice(bytes),
        Dtype::F64 => {
            f64::from_le_bytes_slice(bytes).map(|v| v.into_iter().map(T::from_f64).collect())
        }
        Dtype::F32 => f32::from_le_bytes_slice(bytes)
            .map(|v| v.into_iter().map(|x| T::from_f64(f64::from(x))).collect()),
        _ => None,
    }
}

/// Little-endian `i64`s; `None` when the length is not a multiple of 8.
pub(crate) fn read_i64(bytes: &[u8]) -> Option<Vec<i64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect(),
    )
}
