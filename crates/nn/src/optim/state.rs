//! An optimizer's saved state (PyTorch's `optimizer.state_dict()`): per-group
//! hyperparameters, including a learning rate a schedule changed, and each
//! parameter's step count and buffers, stored as safetensors so a run resumes exactly.
//!
//! File layout: `param_groups.{g}.{name}` (F64 scalars; booleans as 0/1),
//! `param_groups.{g}.params` (I64 positions), `state.{i}.step` (I64),
//! `state.{i}.{scalar}` (F64) and `state.{i}.{buffer}` (the parameters' dtype, flat),
//! with the optimizer's name in the metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chainrule_autograd::Element;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::ParamState;
use crate::checkpoint::{
    check_header, dtype_of, floats_as, read_i64, read_regular_file, write_atomically,
};
use crate::{Error, Result};

/// One parameter group's saved hyperparameters and the positions of its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// Hyperparameters by PyTorch's names, sorted by name.
    pub hyper: Vec<(String, f64)>,
    /// Positions of the group's parameters over all groups.
    pub params: Vec<usize>,
}

/// Everything an optimizer needs to continue a run: see
/// [`super::Optimizer::state_dict`].
///
/// ```
/// use chainrule_autograd::{Param, Tape, Tensor};
/// use chainrule_nn::optim::{Optimizer, OptimizerState, Sgd};
/// let w = Param::new(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])?);
/// let mut opt = Sgd::new(vec![w.clone()], 0.1)?.momentum(0.9)?;
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// let path = std::env::temp_dir().join("chainrule-doc-optim-state.safetensors");
/// opt.state_dict().save(&path)?;
/// let mut fresh = Sgd::new(vec![w.clone()], 0.5)?;
/// fresh.load_state_dict(&OptimizerState::load(&path)?)?;
/// assert_eq!(fresh.state_dict(), opt.state_dict()); // momentum buffer and lr restored
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// The optimizer's name (`"Sgd"`, `"Adam"`, …).
    pub optimizer: String,
    /// The names of the per-element buffers, in slot order.
    pub slot_names: Vec<String>,
    /// The names of the scalar state values, in order.
    pub scalar_names: Vec<String>,
    /// Each group's hyperparameters and parameters.
    pub groups: Vec<GroupState>,
    /// Each parameter's state (`None`: never updated), by position.
    pub params: Vec<Option<ParamState<T>>>,
}

fn problem(path: &Path, p: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        problems: vec![p.into()],
    }
}

