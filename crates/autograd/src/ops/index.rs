//! Indexing by integer tensors: gather, index_select, embedding, scatter_add, `where`.
//! Each forward reads values by position and each backward adds them back by the same
//! positions; the two kernels (take and scatter-add, by flat position or by whole
//! rows) are each other's adjoint, so every op here — and the arg-max routing of `max`,
//! `max_pool2d` and `nll_loss` — can be differentiated to any order.

use std::sync::Arc;

use chainrule_tensor::kernels::index::gather_positions;
use chainrule_tensor::{Element, IntTensor, Shape, Tensor};

use crate::error::InOp;
use crate::ops::one;
use crate::ops::reduce::signed;
use crate::ops::shape_error;
use crate::{Grads, Operand, Result, Site, Var};

/// Positions read by a row take: the rows along `dim` and the one row (an embedding's
/// padding index) that reads as zeros and gets no gradient.
#[derive(Clone)]
pub(crate) struct Rows {
    dim: usize,
    rows: Arc<[usize]>,
    skip: Option<usize>,
}

impl<T: Element> Var<T> {
    /// `out[k] = self[index[k]]`, shaped `dims`, recorded as `op`.
    #[track_caller]
    pub(crate) fn take_flat(
        &self,
        op: &'static str,
        index: Arc<[usize]>,
        dims: Shape,
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self.value().take_flat(&index, &dims).in_op(op, site)?;
        let full = self.shape().clone();
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(g.scatter_add_flat(index.clone(), full.clone())?))
        };
        self.tape().record_at(op, site, y, &[self], rule)
    }

    /// Zeros of shape `full` with `self[k]` added at `index[k]`.
    #[track_caller]
    pub(crate) fn scatter_add_flat(&self, index: Arc<[usize]>, full: Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .scatter_add_flat(&index, &full)
            .in_op("scatter_add", site)?;
        let dims = self.shape().clone();
        let rule =
            move |g: &Operand<T>, _: &[bool]| Ok(one(g.take_flat(index.clone(), dims.clone())?));
        self.tape().record_at("scatter_add", site, y, &[self], rule)
    }

    /// Whole rows along `rows.dim`, recorded as `op`.
    #[track_caller]
    fn take_rows(&self, op: &'static str, rows: Rows) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .take_rows(rows.dim, &rows.rows, rows.skip)
            .in_op(op, site)?;
        let full = self.shape().clone();
        let rule = move |g: &Operand<T>, _: &[bool]| Ok(one(g.scatter_add_rows(&rows, &full)?));
        self.tape().record_at(op, site, y, &[self], rule)
    }

    /// Zeros of shape `full` with whole rows of `self` added at `rows`.
    #[track_caller]
    fn scatter_add_rows(&self, rows: Rows, full: Shape) -> Result<Var<T>> {
        let site = Site::caller();
        let y = self
            .value()
            .scatter_add_rows(rows.dim, &rows.rows, rows.skip, &full)
            .in_op("index_add", site)?;
        let rule = move |g: &Operand<T>, _: &[bool]| Ok(one(g.take_rows(&rows)?));
        self.tape().record_at("index_add", site, y, &[self], rule)
    }

    /// PyTorch's `gather`: `out[p] = self[p with p[dim] = index[p]]`, shaped like
    /// `index` (same rank as `self`, no larger outside `dim`).
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let y = x.gather(1, &IntTensor::from_vec(vec![1, 1, 0, 1], &[2, 2])?)?;
    /// assert_eq!(y.value().data(), &[2.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[0.0, 2.0, 1.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A rank or extent mismatch, `dim` out of range, or an index outside
    /// `0..self.dims()[dim]` (named with its position).
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &IntTensor) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("gather", site)?;
        let positions = gather_positions(self.shape(), d, index).in_op("gather", site)?;
        self.take_flat("gather", positions.into(), index.shape().clone())
    }

    /// PyTorch's `index_select`: the entries `index[k]` along `dim` (a 1-D index).
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let y = x.index_select(1, &IntTensor::from(vec![2, 0]))?;
    /// assert_eq!(y.value().data(), &[3.0, 1.0, 6.0, 4.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `index` not 1-D, `dim` out of range, or an index out of range.
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &IntTensor) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "index_select";
        let dim = self.shape().resolve_dim(dim).in_op(op, site)?;
        if index.dims().len() != 1 {
            return Err(shape_error(
                op,
                site,
                format!("index must be 1-D, got shape {}", index.shape()),
            ));
        }
        let rows = index.indices(self.dims()[dim], dim).in_op(op, site)?;
        self.take_rows(
            op,
            Rows {
                dim,
                rows: rows.into(),
                skip: None,
            },
        )
    }

    /// `self[index]` with an integer tensor, as PyTorch's advanced indexing along the
    /// first dim: shaped `index.dims() ++ self.dims()[1..]`; negative indices count from
    /// the end.
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let y = x.index(&IntTensor::from_vec(vec![-1, 0, 0, 1], &[2, 2])?)?;
    /// assert_eq!((y.dims(), y.value().data()), (&[2, 2][..], &[3.0, 1.0, 1.0, 2.0][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `self` is a scalar, or an index outside `-n..n`.
    #[track_caller]
    pub fn index(&self, index: &IntTensor) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "index";
        let Some(&n) = self.dims().first() else {
            return Err(shape_error(op, site, "a scalar cannot be indexed".into()));
        };
        let wrapped: Vec<i64> = index
            .data()
            .iter()
            .map(|&i| if i < 0 { i.saturating_add(n as i64) } else { i })
            .collect();
        let wrapped = IntTensor::from_vec(wrapped, index.dims()).in_op(op, site)?;
        let rows = wrapped.indices(n, 0).map_err(|e| match e {
            // report the caller's value, not the wrapped one
            chainrule_tensor::TensorError::IndexOutOfRange {
                position,
                bound,
                dim,
                ..
            } => {
                let at = index
                    .shape()
                    .dims()
                    .iter()
                    .zip(&position)
                    .fold(0, |k, (d, p)| k * d + p);
                chainrule_tensor::TensorError::IndexOutOfRange {
                    index: index.data()[at],
                    position,
                    bound,
                    dim,
                }
            }
            other => other,
        });
        let rows = rows.in_op(op, site)?;
        let y = self.take_rows(
            op,
            Rows {
                dim: 0,
                rows: rows.into(),
                skip: None,
            },
        )?;
        let mut dims = index.dims().to_vec();
        dims.extend_from_slice(&self.dims()[1..]);
        y.reshape(&signed(&dims))
    }

    /// An embedding lookup (PyTorch's `F.embedding(ids, weight, padding_idx)`), called
    /// on the weight `[num, dim]`: row `ids[p]` for every position, shaped
    /// `ids.dims() ++ [dim]`. The `padding_idx` row gets no gradient.
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let w = tape.leaf(Tensor::from_vec(vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0], &[3, 2])?);
    /// let y = w.embedding(&IntTensor::from(vec![2, 0, 2]), Some(0))?;
    /// assert_eq!(y.value().data(), &[3.0, 4.0, 0.0, 0.0, 3.0, 4.0]);
    /// let g = y.sum().backward()?;
    /// assert_eq!(g.wrt(&w).unwrap().data(), &[0.0, 0.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The weight is not 2-D, an id is outside `0..num`, or `padding_idx ≥ num`.
    #[track_caller]
    pub fn embedding(&self, ids: &IntTensor, padding_idx: Option<usize>) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "embedding";
        let &[num, width] = self.dims() else {
            return Err(shape_error(
                op,
                site,
                format!("weight must be [num, dim], got {}", self.shape()),
            ));
        };
        if let Some(p) = padding_idx.filter(|&p| p >= num) {
            return Err(crate::Error::Op {
                op,
                site,
                source: chainrule_tensor::TensorError::Attr {
                    attr: "padding_idx",
                    reason: format!("{p} is outside 0..{num}"),
                },
            });
        }
        let rows: Arc<[usize]> = ids.indices(num, 0).in_op(op, site)?.into();
        let mut dims = ids.dims().to_vec();
        dims.push(width);
        let y = self
            .value()
            .take_rows(0, &rows, None)
            .and_then(|y| y.reshape(&signed(&dims)))
            .in_op(op, site)?;
        let backward = Rows {
            dim: 0,
            rows,
            skip: padding_idx,
        };
        let (full, flat) = (self.shape().clone(), [backward.rows.len(), width]);
        let rule = move |g: &Operand<T>, _: &[bool]| {
            Ok(one(g.reshape(&flat)?.scatter_add_rows(&backward, &full)?))
        };
        self.tape().record_at(op, site, y, &[self], rule)
    }

    /// PyTorch's `x.scatter_add(dim, index, src)`: `self` with `src[p]` added at
    /// `p with p[dim] = index[p]`.
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::zeros(&[3])?);
    /// let src = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 4.0], &[3])?);
    /// let y = x.scatter_add(0, &IntTensor::from(vec![2, 0, 2]), &src)?;
    /// assert_eq!(y.value().data(), &[2.0, 0.0, 5.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `src`'s shape differs from `index`'s, a rank or extent mismatch, or an index out
    /// of range.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &IntTensor, src: &Var<T>) -> Result<Var<T>> {
        let site = Site::caller();
        let op = "scatter_add";
        self.tape().check_inputs(op, site, &[self, src])?;
        let d = self.shape().resolve_dim(dim).in_op(op, site)?;
        if src.shape() != index.shape() {
            return Err(shape_error(
                op,
                site,
                format!(
                    "src of shape {} for an index of shape {}",
                    src.shape(),
                    index.shape()
                ),
            ));
        }
        let positions = gather_positions(self.shape(), d, index).in_op(op, site)?;
        let scattered = src.scatter_add_flat(positions.into(), self.shape().clone())?;
        self.add(&scattered)
    }

    /// PyTorch's `torch.where(cond, a, b)`: `a` where `cond` is non-zero, `b`
    /// elsewhere, all three broadcast together.
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor, Var};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let b = tape.leaf(Tensor::scalar(-1.0));
    /// let y = Var::where_cond(&IntTensor::from(vec![0, 1]), &a, &b)?;
    /// assert_eq!(y.value().data(), &[-1.0, 2.0]);
    /// assert_eq!(y.sum().backward()?.wrt(&b).unwrap().data(), &[1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Shapes that do not broadcast; operands on different tapes.
    #[track_caller]
    pub fn where_cond(cond: &IntTensor, a: &Var<T>, b: &Var<T>) -> Result<Var<T>> {
        a.select("where", Site::caller(), cond, b)
    }

    /// `value` where `mask` is non-zero, `self` elsewhere (PyTorch's `masked_fill`);
    /// the mask broadcasts to `self`.
    ///
    /// ```
    /// use chainrule_autograd::{IntTensor, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let y = x.masked_fill(&IntTensor::from(vec![0, 1, 0]), f64::NEG_INFINITY)?;
    /// assert_eq!(y.value().data(), &[1.0, f64::NEG_INFINITY, 3.0]);
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[1.0, 0.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A mask that does not broadcast to `self`'s shape.
    #[track_caller]
    pub fn masked_fill(&self, mask: &IntTensor, value: f64) -> Result<Var<T>> {
        let site = Site::caller();
        let out = mask
            .shape()
            .broadcast(self.shape())
            .in_op("masked_fill", site)?;
        if out != *self.shape() {
            return Err(shape_error(
                "masked_fill",
                site,
                format!(
                    "mask of shape {} does not broadcast to {}",
                    mask.shape(),
                    self.shape()
                ),
            ));
        }
        let fill = self.tape().constant(Tensor::scalar(T::from_f64(value)));
        fill.select("masked_fill", site, mask, self)
    }

    /// `self` where `cond` is non-zero, `other` elsewhere, recorded as `op`.
    fn select(
        &self,
        op: &'static str,
        site: Site,
        cond: &IntTensor,
        other: &Var<T>,
    ) -> Result<Var<T>> {
        self.tape().check_inputs(op, site, &[self, other])?;
        let out = cond
            .shape()
            .broadcast(self.shape())
            .and_then(|s| s.broadcast(other.shape()))
            .in_op(op, site)?;
        let mask = cond
            .to_float::<T>()
            .map(|c| if c != T::ZERO { T::ONE } else { T::ZERO })
            .broadcast_to(out.dims())
            .in_op(op, site)?;
        let (a, b) = (
            self.value().broadcast_to(out.dims()).in_op(op, site)?,
            other.value().broadcast_to(out.dims()).in_op(op, site)?,
        );
        let y = mask
            .zip3_map(&a, &b, |m, a, b| if m != T::ZERO { a } else { b })
            .in_op(op, site)?;
        let rule = move |g: &Operand<T>, needs: &[bool]| -> Result<Grads<T>> {
            let part = |keep: T| -> Result<Option<Operand<T>>> {
                let pick = |m: T| if m == keep { T::ONE } else { T::ZERO };
                Ok(Some(match g {
                    Operand::Tensor(g) => {
                        Operand::Tensor(
                            g.zip_map(&mask, move |g, m| if m == keep { g } else { T::ZERO })?,
                        )
                    }
                    Operand::Var(_) => g.mul(&g.constant(mask.map(pick)))?,
                }))
            };
            Ok(Grads::from_iter([
                if needs[0] { part(T::ONE)? } else { None },
                if needs[1] { part(T::ZERO)? } else { None },
            ]))
        };
        self.tape().record_at(op, site, y, &[self, other], rule)
    }
}

