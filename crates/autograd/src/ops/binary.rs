//! Elementwise binary ops with NumPy broadcasting. Rules return contributions in the
//! output's (broadcast) shape; the engine sums them down to each input's shape.

use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::error::InOp;
use crate::{Grads, Operand, Result, Saved, Site, Unary, Var};

/// The binary ops: forward formula and the two partial derivatives.
#[derive(Clone, Copy)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
        }
    }

    #[inline(always)]
    fn forward<T: Element>(self, a: T, b: T) -> T {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Maximum => a.max(b),
            Binary::Minimum => a.min(b),
        }
    }

    /// (∂f/∂a, ∂f/∂b) at (a, b). `maximum` and `minimum` split a tie evenly and, when
    /// either side is NaN, pass the whole gradient to both, as PyTorch does.
    fn partials<T: Element>(self, a: T, b: T) -> (T, T) {
        let half = T::from_f64(0.5);
        match self {
            Binary::Add => (T::ONE, T::ONE),
            Binary::Sub => (T::ONE, -T::ONE),
            Binary::Mul => (b, a),
            Binary::Div => (T::ONE / b, -a / (b * b)),
            Binary::Maximum if a > b => (T::ONE, T::ZERO),
            Binary::Maximum if a < b => (T::ZERO, T::ONE),
            Binary::Maximum if a == b => (half, half),
            Binary::Maximum => (T::ONE, T::ONE),
            Binary::Minimum if a < b => (T::ONE, T::ZERO),
            Binary::Minimum if a > b => (T::ZERO, T::ONE),
            Binary::Minimum if a == b => (half, half),
            Binary::Minimum => (T::ONE, T::ONE),
        }
    }
}

/// `f(a, b)` under broadcasting: one arm per op, so each loop is compiled for one
/// formula and vectorises (a match on `op` inside the loop would stay per element).
fn apply<T: Element>(op: Binary, a: &Tensor<T>, b: &Tensor<T>) -> TensorResult<Tensor<T>> {
    match op {
        Binary::Add => a.broadcast_zip(b, |x, y| Binary::Add.forward(x, y)),
        Binary::Sub => a.broadcast_zip(b, |x, y| Binary::Sub.forward(x, y)),
        Binary::Mul => a.broadcast_zip(b, |x, y| Binary::Mul.forward(x, y)),
        Binary::Div => a.broadcast_zip(b, |x, y| Binary::Div.forward(x, y)),
        Binary::Maximum => a.broadcast_zip(b, |x, y| Binary::Maximum.forward(x, y)),
        Binary::Minimum => a.broadcast_zip(b, |x, y| Binary::Minimum.forward(x, y)),
    }
}

/// `∂f/∂(input)` at every element of the broadcast shape, for input `which`.
fn partial<T: Element>(
    op: Binary,
    a: &Tensor<T>,
    b: &Tensor<T>,
    which: usize,
) -> TensorResult<Tensor<T>> {
    a.broadcast_zip(b, |x, y| {
        let (da, db) = op.partials(x, y);
        if which == 0 {
            da
        } else {
            db
        }
    })
}

/// `g · ∂f/∂(input)` in the output's shape, for input `which` (0 = a, 1 = b).
fn contribution<T: Element>(
    op: Binary,
    g: &Tensor<T>,
    a: &Tensor<T>,
    b: &Tensor<T>,
    which: usize,
) -> TensorResult<Tensor<T>> {
    match (op, which) {
        (Binary::Add, _) | (Binary::Sub, 0) => Ok(g.clone()),
        (Binary::Sub, _) => Ok(g.scale(-T::ONE)),
        (Binary::Mul, 0) => g.broadcast_zip(b, |g, b| g * b),
        (Binary::Mul, _) => g.broadcast_zip(a, |g, a| g * a),
        _ => g.broadcast_zip(&partial(op, a, b, which)?, |g, d| g * d),
    }
}

/// The same contribution as recorded ops, for the `create_graph` path.
fn recorded<T: Element>(
    op: Binary,
    g: &Operand<T>,
    a: &Operand<T>,
    b: &Operand<T>,
    which: usize,
) -> Result<Operand<T>> {
    match (op, which) {
        (Binary::Add, _) | (Binary::Sub, 0) => Ok(g.clone()),
        (Binary::Sub, _) => Ok(g.neg()),
        (Binary::Mul, 0) => g.mul(b),
        (Binary::Mul, _) => g.mul(a),
        (Binary::Div, 0) => g.div(b),
        (Binary::Div, _) => Ok(g.mul(a)?.div(&b.unary(Unary::Square))?.neg()),
        // piecewise constant partials: a mask
        (Binary::Maximum | Binary::Minimum, _) => {
            g.mul(&g.constant(partial(op, a.value(), b.value(), which)?))
        }
    }
}

impl<T: Element> Var<T> {
    #[track_caller]
    fn binary(&self, rhs: &Var<T>, op: Binary) -> Result<Var<T>> {
        let site = Site::caller();
        self.tape().check_inputs(op.name(), site, &[self, rhs])?;
        let y = apply(op, self.value(), rhs.value()).in_op(op.name(), site)?;
        let (a, b) = (Saved::of(self), Saved::of(rhs));
        let rule = move |g: &Operand<T>, needs: &[bool]| -> Result<Grads<T>> {
            let part = |which: usize| -> Result<Option<Operand<T>>> {
                if !needs[which] {
                    return Ok(None);
                }
                Ok(Some(match g {
                    Operand::Tensor(g) => {
                        Operand::Tensor(contribution(op, g, a.value(), b.value(), which)?)
                    }
                    Operand::Var(_) => recorded(op, g, &g.load(&a), &g.load(&b), which)?,
                }))
            };
            Ok(Grads::from_iter([part(0)?, part(1)?]))
        };
        self.tape()
            .record_at(op.name(), site, y, &[self, rhs], rule)
    }

    /// a + b, broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast; operands on different tapes.
    #[track_caller]
    pub fn add(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Add)
    }

    /// a − b, broadcasting.
    ///
    /// # Errors
    /// As [`Var::add`].
    #[track_caller]
    pub fn sub(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Sub)
    }

    /// a · b elementwise, broadcasting.
    ///
    /// # Errors
    /// As [`Var::add`].
    #[track_caller]
    pub fn mul(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Mul)
    }

    /// a / b elementwise, broadcasting.
    ///
    /// # Errors
    /// As [`Var::add`].
    #[track_caller]
    pub fn div(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Div)
    }

    /// Elementwise maximum, broadcasting; a tie sends half the gradient to each side.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.leaf(Tensor::from_vec(vec![1.0, 5.0], &[2])?);
    /// let b = tape.constant(Tensor::from_vec(vec![3.0], &[1])?);
    /// assert_eq!(a.maximum(&b)?.value().data(), &[3.0, 5.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::add`].
    #[track_caller]
    pub fn maximum(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Maximum)
    }

    /// Elementwise minimum, broadcasting; a tie sends half the gradient to each side.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.leaf(Tensor::from_vec(vec![1.0, 5.0], &[2])?);
    /// let b = tape.constant(Tensor::from_vec(vec![3.0], &[1])?);
    /// assert_eq!(a.minimum(&b)?.value().data(), &[1.0, 3.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Var::add`].
    #[track_caller]
    pub fn minimum(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.binary(rhs, Binary::Minimum)
    }
}
