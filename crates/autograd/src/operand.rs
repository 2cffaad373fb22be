//! What a backward rule computes with. One rule body serves both passes: on the fast
//! path every operand is a plain [`Tensor`]; when a gradient is asked for with
//! `create_graph`, every operand is a [`Var`] and each step of the rule is recorded, so
//! the gradient can be differentiated again, to any order.

use chainrule_tensor::{Element, Shape, Tensor};
use smallvec::SmallVec;

use crate::ops::reduce::signed;
use crate::{Result, Unary, Var};

/// A value inside a backward rule: a tensor (first-order fast path) or a recorded
/// [`Var`] (`create_graph`). Both kinds offer the same methods, so a rule is written
/// once; a rule may also `match` on the kind to use a fused kernel on the fast path.
///
/// ```
/// use chainrule_autograd::{grad, GradOptions, Grads, Operand, Saved, Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_vec(vec![2.0], &[1])?);
/// // cube(x) with its rule 3x²·g, written once for both passes
/// let xs = Saved::of(&x);
/// let y = tape.record("cube", x.value().map(|v| v * v * v), &[&x],
///     move |g: &Operand<f64>, _: &[bool]| {
///         let x = g.load(&xs);
///         Ok(Grads::from_iter([Some(g.mul(&x.mul(&x)?)?.scale(3.0))]))
///     })?;
/// let [dy] = &grad(&[&y], &[&x], &[], GradOptions::create_graph())?[..] else { panic!() };
/// assert_eq!(dy.value().data(), &[12.0]); // 3x²
/// let [d2y] = &grad(&[dy], &[&x], &[], GradOptions::default())?[..] else { panic!() };
/// assert_eq!(d2y.value().data(), &[12.0]); // 6x
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub enum Operand<T: Element> {
    /// A plain value: the fast path, nothing recorded.
    Tensor(Tensor<T>),
    /// A recorded value: the backward computation is itself on the tape. Boxed, so
    /// the fast path's operands stay the size of a tensor.
    Var(Box<Var<T>>),
}

/// What a rule returns: one optional contribution per input, in input order. A
/// contribution may have the op's broadcast output shape; the engine sums it down to
/// the input's shape.
pub type Grads<T> = SmallVec<[Option<Operand<T>>; 3]>;

/// A forward value a rule keeps for backward: its tensor and, when it was tracked, its
/// record, so that a recorded backward depends on it. It holds no tape handle (no
/// reference cycle between a tape and its rules).
#[derive(Clone, Debug)]
pub struct Saved<T: Element> {
    value: Tensor<T>,
    node: Option<usize>,
}

impl<T: Element> Saved<T> {
    /// Keeps `v` for a backward rule.
    #[inline]
    pub fn of(v: &Var<T>) -> Self {
        Saved {
            value: v.value().clone(),
            node: v.node(),
        }
    }

    /// Keeps the output of the op about to be recorded on `tape`: on the recorded path
    /// the rule then depends on that record itself. Call it right before
    /// `record_at`, with no record in between (the record gets the next position).
    #[inline]
    pub(crate) fn output(tape: &crate::Tape<T>, value: &Tensor<T>) -> Self {
        Saved {
            value: value.clone(),
            node: Some(tape.len()),
        }
    }

    /// The kept value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }
}

macro_rules! both {
    ($self:expr, $t:ident => $tensor:expr, $v:ident => $var:expr) => {
        match $self {
            Operand::Tensor($t) => Operand::Tensor($tensor),
            Operand::Var($v) => Operand::Var(Box::new($var)),
        }
    };
}

impl<T: Element> Operand<T> {
    /// The value, whichever the kind.
    pub fn value(&self) -> &Tensor<T> {
        match self {
            Operand::Tensor(t) => t,
            Operand::Var(v) => v.value(),
        }
    }

    /// The value's shape.
    pub fn shape(&self) -> &Shape {
        self.value().shape()
    }

    /// The value's dims.
    pub fn dims(&self) -> &[usize] {
        self.value().dims()
    }

    /// True on the recorded (`create_graph`) path.
    pub fn is_recorded(&self) -> bool {
        matches!(self, Operand::Var(_))
    }

    /// The value as a plain tensor (the recorded kind gives up its record).
    pub fn into_tensor(self) -> Tensor<T> {
        match self {
            Operand::Tensor(t) => t,
            Operand::Var(v) => v.value().clone(),
        }
    }

    /// A saved forward value, of the same kind as `self`: on the recorded path it is
    /// the forward `Var` itself, so the recorded gradient depends on it.
    pub fn load(&self, saved: &Saved<T>) -> Operand<T> {
        match self {
            Operand::Tensor(_) => Operand::Tensor(saved.value.clone()),
            Operand::Var(v) => Operand::Var(Box::new(Var::new(
                v.tape().clone(),
                saved.node,
                saved.value.clone(),
            ))),
        }
    }

    /// Data that carries no gradient (a mask, a one-hot matrix), of the same kind as
    /// `self`.
    pub fn constant(&self, t: Tensor<T>) -> Operand<T> {
        match self {
            Operand::Tensor(_) => Operand::Tensor(t),
            Operand::Var(v) => Operand::Var(Box::new(v.tape().constant(t))),
        }
    }

    /// Brings `other` to the kind of `self` (a tensor joins the recorded path as a
    /// constant).
    fn same_kind(&self, other: &Operand<T>) -> Operand<T> {
        match (self, other) {
            (Operand::Var(v), Operand::Tensor(t)) => {
                Operand::Var(Box::new(v.tape().constant(t.clone())))
            }
            _ => other.clone(),
        }
    }

