//! Reshapes and data movement. Each rule moves the gradient back the way the data came.

use chainrule_tensor::{Element, Tensor};

use crate::error::InOp;
use crate::ops::one;
use crate::ops::reduce::signed;
use crate::{Grads, Operand, Result, Site, Var};
use chainrule_tensor::Shape;

impl<T: Element> Var<T> {
    /// Same data, new shape; one entry may be `-1`.
    ///
    /// # Errors
    /// The sizes differ or the shape is malformed.
    #[track_caller]
    pub fn reshape(&self, shape: &[isize]) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self.value().reshape(shape).in_op("reshape", site)?;
        let back = self.dims().to_vec();
        self.tape().record_at(
            "reshape",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.reshape(&back)?)),
        )
    }

    /// The same data under `shape`, recorded as `op` (flatten, squeeze, unsqueeze).
    fn view_as(&self, op: &'static str, site: Site, shape: &[isize]) -> Result<Var<T>> {
        let y = self.value().reshape(shape).in_op(op, site)?;
        let back = self.dims().to_vec();
        self.tape()
            .record_at(op, site, y, &[self], move |g: &Operand<T>, _: &[bool]| {
                Ok(one(g.reshape(&back)?))
            })
    }

    /// Removes dim `dim` if its extent is 1 (else returns the same shape), or with
    /// `None` every dim of extent 1 (PyTorch's `squeeze`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::zeros(&[1, 3, 1])?);
    /// assert_eq!(x.squeeze(Some(0))?.dims(), &[3, 1]);
    /// assert_eq!(x.squeeze(Some(1))?.dims(), &[1, 3, 1]);
    /// assert_eq!(x.squeeze(None)?.dims(), &[3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Var<T>> {
        let site = Site::caller();
        let dims = self.dims();
        let keep: Vec<isize> = match dim {
            None => signed(&dims.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>()),
            Some(dim) => {
                let d = self.shape().resolve_dim(dim).in_op("squeeze", site)?;
                let mut s = signed(dims);
                if dims[d] == 1 {
                    s.remove(d);
                }
                s
            }
        };
        self.view_as("squeeze", site, &keep)
    }

    /// Inserts a dim of extent 1 at `dim`, which may be `-(ndim+1)..=ndim` (PyTorch's
    /// `unsqueeze`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::zeros(&[2, 3])?);
    /// assert_eq!(x.unsqueeze(1)?.dims(), &[2, 1, 3]);
    /// assert_eq!(x.unsqueeze(-1)?.dims(), &[2, 3, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let d = insert_position(self.shape(), dim).in_op("unsqueeze", site)?;
        let mut s = signed(self.dims());
        s.insert(d, 1);
        self.view_as("unsqueeze", site, &s)
    }

    /// Joins same-shaped parts along a new dim `dim` (PyTorch's `stack`; `dim` may be
    /// `-(ndim+1)..=ndim`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor, Var};
    /// let tape = Tape::<f32>::new();
    /// let (a, b) = (tape.leaf(Tensor::zeros(&[2, 3])?), tape.leaf(Tensor::ones(&[2, 3])?));
    /// assert_eq!(Var::stack(&[&a, &b], 0)?.dims(), &[2, 2, 3]);
    /// assert_eq!(Var::stack(&[&a, &b], -1)?.dims(), &[2, 3, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// No parts, parts of different shapes, `dim` out of range, parts on different
    /// tapes.
    #[track_caller]
    pub fn stack(parts: &[&Var<T>], dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let first = parts.first().ok_or(crate::Error::Op {
            op: "stack",
            site,
            source: chainrule_tensor::TensorError::Shape("stack of no tensors".into()),
        })?;
        if let Some(p) = parts.iter().find(|p| p.shape() != first.shape()) {
            return Err(crate::Error::Op {
                op: "stack",
                site,
                source: chainrule_tensor::TensorError::Shape(format!(
                    "parts of shapes {} and {} (stack needs equal shapes)",
                    first.shape(),
                    p.shape()
                )),
            });
        }
        let d = insert_position(first.shape(), dim).in_op("stack", site)?;
        let lifted = parts
            .iter()
            .map(|p| p.unsqueeze(d as isize))
            .collect::<Result<Vec<_>>>()?;
        Var::concat(&lifted.iter().collect::<Vec<_>>(), d as isize)
    }

    /// Flattens dims `start_dim..` into one (PyTorch's `flatten(start_dim)`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::zeros(&[64, 3, 12, 12])?);
    /// assert_eq!(x.flatten(1)?.dims(), &[64, 432]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `start_dim` out of range.
    #[track_caller]
    pub fn flatten(&self, start_dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        if self.value().ndim() == 0 {
            return self.reshape(&[1]);
        }
        let d = self.shape().resolve_dim(start_dim).in_op("flatten", site)?;
        // the flattened extent is the product of the trailing dims, not an inferred -1:
        // an empty batch [0, 3, 12, 12] flattens to [0, 432], as in PyTorch
        let mut shape = signed(&self.dims()[..d]);
        shape.push(self.dims()[d..].iter().product::<usize>() as isize);
        self.view_as("flatten", site, &shape)
    }

    /// Reorders dims: output dim `i` is input dim `dims[i]`.
    ///
    /// # Errors
    /// `dims` is not a permutation of the input's dims.
    #[track_caller]
    pub fn permute(&self, dims: &[isize]) -> Result<Var<T>> {
        let site = Site::caller();
        let perm: Vec<usize> = dims
            .iter()
            .map(|&d| self.shape().resolve_dim(d))
            .collect::<Result<_, _>>()
            .in_op("permute", site)?;
        let y = self.value().permute(&perm).in_op("permute", site)?;
        let mut inverse = vec![0; perm.len()];
        perm.iter().enumerate().for_each(|(i, &p)| inverse[p] = i);
        self.tape().record_at(
            "permute",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.permute(&inverse)?)),
        )
    }

    /// Swaps two dims.
    ///
    /// # Errors
    /// A dim out of range.
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let d0 = self.shape().resolve_dim(dim0).in_op("transpose", site)?;
        let d1 = self.shape().resolve_dim(dim1).in_op("transpose", site)?;
        let y = self.value().transpose(d0, d1).in_op("transpose", site)?;
        self.tape().record_at(
            "transpose",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.transpose(d0, d1)?)),
        )
    }

    /// Broadcasts to a larger shape; the rule sums the copies back.
    ///
    /// # Errors
    /// The shape does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .broadcast_to(shape)
            .in_op("broadcast_to", site)?;
        let back = self.shape().clone();
        self.tape().record_at(
            "broadcast_to",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.sum_to(&back)?)),
        )
    }

    /// Joins values along `dim`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor, Var};
    /// let tape = Tape::<f32>::new();
    /// let a = tape.leaf(Tensor::zeros(&[2, 3])?);
    /// let b = tape.leaf(Tensor::zeros(&[2, 2])?);
    /// assert_eq!(Var::concat(&[&a, &b], 1)?.dims(), &[2, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// No parts, different tapes, or shapes that differ off `dim`.
    #[track_caller]
    pub fn concat(parts: &[&Var<T>], dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let first = parts.first().ok_or(crate::Error::Op {
            op: "concat",
            site,
            source: chainrule_tensor::TensorError::Attr {
                attr: "tensors",
                reason: "needs at least one tensor".into(),
            },
        })?;
        first.tape().check_inputs("concat", site, parts)?;
        let d = first.shape().resolve_dim(dim).in_op("concat", site)?;
        let values: Vec<&Tensor<T>> = parts.iter().map(|p| p.value()).collect();
        let y = Tensor::concat(&values, d).in_op("concat", site)?;
        let lengths: Vec<usize> = parts.iter().map(|p| p.dims()[d]).collect();
        let rule = move |g: &Operand<T>, needs: &[bool]| {
            let mut start = 0;
            let mut out = Grads::new();
            for (&len, &need) in lengths.iter().zip(needs) {
                out.push(if need {
                    Some(g.narrow(d, start, len)?)
                } else {
                    None
                });
                start += len;
            }
            Ok(out)
        };
        first.tape().record_at("concat", site, y, parts, rule)
    }

    /// The slice `start..start + length` of `dim`.
    ///
    /// # Errors
    /// `dim` out of range or the slice runs past the end.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, length: usize) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("narrow", site)?;
        let y = self
            .value()
            .narrow(d, start, length)
            .in_op("narrow", site)?;
        let full = self.shape().clone();
        self.tape().record_slice_at(
            "narrow",
            site,
            y,
            self,
            (d, start),
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.unnarrow(&full, d, start)?)),
        )
    }
}