impl<T: Element> Operand<T> {
    /// `out[k] = self[index[k]]`, shaped `dims`.
    pub(crate) fn take_flat(&self, index: Arc<[usize]>, dims: Shape) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.take_flat(&index, &dims)?),
            Operand::Var(v) => Operand::Var(Box::new(v.take_flat("take", index, dims)?)),
        })
    }

    /// Zeros of shape `full` with `self[k]` added at `index[k]`.
    pub(crate) fn scatter_add_flat(&self, index: Arc<[usize]>, full: Shape) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.scatter_add_flat(&index, &full)?),
            Operand::Var(v) => Operand::Var(Box::new(v.scatter_add_flat(index, full)?)),
        })
    }

    /// Whole rows along `rows.dim`.
    fn take_rows(&self, rows: &Rows) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.take_rows(rows.dim, &rows.rows, rows.skip)?),
            Operand::Var(v) => Operand::Var(Box::new(v.take_rows("take_rows", rows.clone())?)),
        })
    }

    /// Zeros of shape `full` with whole rows of `self` added at `rows`.
    fn scatter_add_rows(&self, rows: &Rows, full: &Shape) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => {
                Operand::Tensor(t.scatter_add_rows(rows.dim, &rows.rows, rows.skip, full)?)
            }
            Operand::Var(v) => {
                Operand::Var(Box::new(v.scatter_add_rows(rows.clone(), full.clone())?))
            }
        })
    }
}