impl<T: Element> OptimizerState<T> {
    /// Writes the state to `path` atomically (see [`crate::checkpoint::save`]).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let f64_bytes = |v: f64| v.to_le_bytes().to_vec();
        for (g, group) in self.groups.iter().enumerate() {
            for (name, v) in &group.hyper {
                entries.push((
                    format!("param_groups.{g}.{name}"),
                    Dtype::F64,
                    vec![],
                    f64_bytes(*v),
                ));
            }
            let params: Vec<u8> = group
                .params
                .iter()
                .flat_map(|&i| (i as i64).to_le_bytes())
                .collect();
            entries.push((
                format!("param_groups.{g}.params"),
                Dtype::I64,
                vec![group.params.len()],
                params,
            ));
        }
        let dtype = dtype_of::<T>();
        for (i, s) in self.params.iter().enumerate() {
            let Some(s) = s else { continue };
            let step = i64::try_from(s.step).unwrap_or(i64::MAX);
            entries.push((
                format!("state.{i}.step"),
                Dtype::I64,
                vec![],
                step.to_le_bytes().to_vec(),
            ));
            for (name, v) in self.scalar_names.iter().zip(&s.scalars) {
                entries.push((
                    format!("state.{i}.{name}"),
                    Dtype::F64,
                    vec![],
                    f64_bytes(*v),
                ));
            }
            for (name, slot) in self.slot_names.iter().zip(&s.slots) {
                if !slot.is_empty() {
                    entries.push((
                        format!("state.{i}.{name}"),
                        dtype,
                        vec![slot.len()],
                        T::to_le_bytes_vec(slot),
                    ));
                }
            }
        }
        let views = entries
            .iter()
            .map(|(n, d, dims, b)| Ok((n.clone(), TensorView::new(*d, dims.clone(), b)?)))
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| problem(path, e.to_string()))?;
        let metadata = HashMap::from([
            ("format".to_string(), "chainrule-optimizer".to_string()),
            ("optimizer".to_string(), self.optimizer.clone()),
            ("slots".to_string(), self.slot_names.join(",")),
            ("scalars".to_string(), self.scalar_names.join(",")),
            ("groups".to_string(), self.groups.len().to_string()),
            ("params".to_string(), self.params.len().to_string()),
        ]);
        let data = safetensors::serialize(views, &Some(metadata))
            .map_err(|e| problem(path, e.to_string()))?;
        write_atomically(path, &data)
    }

    /// Reads a state [`OptimizerState::save`] wrote; buffers saved in the other float
    /// dtype are converted.
    ///
    /// # Errors
    /// The file cannot be read, is not valid safetensors, or is not an optimizer state
    /// (the error says which entry is wrong).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_regular_file(path)?;
        check_header(&bytes)
            .map_err(|p| problem(path, format!("not a valid safetensors file: {p}")))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| problem(path, format!("not a valid safetensors file: {e}")))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| problem(path, format!("not a valid safetensors file: {e}")))?;
        let meta: BTreeMap<String, String> = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let field = |k: &str| {
            meta.get(k).cloned().ok_or_else(|| {
                problem(
                    path,
                    format!("not an optimizer state: no {k:?} in the metadata"),
                )
            })
        };
        if field("format")? != "chainrule-optimizer" {
            return Err(problem(
                path,
                "not an optimizer state (format is not chainrule-optimizer)",
            ));
        }
        let names = |s: String| -> Vec<String> {
            s.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        };
        let count = |k: &str| -> Result<usize> {
            let v = field(k)?;
            v.parse()
                .map_err(|_| problem(path, format!("metadata {k:?} is {v:?}, not a count")))
        };
        let (slot_names, scalar_names) = (names(field("slots")?), names(field("scalars")?));
        let (n_groups, n_params) = (count("groups")?, count("params")?);
        let mut groups = Vec::new();
        let mut params: Vec<Option<ParamState<T>>> = Vec::new();
        // every entry must be claimed, so a stray one is reported rather than dropped
        let mut unclaimed: std::collections::BTreeSet<&str> =
            st.names().into_iter().map(String::as_str).collect();
        for g in 0..n_groups {
            let prefix = format!("param_groups.{g}.");
            let mut hyper = Vec::new();
            let mut positions = None;
            for name in st.names() {
                let Some(key) = name.strip_prefix(&prefix) else {
                    continue;
                };
                unclaimed.remove(name.as_str());
                let view = st.tensor(name).map_err(|e| problem(path, e.to_string()))?;
                if key == "params" {
                    positions = Some(read_i64s(path, name, &view)?);
                } else {
                    hyper.push((key.to_string(), read_f64(path, name, &view)?));
                }
            }
            hyper.sort_by(|a, b| a.0.cmp(&b.0));
            let positions = positions.ok_or_else(|| problem(path, format!("no {prefix}params")))?;
            let params = positions
                .into_iter()
                .map(|p| {
                    usize::try_from(p)
                        .map_err(|_| problem(path, format!("{prefix}params holds {p}")))
                })
                .collect::<Result<_>>()?;
            groups.push(GroupState { hyper, params });
        }
        for i in 0..n_params {
            let step_name = format!("state.{i}.step");
            let Ok(step) = st.tensor(&step_name) else {
                params.push(None);
                continue;
            };
            unclaimed.remove(step_name.as_str());
            let step = read_i64s(path, &step_name, &step)?;
            let step = match step[..] {
                [s] if s >= 0 => s as u64,
                _ => {
                    return Err(problem(
                        path,
                        format!("{step_name} is {step:?}, not a step count"),
                    ))
                }
            };
            let mut scalars = Vec::new();
            for s in &scalar_names {
                let name = format!("state.{i}.{s}");
                let view = st
                    .tensor(&name)
                    .map_err(|_| problem(path, format!("missing {name}")))?;
                unclaimed.remove(name.as_str());
                scalars.push(read_f64(path, &name, &view)?);
            }
            let mut slots = Vec::new();
            for s in &slot_names {
                let name = format!("state.{i}.{s}");
                let Ok(view) = st.tensor(&name) else {
                    slots.push(Vec::new());
                    continue;
                };
                unclaimed.remove(name.as_str());
                slots.push(read_floats::<T>(path, &name, &view)?);
            }
            params.push(Some(ParamState {
                step,
                scalars,
                slots,
            }));
        }
        if let Some(stray) = unclaimed.into_iter().next() {
            return Err(problem(path, format!("unexpected entry {stray:?}")));
        }
        Ok(OptimizerState {
            optimizer: field("optimizer")?,
            slot_names,
            scalar_names,
            groups,
            params,
        })
    }
}

fn read_f64(path: &Path, name: &str, view: &TensorView<'_>) -> Result<f64> {
    match (view.dtype(), view.data()) {
        (Dtype::F64, bytes) if bytes.len() == 8 => {
            Ok(f64::from_le_bytes(bytes.try_into().expect("8 bytes")))
        }
        (d, _) => Err(problem(
            path,
            format!("{name} is {d:?} of shape {:?}, not one F64", view.shape()),
        )),
    }
}

fn read_i64s(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<i64>> {
    match view.dtype() {
        Dtype::I64 => read_i64(view.data())
            .ok_or_else(|| problem(path, format!("{name} has a partial value"))),
        d => Err(problem(path, format!("{name} is {d:?}, not I64"))),
    }
}

fn read_floats<T: Element>(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<T>> {
    floats_as(view.dtype(), view.data()).ok_or_else(|| {
        problem(
            path,
            format!(
                "{name} is {:?} or partial, not a float buffer",
                view.dtype()
            ),
        )
    })
}