    pub(crate) fn zip(
        &self,
        other: &Operand<T>,
        tensor: impl Fn(&Tensor<T>, &Tensor<T>) -> chainrule_tensor::TensorResult<Tensor<T>>,
        var: impl Fn(&Var<T>, &Var<T>) -> Result<Var<T>>,
    ) -> Result<Operand<T>> {
        Ok(match (self, other) {
            (Operand::Tensor(a), Operand::Tensor(b)) => Operand::Tensor(tensor(a, b)?),
            (Operand::Var(a), Operand::Var(b)) => Operand::Var(Box::new(var(a, b)?)),
            (Operand::Tensor(_), Operand::Var(_)) => {
                return other.same_kind(self).zip(other, tensor, var)
            }
            (Operand::Var(_), Operand::Tensor(_)) => {
                return self.zip(&self.same_kind(other), tensor, var)
            }
        })
    }

    /// a + b, broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn add(&self, b: &Operand<T>) -> Result<Operand<T>> {
        self.zip(b, |a, b| a.broadcast_zip(b, |x, y| x + y), Var::add)
    }

    /// a − b, broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn sub(&self, b: &Operand<T>) -> Result<Operand<T>> {
        self.zip(b, |a, b| a.broadcast_zip(b, |x, y| x - y), Var::sub)
    }

    /// a · b, broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn mul(&self, b: &Operand<T>) -> Result<Operand<T>> {
        self.zip(b, |a, b| a.broadcast_zip(b, |x, y| x * y), Var::mul)
    }

    /// a / b, broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn div(&self, b: &Operand<T>) -> Result<Operand<T>> {
        self.zip(b, |a, b| a.broadcast_zip(b, |x, y| x / y), Var::div)
    }

    /// c · x.
    pub fn scale(&self, c: f64) -> Operand<T> {
        both!(self, t => t.scale(T::from_f64(c)), v => v.mul_scalar(c))
    }

    /// −x.
    pub fn neg(&self) -> Operand<T> {
        both!(self, t => t.scale(-T::ONE), v => v.neg())
    }

    /// An elementwise function of the [`Unary`] table.
    pub fn unary(&self, f: Unary) -> Operand<T> {
        both!(self, t => f.map(t), v => v.unary(f))
    }

    /// Softmax along `dim`.
    ///
    /// # Errors
    /// `dim` out of range.
    pub fn softmax(&self, dim: usize) -> Result<Operand<T>> {
        Ok(both!(self, t => t.softmax(dim)?, v => v.softmax(dim as isize)?))
    }

    /// Same data, new shape.
    ///
    /// # Errors
    /// The sizes differ.
    pub fn reshape(&self, dims: &[usize]) -> Result<Operand<T>> {
        if self.dims() == dims {
            return Ok(self.clone());
        }
        let s = signed(dims);
        Ok(both!(self, t => t.reshape(&s)?, v => v.reshape(&s)?))
    }

    /// Broadcasts to `dims`.
    ///
    /// # Errors
    /// The shape does not broadcast.
    pub fn broadcast_to(&self, dims: &[usize]) -> Result<Operand<T>> {
        Ok(both!(self, t => t.broadcast_to(dims)?, v => v.broadcast_to(dims)?))
    }

    /// Sums broadcast copies back down to `shape`.
    ///
    /// # Errors
    /// `shape` does not broadcast to this value's shape.
    pub fn sum_to(&self, shape: &Shape) -> Result<Operand<T>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        Ok(both!(self, t => t.sum_to(shape)?, v => v.sum_to(shape)?))
    }

    /// Sum over `dims`.
    ///
    /// # Errors
    /// A dim out of range.
    pub fn sum_dims(&self, dims: &[usize], keepdim: bool) -> Result<Operand<T>> {
        let s = signed(dims);
        Ok(both!(self, t => t.sum_dims(dims, keepdim)?, v => v.sum_dims(&s, keepdim)?))
    }

    /// Reorders dims.
    ///
    /// # Errors
    /// Not a permutation.
    pub fn permute(&self, perm: &[usize]) -> Result<Operand<T>> {
        let s = signed(perm);
        Ok(both!(self, t => t.permute(perm)?, v => v.permute(&s)?))
    }

    /// Swaps two dims.
    ///
    /// # Errors
    /// A dim out of range.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Operand<T>> {
        Ok(both!(self, t => t.transpose(d0, d1)?,
            v => v.transpose(d0 as isize, d1 as isize)?))
    }

    /// The slice `start..start + length` of `dim`.
    ///
    /// # Errors
    /// The slice runs past the end.
    pub fn narrow(&self, dim: usize, start: usize, length: usize) -> Result<Operand<T>> {
        Ok(both!(self, t => t.narrow(dim, start, length)?,
            v => v.narrow(dim as isize, start, length)?))
    }

    /// Places this value at `start` of `dim` inside zeros of shape `full` (the adjoint
    /// of [`Operand::narrow`]).
    ///
    /// # Errors
    /// The value does not fit.
    pub fn unnarrow(&self, full: &Shape, dim: usize, start: usize) -> Result<Operand<T>> {
        Ok(both!(self, t => t.unnarrow(full, dim, start)?, v => v.unnarrow(full, dim, start)?))
    }

    /// Matrix product of the last two dims, each side optionally transposed.
    ///
    /// # Errors
    /// Inner dims differ or an operand has fewer than two dims.
    pub fn matmul_t(&self, ta: bool, b: &Operand<T>, tb: bool) -> Result<Operand<T>> {
        let t = |v: &Var<T>, on: bool| {
            if on {
                v.transpose(-2, -1)
            } else {
                Ok(v.clone())
            }
        };
        self.zip(
            b,
            |x, y| x.matmul_t(ta, y, tb),
            |x, y| t(x, ta)?.matmul(&t(y, tb)?),
        )
    }
}
