//! Elementwise unary ops. One table, one row per op: variant, name, method, forward
//! formula, derivative, and the derivative again as recorded ops (for gradients of
//! gradients). The dispatch, the `Var` methods and the test list `Unary::ALL` are all
//! generated from it, so no op can be left out of its tests.

use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::{Grads, Operand, Result, Saved, Site, Var};

/// How the derivative is recorded on the `create_graph` path.
enum Recorded<T: Element> {
    /// Piecewise constant (its own derivative is 0 almost everywhere): the derivative's
    /// values, taken as a constant.
    Constant,
    /// An expression in the input `x` and output `y`.
    Expr(Operand<T>),
}

/// The `Var` method of each row: `x.tanh()`, `x.powf(exponent)`.
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $variant:ident $(($attr:ident))? => $method:ident;)*) => {
        impl<T: Element> Var<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $method(&self $(, $attr: f64)?) -> Var<T> {
                    self.unary(Unary::$variant $(($attr))?)
                }
            )*
        }
    };
}

macro_rules! unary_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $(($attr:ident: $sample:expr))? => $name:literal, $method:ident,
        forward |$x:ident| $forward:expr,
        derivative |$dx:ident, $dy:ident| $derivative:expr,
        recorded |$rx:ident, $ry:ident| $recorded:expr;
    )*) => {
        /// An elementwise function with its derivative. `derivative(x, y)` gets the input
        /// and the output, so rules like `tanh' = 1 − y²` reuse the forward's work.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Unary {
            $($(#[$doc])* $variant $((unary_table!(@ty $attr)))?,)*
        }

        impl Unary {
            /// Every op of the table with a representative attribute, for tests.
            pub const ALL: &'static [Unary] = &[$(Unary::$variant $(($sample))?,)*];

            /// The op's name as recorded on the tape (PyTorch's).
            pub fn name(self) -> &'static str {
                match self {
                    $(Unary::$variant $(($attr))? => { $(let _ = $attr;)? $name })*
                }
            }

            /// f(x).
            #[inline]
            #[allow(unused_variables)]
            pub fn forward<T: Element>(self, input: T) -> T {
                match self {
                    $(Unary::$variant $(($attr))? => { let $x = input; $forward })*
                }
            }

            /// f'(x), given x and y = f(x).
            #[inline]
            #[allow(unused_variables)]
            pub fn derivative<T: Element>(self, input: T, output: T) -> T {
                match self {
                    $(Unary::$variant $(($attr))? => { let ($dx, $dy) = (input, output); $derivative })*
                }
            }

            /// f' as recorded ops of `x` and `y`, for the `create_graph` path.
            #[allow(unused_variables)]
            fn recorded<T: Element>(self, input: &Operand<T>, output: &Operand<T>) -> Result<Recorded<T>> {
                Ok(match self {
                    $(Unary::$variant $(($attr))? => { let ($rx, $ry) = (input, output); $recorded })*
                })
            }

            /// f applied to every element.
            pub fn map<T: Element>(self, x: &Tensor<T>) -> Tensor<T> {
                // one arm per variant, so each loop is compiled for one function and
                // vectorises
                match self {
                    $(Unary::$variant $(($attr))? => {
                        let f = Unary::$variant $(($attr))?;
                        x.map(move |v| f.forward(v))
                    })*
                }
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
                match self {
                    $(Unary::$variant $(($attr))? => {
                        let f = Unary::$variant $(($attr))?;
                        g.zip3_map(x, y, move |g, x, y| g * f.derivative(x, y))
                    })*
                }
            }
        }

        unary_methods! { $($(#[$doc])* $variant $(($attr))? => $method;)* }
    };
    (@ty $attr:ident) => { f64 };
}

unary_table! {
    /// −x
    Neg => "neg", neg,
        forward |x| -x,
        derivative |x, y| -T::ONE,
        recorded |x, y| Recorded::Constant;
    /// eˣ
    Exp => "exp", exp,
        forward |x| x.exp(),
        derivative |x, y| y,
        recorded |x, y| Recorded::Expr(y.clone());
    /// ln x
    Log => "log", log,
        forward |x| x.ln(),
        derivative |x, y| T::ONE / x,
        recorded |x, y| Recorded::Expr(x.unary(Unary::Powf(-1.0)));
    /// √x
    Sqrt => "sqrt", sqrt,
        forward |x| x.sqrt(),
        derivative |x, y| T::from_f64(0.5) / y,
        recorded |x, y| Recorded::Expr(y.unary(Unary::Powf(-1.0)).scale(0.5));
    /// max(x, 0); NaN stays NaN; derivative 0 where the output is ≤ 0 and 1 elsewhere,
    /// NaN included, as PyTorch
    Relu => "relu", relu,
        forward |x| x.max(T::ZERO),
        derivative |x, y| if y <= T::ZERO { T::ZERO } else { T::ONE },
        recorded |x, y| Recorded::Constant;
    /// 1 / (1 + e⁻ˣ); two branches keep exp's argument non-positive, so no overflow
    Sigmoid => "sigmoid", sigmoid,
        forward |x| if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { x.exp() / (T::ONE + x.exp()) },
        derivative |x, y| y * (T::ONE - y),
        recorded |x, y| Recorded::Expr(y.sub(&y.unary(Unary::Square))?);
    /// tanh x
    Tanh => "tanh", tanh,
        forward |x| x.tanh(),
        derivative |x, y| T::ONE - y * y,
        recorded |x, y| Recorded::Expr(y.unary(Unary::Square).scale(-1.0).unary(Unary::AddScalar(1.0)));
    /// |x|; derivative sign(x), 0 at 0 and at NaN (PyTorch's `sgn`)
    Abs => "abs", abs,
        forward |x| x.abs(),
        derivative |x, y| if x > T::ZERO { T::ONE } else if x < T::ZERO { -T::ONE } else { T::ZERO },
        recorded |x, y| Recorded::Constant;
    /// x²
    Square => "square", square,
        forward |x| x * x,
        derivative |x, y| T::from_f64(2.0) * x,
        recorded |x, y| Recorded::Expr(x.scale(2.0));
    /// x for x > 0, slope·x otherwise
    LeakyRelu(negative_slope: 0.1) => "leaky_relu", leaky_relu,
        forward |x| if x > T::ZERO { x } else { x * T::from_f64(negative_slope) },
        derivative |x, y| if x > T::ZERO { T::ONE } else { T::from_f64(negative_slope) },
        recorded |x, y| Recorded::Constant;
    /// xᵖ; the derivative of x⁰ is 0 everywhere (PyTorch), not 0·x⁻¹
    Powf(exponent: 1.5) => "powf", powf,
        forward |x| x.powf(T::from_f64(exponent)),
        derivative |x, y| if exponent == 0.0 { T::ZERO } else { T::from_f64(exponent) * x.powf(T::from_f64(exponent - 1.0)) },
        recorded |x, y| if exponent == 0.0 { Recorded::Constant } else { Recorded::Expr(x.unary(Unary::Powf(exponent - 1.0)).scale(exponent)) };
    /// c·x
    Scale(c: -2.5) => "mul_scalar", mul_scalar,
        forward |x| x * T::from_f64(c),
        derivative |x, y| T::from_f64(c),
        recorded |x, y| Recorded::Constant;
    /// x + c
    AddScalar(c: 0.7) => "add_scalar", add_scalar,
        forward |x| x + T::from_f64(c),
        derivative |x, y| T::ONE,
        recorded |x, y| Recorded::Constant;
}

/// The rule of every unary op: `dx = g · f'(x)`, fused on the fast path.
fn vjp<T: Element>(f: Unary, g: &Operand<T>, x: &Saved<T>, y: &Saved<T>) -> Result<Operand<T>> {
    match g {
        Operand::Tensor(g) => Ok(Operand::Tensor(f.vjp(g, x.value(), y.value())?)),
        Operand::Var(_) => {
            let (xo, yo) = (g.load(x), g.load(y));
            let d = match f.recorded(&xo, &yo)? {
                Recorded::Expr(d) => d,
                Recorded::Constant => {
                    let d = x.value().zip_map(y.value(), |x, y| f.derivative(x, y))?;
                    g.constant(d)
                }
            };
            g.mul(&d)
        }
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
        let (xs, ys) = (Saved::of(self), Saved::output(self.tape(), &y));
        let rule =
            move |g: &Operand<T>, _: &[bool]| Ok(Grads::from_iter([Some(vjp(f, g, &xs, &ys)?)]));
        self.tape()
            .record_at(f.name(), site, y, &[self], rule)
            .expect("one input is always on its own tape")
    }
}
