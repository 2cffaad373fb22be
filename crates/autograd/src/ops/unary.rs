//! Elementwise unary ops. One table: each row is a forward formula and its derivative,
//! and the same table drives the gradcheck tests.

use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::ops::one;
use crate::{Site, Var};

/// An elementwise function with its derivative. `derivative(x, y)` gets the input and
/// the output, so rules like `tanh' = 1 − y²` reuse the forward's work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// −x
    Neg,
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// max(x, 0); NaN stays NaN; derivative 0 where the output is ≤ 0 and 1 elsewhere,
    /// NaN included, as PyTorch
    Relu,
    /// 1 / (1 + e⁻ˣ)
    Sigmoid,
    /// tanh x
    Tanh,
    /// |x|; derivative sign(x), 0 at 0 and at NaN (PyTorch's `sgn`)
    Abs,
    /// x²
    Square,
    /// x for x > 0, slope·x otherwise
    LeakyRelu(f64),
    /// xᵖ; the derivative of x⁰ is 0 everywhere (PyTorch), not 0·x⁻¹
    Powf(f64),
    /// c·x
    Scale(f64),
    /// x + c
    AddScalar(f64),
}

impl Unary {
    /// Every op of the table with a representative attribute, for tests.
    pub const ALL: [Unary; 13] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Abs,
        Unary::Square,
        Unary::LeakyRelu(0.1),
        Unary::Powf(1.5),
        Unary::Scale(-2.5),
        Unary::AddScalar(0.7),
    ];

    /// The op's name as recorded on the tape (PyTorch's).
    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Relu => "relu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Abs => "abs",
            Unary::Square => "square",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Powf(_) => "powf",
            Unary::Scale(_) => "mul_scalar",
            Unary::AddScalar(_) => "add_scalar",
        }
    }

    /// f(x).
    #[inline]
    pub fn forward<T: Element>(self, x: T) -> T {
        let c = |v: f64| T::from_f64(v);
        match self {
            Unary::Neg => -x,
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Relu => x.max(T::ZERO),
            // Two branches keep exp's argument non-positive, so no overflow.
            Unary::Sigmoid if x >= T::ZERO => T::ONE / (T::ONE + (-x).exp()),
            Unary::Sigmoid => x.exp() / (T::ONE + x.exp()),
            Unary::Tanh => x.tanh(),
            Unary::Abs => x.abs(),
            Unary::Square => x * x,
            Unary::LeakyRelu(_) if x > T::ZERO => x,
            Unary::LeakyRelu(s) => x * c(s),
            Unary::Powf(p) => x.powf(c(p)),
            Unary::Scale(s) => x * c(s),
            Unary::AddScalar(a) => x + c(a),
        }
    }

    /// f'(x), given x and y = f(x).
    #[inline]
    pub fn derivative<T: Element>(self, x: T, y: T) -> T {
        let c = |v: f64| T::from_f64(v);
        let step = |pos: T, neg: T| if x > T::ZERO { pos } else { neg };
        match self {
            Unary::Neg => -T::ONE,
            Unary::Exp => y,
            Unary::Log => T::ONE / x,
            Unary::Sqrt => c(0.5) / y,
            Unary::Relu if y <= T::ZERO => T::ZERO,
            Unary::Relu => T::ONE,
            Unary::Sigmoid => y * (T::ONE - y),
            Unary::Tanh => T::ONE - y * y,
            Unary::Abs if x > T::ZERO => T::ONE,
            Unary::Abs if x < T::ZERO => -T::ONE,
            Unary::Abs => T::ZERO,
            Unary::Square => c(2.0) * x,
            Unary::LeakyRelu(s) => step(T::ONE, c(s)),
            Unary::Powf(0.0) => T::ZERO,
            Unary::Powf(p) => c(p) * x.powf(c(p - 1.0)),
            Unary::Scale(s) => c(s),
            Unary::AddScalar(_) => T::ONE,
        }
    }
}

