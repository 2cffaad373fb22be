use std::fmt;
use std::panic::Location;

use chainrule_tensor::TensorError;

/// A source location: the line of user code that called an op.
///
/// ```
/// let site = chainrule_autograd::Site::caller();
/// assert!(site.to_string().contains(".rs:"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Site(&'static Location<'static>);

impl Site {
    /// The location of the caller (through any `#[track_caller]` frames).
    #[track_caller]
    pub fn caller() -> Self {
        Site(Location::caller())
    }

    /// The file, line and column.
    pub fn location(&self) -> &'static Location<'static> {
        self.0
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.0.file(), self.0.line(), self.0.column())
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything that can go wrong in chainrule — the engine, and the nn crate's files,
/// initializers and hyperparameters — as one type (`chainrule::Error`,
/// `chainrule_nn::Error` is the same). Each engine variant names the op and the line of
/// user code that called it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op rejected its inputs or attributes.
    #[error("{op} at {site}: {source}")]
    Op {
        /// The op's name (`conv2d`, `matmul`, ...).
        op: &'static str,
        /// Where it was called.
        site: Site,
        /// What was wrong.
        source: TensorError,
    },
    /// The operands of one op were recorded on different tapes.
    #[error("{op} at {site}: operands belong to different tapes")]
    TapeMismatch {
        /// The op's name.
        op: &'static str,
        /// Where it was called.
        site: Site,
    },
    /// A backward rule failed; the site is the line that recorded the op.
    #[error("backward of {op} (recorded at {site}): {source}")]
    Backward {
        /// The op whose rule failed.
        op: &'static str,
        /// Where the op was recorded.
        site: Site,
        /// What was wrong.
        source: TensorError,
    },
    /// A backward pass reached a record whose rule an earlier backward already ran and
    /// freed (as PyTorch frees its graph); record the forward pass again.
    #[error(
        "backward of {op} (recorded at {site}): an earlier backward already used and freed this part of the graph; record the forward pass again (one tape per pass)"
    )]
    GraphFreed {
        /// The op reached.
        op: &'static str,
        /// Where it was recorded.
        site: Site,
    },
    /// `backward` was called on something it cannot start from.
    #[error("backward at {site}: {reason}")]
    BackwardCall {
        /// Where `backward` was called.
        site: Site,
        /// Why it cannot run.
        reason: String,
    },
    /// An error inside a submodule of a container (`Sequential`), reported at the line
    /// that called the container and naming the submodule's path:
    /// `conv2d in "0" (Conv2d) of Sequential at src/main.rs:12:9: …`.
    #[error("{}", in_module_message(source, path, kind, container, site))]
    InModule {
        /// The submodule's path in the container, dotted for nested containers (`"1.0"`).
        path: String,
        /// The submodule's type (`Conv2d`).
        kind: &'static str,
        /// The container's type (`Sequential`).
        container: &'static str,
        /// Where the user called the container.
        site: Site,
        /// The submodule's error.
        source: Box<Error>,
    },
    /// `create_graph` reached an op whose rule works on tensors only
    /// ([`crate::Tape::record_first_order`]), so its gradient cannot be recorded.
    #[error("backward of {op} (recorded at {site}): its rule is first-order only (record_first_order), so create_graph cannot differentiate through it; write the rule over Operand with Tape::record")]
    NotDifferentiable {
        /// The op reached.
        op: &'static str,
        /// Where it was recorded.
        site: Site,
    },
    /// Anomaly mode found a NaN or ±inf.
    #[error("anomaly: {what} of {op} (recorded at {site})")]
    Anomaly {
        /// The op that produced it (`leaf` or `param` for an input).
        op: &'static str,
        /// The line that recorded the op.
        site: Site,
        /// Which value: the output, or the gradient for one of the op's inputs.
        what: String,
    },
    /// A gradient hook returned a replacement of the wrong shape.
    #[error("gradient hook registered at {site} returned shape {got:?} for a gradient of shape {expected:?} (of {op})")]
    HookShape {
        /// The op whose output (or the parameter) the hook is on.
        op: &'static str,
        /// Where the hook was registered.
        site: Site,
        /// The gradient's dims.
        expected: Vec<usize>,
        /// The dims the hook returned.
        got: Vec<usize>,
    },
    /// A hook was registered on a value no gradient flows through.
    #[error("register_hook at {site}: the value is not tracked (a constant, detached, or computed under no_grad)")]
    HookOnUntracked {
        /// Where the hook was registered.
        site: Site,
    },
    /// `grad` was asked for an input the outputs do not depend on.
    #[error("grad at {site}: the outputs do not depend on input {index} (not on the tape, or on no path to the outputs); pass allow_unused to get zeros")]
    UnusedInput {
        /// The input's position in the list passed to `grad`.
        index: usize,
        /// Where `grad` was called.
        site: Site,
    },
    /// Building or reshaping a tensor outside any op failed (`Tensor::from_vec`, ...).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint is malformed or does not match the module; lists every problem.
    #[error("checkpoint {path}: {}", problems.join("; "))]
    Checkpoint {
        /// The file.
        path: String,
        /// Each mismatch or defect found.
        problems: Vec<String>,
    },
    /// A data file is not what its format says.
    #[error("data file {path}: {reason}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An initializer cannot be applied to a shape, or a hyperparameter is invalid.
    #[error("{what}: {reason}")]
    Invalid {
        /// The initializer or optimizer.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// gradcheck found an element whose analytic and numeric gradients disagree.
    #[error("gradcheck: {0}")]
    Gradcheck(Box<crate::GradcheckMismatch>),
}

