//! Save and load a module's parameters and buffers as safetensors, the format
//! PyTorch, JAX and candle users already exchange, keyed by name (`"0.weight"`,
//! `"bn.running_mean"`; integer buffers such as `num_batches_tracked` as `I64`, as
//! PyTorch writes them).
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

fn dtype_of<T: Element>() -> Dtype {
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
/// an error that says what is wrong, never a panic.
///
/// # Errors
/// The file is not a regular file or cannot be read, is not valid safetensors, or does
/// not match the module.
pub fn load<T: Element>(module: &dyn ModuleState<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_regular_file(path)?;
    let fail = |problems: Vec<String>| checkpoint_error(path, problems);
    check_header(&bytes).map_err(|p| fail(vec![format!("not a valid safetensors file: {p}")]))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(vec![format!("not a valid safetensors file: {e}")]))?;
    let mut problems = Vec::new();
    let mut values: HashMap<String, Loaded<T>> = HashMap::new();
    let params = slots(module);
    for (name, p) in &params {
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("missing tensor {name:?}"));
                continue;
            }
        };
        if view.dtype() != p.dtype() {
            problems.push(format!(
                "{name:?} has dtype {:?}, the module expects {:?}",
                view.dtype(),
                p.dtype()
            ));
            continue;
        }
        if view.shape() != p.dims() {
            problems.push(format!(
                "{name:?} has shape {:?}, the module expects {:?}",
                view.shape(),
                p.dims()
            ));
            continue;
        }
        let value = if p.dtype() == Dtype::I64 {
            read_i64(view.data())
                .and_then(|d| IntTensor::from_vec(d, view.shape()).ok())
                .map(Loaded::Int)
        } else {
            T::from_le_bytes_slice(view.data())
                .and_then(|d| Tensor::from_vec(d, view.shape()).ok())
                .map(Loaded::Float)
        };
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            _ => problems.push(format!(
                "{name:?} has {} data bytes for shape {:?}",
                view.data().len(),
                view.shape()
            )),
        }
    }
    let mut extra: Vec<&str> = st
        .names()
        .into_iter()
        .map(String::as_str)
        .filter(|n| !params.iter().any(|(p, _)| p == n))
        .collect();
    extra.sort_unstable();
    problems.extend(
        extra
            .into_iter()
            .map(|n| format!("unexpected tensor {n:?}")),
    );
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    for (name, p) in &params {
        if let Some(v) = values.remove(name) {
            p.set(v);
        }
    }
    Ok(())
}

/// Little-endian `i64`s; `None` when the length is not a multiple of 8.
fn read_i64(bytes: &[u8]) -> Option<Vec<i64>> {
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