impl<T: Element> Var<T> {
    /// Sums broadcast copies down to `shape` (the adjoint of [`Var::broadcast_to`]).
    ///
    /// ```
    /// use chainrule_autograd::{Shape, Tape, Tensor};
    /// let x = Tape::<f32>::new().leaf(Tensor::ones(&[4, 3])?);
    /// assert_eq!(x.sum_to(&Shape::new(&[1, 3])?)?.value().data(), &[4.0; 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `shape` does not broadcast to this value's shape.
    #[track_caller]
    pub fn sum_to(&self, shape: &Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self.value().sum_to(shape).in_op("sum_to", site)?;
        let back = self.dims().to_vec();
        self.tape().record_at(
            "sum_to",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.broadcast_to(&back)?)),
        )
    }

    /// This value placed at `start` of `dim` inside zeros of shape `full` (the adjoint
    /// of [`Var::narrow`]).
    ///
    /// # Errors
    /// The value does not fit inside `full` at `start`.
    #[track_caller]
    pub fn unnarrow(&self, full: &Shape, dim: usize, start: usize) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .unnarrow(full, dim, start)
            .in_op("unnarrow", site)?;
        let length = self.dims().get(dim).copied().unwrap_or(0);
        self.tape().record_at(
            "unnarrow",
            site,
            y,
            &[self],
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.narrow(dim, start, length)?)),
        )
    }
}

/// Where a new dim goes for `dim` in `-(ndim+1)..=ndim`.
fn insert_position(shape: &Shape, dim: isize) -> chainrule_tensor::TensorResult<usize> {
    let n = shape.ndim() as isize + 1;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(chainrule_tensor::TensorError::DimOutOfRange {
            dim,
            ndim: shape.ndim(),
            shape: shape.clone(),
        });
    }
    Ok(d as usize)
}