/// `op in "path" (Kind) of Container at site: reason`, with the op and reason taken from
/// the inner error so the library line the op ran on is replaced by the user's.
fn in_module_message(
    source: &Error,
    path: &str,
    kind: &str,
    container: &str,
    site: &Site,
) -> String {
    let place = format!("in {path:?} ({kind}) of {container} at {site}");
    match source {
        Error::Op { op, source, .. } => format!("{op} {place}: {source}"),
        Error::TapeMismatch { op, .. } => {
            format!("{op} {place}: operands belong to different tapes")
        }
        other => format!("{place}: {other}"),
    }
}

impl Error {
    /// Wraps an error raised by the submodule at `path` of a container called at
    /// `site`. An error that already came through a nested container keeps its
    /// innermost submodule and gains this container's path as a prefix.
    ///
    /// ```
    /// use chainrule_autograd::{Error, Site, TensorError};
    /// let inner = Error::Op { op: "conv2d", site: Site::caller(), source: TensorError::Shape("bad".into()) };
    /// let e = inner.in_module("0", "Conv2d", "Sequential", Site::caller());
    /// let outer = e.in_module("3", "Sequential", "Sequential", Site::caller());
    /// assert!(outer.to_string().starts_with("conv2d in \"3.0\" (Conv2d) of Sequential at "));
    /// ```
    pub fn in_module(
        self,
        path: &str,
        kind: &'static str,
        container: &'static str,
        site: Site,
    ) -> Error {
        match self {
            Error::InModule {
                path: inner,
                kind,
                source,
                ..
            } => Error::InModule {
                path: format!("{path}.{inner}"),
                kind,
                container,
                site,
                source,
            },
            other => Error::InModule {
                path: path.to_string(),
                kind,
                container,
                site,
                source: Box::new(other),
            },
        }
    }
}

/// The element whose analytic and numeric gradients disagree the most.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckMismatch {
    /// Which input (position in the list passed to gradcheck; for a module check, the
    /// position among the parameters, then the inputs).
    pub input: usize,
    /// The input's name: `"input 0"`, or a module parameter's (`"0.weight"`).
    pub name: String,
    /// The element's multi-index in that input.
    pub index: Vec<usize>,
    /// What backward delivered.
    pub analytic: f64,
    /// The central finite difference.
    pub numeric: f64,
    /// `atol + rtol·|numeric|` for this element.
    pub tolerance: f64,
    /// How many elements of all inputs failed.
    pub failed: usize,
}

impl fmt::Display for GradcheckMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} element {:?}: analytic {:.9e} vs numeric {:.9e} (error {:.3e} > tolerance {:.3e}; {} element(s) failed)",
            self.name,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs(),
            self.tolerance,
            self.failed
        )
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches an op name and call site to a kernel error.
pub(crate) trait InOp<V> {
    fn in_op(self, op: &'static str, site: Site) -> Result<V>;
}

impl<V> InOp<V> for std::result::Result<V, TensorError> {
    fn in_op(self, op: &'static str, site: Site) -> Result<V> {
        self.map_err(|source| Error::Op { op, site, source })
    }
}