/// Expands to a `match` over every variant in which `$body` sees the variant as the
/// constant `$f`, so each arm's loop is compiled for one function and vectorises.
macro_rules! for_each_variant {
    ($self:expr, $f:ident => $body:expr) => {
        match $self {
            Unary::Neg => {
                let $f = Unary::Neg;
                $body
            }
            Unary::Exp => {
                let $f = Unary::Exp;
                $body
            }
            Unary::Log => {
                let $f = Unary::Log;
                $body
            }
            Unary::Sqrt => {
                let $f = Unary::Sqrt;
                $body
            }
            Unary::Relu => {
                let $f = Unary::Relu;
                $body
            }
            Unary::Sigmoid => {
                let $f = Unary::Sigmoid;
                $body
            }
            Unary::Tanh => {
                let $f = Unary::Tanh;
                $body
            }
            Unary::Abs => {
                let $f = Unary::Abs;
                $body
            }
            Unary::Square => {
                let $f = Unary::Square;
                $body
            }
            Unary::LeakyRelu(s) => {
                let $f = Unary::LeakyRelu(s);
                $body
            }
            Unary::Powf(p) => {
                let $f = Unary::Powf(p);
                $body
            }
            Unary::Scale(c) => {
                let $f = Unary::Scale(c);
                $body
            }
            Unary::AddScalar(c) => {
                let $f = Unary::AddScalar(c);
                $body
            }
        }
    };
}

impl Unary {
    /// f applied to every element.
    pub fn map<T: Element>(self, x: &Tensor<T>) -> Tensor<T> {
        for_each_variant!(self, f => x.map(move |v| f.forward(v)))
    }

    /// `g · f'(x)` elementwise, given the input `x` and output `y`.
    ///
    /// # Errors
    /// The three shapes differ.
    pub fn vjp<T: Element>(
        self,
        g: &Tensor<T>,
        x: &Tensor<T>,
        y: &Tensor<T>,
    ) -> TensorResult<Tensor<T>> {
        for_each_variant!(self, f => g.zip3_map(x, y, move |g, x, y| g * f.derivative(x, y)))
    }
}

impl<T: Element> Var<T> {
    /// Applies an elementwise function from the [`Unary`] table and records its rule
    /// `dx = g · f'(x)`.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor, Unary};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![0.0], &[1])?);
    /// let y = x.unary(Unary::Sigmoid);
    /// assert_eq!(y.value().data(), &[0.5]);
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[0.25]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn unary(&self, f: Unary) -> Var<T> {
        let site = Site::caller();
        let y = f.map(self.value());
        let (x, yv) = (self.value().clone(), y.clone());
        let rule = move |g: &Tensor<T>, _: &[bool]| Ok(one(f.vjp(g, &x, &yv)?));
        self.tape()
            .record(f.name(), site, y, &[self], rule)
            .expect("one input is always on its own tape")
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:expr;)*) => {
        impl<T: Element> Var<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self) -> Var<T> {
                    self.unary($variant)
                }
            )*
        }
    };
}

unary_methods! {
    /// −x.
    neg => Unary::Neg;
    /// eˣ.
    exp => Unary::Exp;
    /// Natural logarithm.
    log => Unary::Log;
    /// Square root.
    sqrt => Unary::Sqrt;
    /// max(x, 0).
    relu => Unary::Relu;
    /// The logistic function.
    sigmoid => Unary::Sigmoid;
    /// Hyperbolic tangent.
    tanh => Unary::Tanh;
    /// |x|.
    abs => Unary::Abs;
    /// x².
    square => Unary::Square;
}

impl<T: Element> Var<T> {
    /// x for x > 0, `negative_slope`·x otherwise.
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f64) -> Var<T> {
        self.unary(Unary::LeakyRelu(negative_slope))
    }

    /// x raised to a real `exponent`.
    #[track_caller]
    pub fn powf(&self, exponent: f64) -> Var<T> {
        self.unary(Unary::Powf(exponent))
    }

    /// c·x.
    #[track_caller]
    pub fn mul_scalar(&self, c: f64) -> Var<T> {
        self.unary(Unary::Scale(c))
    }

    /// x + c.
    #[track_caller]
    pub fn add_scalar(&self, c: f64) -> Var<T> {
        self.unary(Unary::AddScalar(c))
    }
}
