//! Save and load a module's parameters as safetensors, the format PyTorch, JAX and
//! candle users already exchange, keyed by parameter name (`"0.weight"`).
//!
//! ```
//! use chainrule_nn::{checkpoint, layers::Linear, Module};
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let a = Linear::<f32>::new(3, 2, &mut rng);
//! let b = Linear::<f32>::new(3, 2, &mut rng);
//! let path = std::env::temp_dir().join("chainrule-doc-example.safetensors");
//! checkpoint::save(&a, &path)?;
//! checkpoint::load(&b, &path)?;
//! assert_eq!(a.weight.value(), b.weight.value());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), chainrule_nn::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use chainrule_autograd::{Element, Tensor};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{Error, Module, Result};

fn dtype_of<T: Element>() -> Dtype {
    match T::DTYPE {
        "F64" => Dtype::F64,
        _ => Dtype::F32,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes every parameter of `module` to `path`. The file is written beside the
/// target and renamed into place, so a crash never leaves a half-written checkpoint.
///
/// # Errors
/// The file cannot be written.
pub fn save<T: Element>(module: &dyn Module<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let params = module.named_parameters();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|(n, p)| (n.clone(), p.dims(), T::to_le_bytes_vec(p.borrow().data())))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, dims, b)| {
            Ok((
                n.clone(),
                TensorView::new(dtype_of::<T>(), dims.clone(), b)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::Checkpoint {
            path: path.display().to_string(),
            problems: vec![e.to_string()],
        })?;
    let data = safetensors::serialize(views, &None).map_err(|e| Error::Checkpoint {
        path: path.display().to_string(),
        problems: vec![e.to_string()],
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, data).map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Loads `path` into `module`'s parameters. Names, shapes and dtypes must match
/// exactly; on any mismatch nothing is changed and the error lists every problem
/// (missing, unexpected, wrong shape, wrong dtype). A truncated or malformed file is
/// an error, never a panic.
///
/// # Errors
/// The file cannot be read, is not valid safetensors, or does not match the module.
pub fn load<T: Element>(module: &dyn Module<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io(path))?;
    let fail = |problems: Vec<String>| Error::Checkpoint {
        path: path.display().to_string(),
        problems,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(vec![format!("not a valid safetensors file: {e}")]))?;
    let mut problems = Vec::new();
    let mut values: HashMap<String, Tensor<T>> = HashMap::new();
    let params = module.named_parameters();
    for (name, p) in &params {
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("missing tensor {name:?}"));
                continue;
            }
        };
        if view.dtype() != dtype_of::<T>() {
            problems.push(format!(
                "{name:?} has dtype {:?}, the module expects {}",
                view.dtype(),
                T::DTYPE
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
        match T::from_le_bytes_slice(view.data()).map(|d| Tensor::from_vec(d, view.shape())) {
            Some(Ok(t)) => {
                values.insert(name.clone(), t);
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
