//! Elementwise unary ops. One table, one row per op: variant, name, method, forward
//! formula, derivative, and the derivative again as recorded ops (for gradients of
//! gradients). The dispatch, the `Var` methods and the test list `Unary::ALL` are all
//! generated from it, so no op can be left out of its tests.

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

use chainrule_tensor::kernels::activation;
use chainrule_tensor::{Element, Tensor, TensorResult};

use crate::{BackwardRule, Grads, Operand, Result, Saved, Site, Var};

/// How the derivative is recorded on the `create_graph` path.
enum Recorded<T: Element> {
    /// Piecewise constant (its own derivative is 0 almost everywhere): the derivative's
    /// values, taken as a constant.
    Constant,
    /// An expression in the input `x` and output `y`.
    Expr(Operand<T>),
}

/// Which value a unary op's rule keeps: the other one is never read by its
/// `derivative` or `recorded` formula, so keeping it would only hold its memory.
///
/// ```
/// use chainrule_autograd::{Saves, Unary};
/// assert_eq!(Unary::Relu.saves(), Saves::Output);
/// assert_eq!(Unary::Log.saves(), Saves::Input);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saves {
    /// The input x (`log`, `gelu`, …).
    Input,
    /// The output y (`relu`, `tanh`, `exp`, …).
    Output,
    /// Neither: the derivative is a constant (`neg`, `mul_scalar`, `add_scalar`).
    Nothing,
}

/// The `Var` method of each row: `x.tanh()`, `x.powf(exponent)`.
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $variant:ident $(($($attr:ident),+))? => $method:ident;)*) => {
        impl<T: Element> Var<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $method(&self $($(, $attr: f64)+)?) -> Var<T> {
                    self.unary(Unary::$variant $(($($attr),+))?)
                }
            )*
        }
    };
}

macro_rules! unary_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $(($($attr:ident: $sample:expr),+))? => $name:literal, $method:ident, saves $saves:ident,
        forward |$x:ident| $forward:expr,
        derivative |$dx:ident, $dy:ident| $derivative:expr,
        recorded |$rx:ident, $ry:ident| $recorded:expr;
    )*) => {
        /// An elementwise function with its derivative. `derivative(x, y)` gets the input
        /// and the output, so rules like `tanh' = 1 − y²` reuse the forward's work.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Unary {
            $($(#[$doc])* $variant $(($(unary_table!(@ty $attr)),+))?,)*
        }

        impl Unary {
            /// Every op of the table with a representative attribute, for tests.
            pub const ALL: &'static [Unary] = &[$(Unary::$variant $(($($sample),+))?,)*];

            /// The op's name as recorded on the tape (PyTorch's).
            pub fn name(self) -> &'static str {
                match self {
                    $(Unary::$variant $(($($attr),+))? => { $($(let _ = $attr;)+)? $name })*
                }
            }

            /// What the rule keeps for backward: PyTorch's choice per op, so a ReLU
            /// after a convolution keeps one activation alive, not two.
            pub fn saves(self) -> Saves {
                match self {
                    $(Unary::$variant $(($($attr),+))? => { $($(let _ = $attr;)+)? Saves::$saves })*
                }
            }

            /// f(x).
            // always: each `map` arm calls it with a constant variant, and only an
            // inlined call folds the match away and lets the loop vectorise
            #[inline(always)]
            #[allow(unused_variables)]
            pub fn forward<T: Element>(self, input: T) -> T {
                match self {
                    $(Unary::$variant $(($($attr),+))? => { let $x = input; $forward })*
                }
            }

            /// f'(x), given x and y = f(x).
            #[inline(always)]
            #[allow(unused_variables)]
            pub fn derivative<T: Element>(self, input: T, output: T) -> T {
                match self {
                    $(Unary::$variant $(($($attr),+))? => { let ($dx, $dy) = (input, output); $derivative })*
                }
            }

            /// f' as recorded ops of `x` and `y`, for the `create_graph` path.
            #[allow(unused_variables)]
            fn recorded<T: Element>(self, input: &Operand<T>, output: &Operand<T>) -> Result<Recorded<T>> {
                Ok(match self {
                    $(Unary::$variant $(($($attr),+))? => { let ($rx, $ry) = (input, output); $recorded })*
                })
            }

            /// f applied to every element.
            pub fn map<T: Element>(self, x: &Tensor<T>) -> Tensor<T> {
                if self == Unary::Gelu {
                    // too large a function for LLVM to inline a closure of it into
                    // the vector loop: a kernel of its own (kernels/activation.rs)
                    return x.gelu();
                }
                // one arm per variant, so each loop is compiled for one function and
                // vectorises
                match self {
                    $(Unary::$variant $(($($attr),+))? => {
                        // the variant is built inside the closure from its captured
                        // attributes, so the closure's own body folds the match away
                        // and stays small enough to inline into the loop
                        x.map(move |v| Unary::$variant $(($($attr),+))?.forward(v))
                    })*
                }
            }

            /// `g · f'` written into `g`'s buffer when nothing else holds it, given
            /// the value [`Unary::saves`] names (`None` for [`Saves::Nothing`]); the
            /// other value is never read, so `kept` stands in for both.
            fn vjp_into<T: Element>(self, g: Tensor<T>, kept: Option<&Tensor<T>>) -> TensorResult<Tensor<T>> {
                if let (Unary::Gelu, Some(x)) = (self, kept) {
                    return g.gelu_backward(x); // see `map`
                }
                match (self, kept) {
                    $((Unary::$variant $(($($attr),+))?, Some(kept)) => {
                        g.into_zip_map(kept, move |g, k| g * Unary::$variant $(($($attr),+))?.derivative(k, k))
                    })*
                    $((Unary::$variant $(($($attr),+))?, None) => {
                        Ok(g.into_map(move |g| g * Unary::$variant $(($($attr),+))?.derivative(g, g)))
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
                if self == Unary::Gelu {
                    return g.gelu_backward(x); // see `map`
                }
                match self {
                    $(Unary::$variant $(($($attr),+))? => {
                        // as in `map`
                        g.zip3_map(x, y, move |g, x, y| {
                            g * Unary::$variant $(($($attr),+))?.derivative(x, y)
                        })
                    })*
                }
            }
        }

        unary_methods! { $($(#[$doc])* $variant $(($($attr),+))? => $method;)* }
    };
    (@ty $attr:ident) => { f64 };
}

/// [`Element::sigmoid`]. Called as a function, not `Unary::Sigmoid.forward`, so the
/// rows that use it do not make `forward` recursive (LLVM cannot inline a recursive
/// function, and an outlined `forward` is a call per element that stops every map
/// from vectorising).
#[inline(always)]
fn sigmoid<T: Element>(x: T) -> T {
    x.sigmoid()
}

unary_table! {
    /// −x
    Neg => "neg", neg, saves Nothing,
        forward |x| -x,
        derivative |x, y| -T::ONE,
        recorded |x, y| Recorded::Constant;
    /// eˣ
    Exp => "exp", exp, saves Output,
        forward |x| x.exp(),
        derivative |x, y| y,
        recorded |x, y| Recorded::Expr(y.clone());
    /// ln x
    Log => "log", log, saves Input,
        forward |x| x.ln(),
        derivative |x, y| T::ONE / x,
        recorded |x, y| Recorded::Expr(x.unary(Unary::Powf(-1.0)));
    /// √x
    Sqrt => "sqrt", sqrt, saves Output,
        forward |x| x.sqrt(),
        derivative |x, y| T::from_f64(0.5) / y,
        recorded |x, y| Recorded::Expr(y.unary(Unary::Powf(-1.0)).scale(0.5));
    /// max(x, 0); NaN stays NaN; derivative 0 where the output is ≤ 0 and 1 elsewhere,
    /// NaN included, as PyTorch
    Relu => "relu", relu, saves Output,
        forward |x| x.max(T::ZERO),
        derivative |x, y| if y <= T::ZERO { T::ZERO } else { T::ONE },
        recorded |x, y| Recorded::Constant;
    /// 1 / (1 + e⁻ˣ); two branches keep exp's argument non-positive, so no overflow
    Sigmoid => "sigmoid", sigmoid, saves Output,
        forward |x| sigmoid(x),
        derivative |x, y| y * (T::ONE - y),
        recorded |x, y| Recorded::Expr(y.sub(&y.unary(Unary::Square))?);
    /// tanh x
    Tanh => "tanh", tanh, saves Output,
        forward |x| x.tanh(),
        derivative |x, y| T::ONE - y * y,
        recorded |x, y| Recorded::Expr(y.unary(Unary::Square).scale(-1.0).unary(Unary::AddScalar(1.0)));
    /// |x|; derivative sign(x), 0 at 0 and at NaN (PyTorch's `sgn`)
    Abs => "abs", abs, saves Input,
        forward |x| x.abs(),
        derivative |x, y| if x > T::ZERO { T::ONE } else if x < T::ZERO { -T::ONE } else { T::ZERO },
        recorded |x, y| Recorded::Constant;
    /// x²
    Square => "square", square, saves Input,
        forward |x| x * x,
        derivative |x, y| T::from_f64(2.0) * x,
        recorded |x, y| Recorded::Expr(x.scale(2.0));
    /// x for x > 0, slope·x otherwise
    LeakyRelu(negative_slope: 0.1) => "leaky_relu", leaky_relu, saves Input,
        forward |x| if x > T::ZERO { x } else { x * T::from_f64(negative_slope) },
        derivative |x, y| if x > T::ZERO { T::ONE } else { T::from_f64(negative_slope) },
        recorded |x, y| Recorded::Constant;
    /// xᵖ; the derivative of x⁰ is 0 everywhere (PyTorch), not 0·x⁻¹
    Powf(exponent: 1.5) => "powf", powf, saves Input,
        forward |x| x.powf(T::from_f64(exponent)),
        derivative |x, y| if exponent == 0.0 { T::ZERO } else { T::from_f64(exponent) * x.powf(T::from_f64(exponent - 1.0)) },
        recorded |x, y| if exponent == 0.0 { Recorded::Constant } else { Recorded::Expr(x.unary(Unary::Powf(exponent - 1.0)).scale(exponent)) };
    /// The error function (PyTorch's `erf`)
    Erf => "erf", erf, saves Input,
        forward |x| x.erf(),
        derivative |x, y| T::from_f64(FRAC_2_SQRT_PI) * (-x * x).exp(),
        recorded |x, y| Recorded::Expr(x.unary(Unary::Square).neg().unary(Unary::Exp).scale(FRAC_2_SQRT_PI));
    /// x·Φ(x), Φ the standard normal CDF (PyTorch's `gelu`, `approximate='none'`);
    /// computed as `x/2 · erfc(−x/√2)`, accurate for negative x too
    Gelu => "gelu", gelu, saves Input,
        forward |x| activation::gelu(x),
        derivative |x, y| activation::gelu_derivative(x),
        recorded |x, y| {
            let cdf = x.scale(FRAC_1_SQRT_2).unary(Unary::Erf).scale(0.5).unary(Unary::AddScalar(0.5));
            let pdf = x.unary(Unary::Square).scale(-0.5).unary(Unary::Exp).scale(INV_SQRT_2PI);
            Recorded::Expr(cdf.add(&x.mul(&pdf)?)?)
        };
    /// `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))` (PyTorch's `gelu`, `approximate='tanh'`)
    GeluTanh => "gelu_tanh", gelu_tanh, saves Input,
        forward |x| T::from_f64(0.5) * x * (T::ONE + gelu_tanh_inner(x).tanh()),
        derivative |x, y| {
            let t = gelu_tanh_inner(x).tanh();
            let du = T::from_f64(SQRT_2_OVER_PI) * (T::ONE + T::from_f64(3.0 * GELU_TANH_CUBIC) * x * x);
            T::from_f64(0.5) * (T::ONE + t) + T::from_f64(0.5) * x * (T::ONE - t * t) * du
        },
        recorded |x, y| {
            let x2 = x.unary(Unary::Square);
            let t = x.add(&x.mul(&x2)?.scale(GELU_TANH_CUBIC))?.scale(SQRT_2_OVER_PI).unary(Unary::Tanh);
            let left = t.unary(Unary::AddScalar(1.0)).scale(0.5);
            let sech2 = t.unary(Unary::Square).neg().unary(Unary::AddScalar(1.0));
            let du = x2.scale(3.0 * GELU_TANH_CUBIC).unary(Unary::AddScalar(1.0)).scale(0.5 * SQRT_2_OVER_PI);
            Recorded::Expr(left.add(&x.mul(&sech2)?.mul(&du)?)?)
        };
    /// x·σ(x) (PyTorch's `silu`, also called swish)
    Silu => "silu", silu, saves Input,
        forward |x| x * sigmoid(x),
        derivative |x, y| {
            let s = sigmoid(x);
            s * (T::ONE + x * (T::ONE - s))
        },
        recorded |x, y| {
            let s = x.unary(Unary::Sigmoid);
            let inner = x.mul(&s.neg().unary(Unary::AddScalar(1.0)))?.unary(Unary::AddScalar(1.0));
            Recorded::Expr(s.mul(&inner)?)
        };
    /// `ln(1 + e^(βx))/β`, and x itself where `βx > threshold` (PyTorch's `softplus`)
    Softplus(beta: 1.5, threshold: 0.6) => "softplus", softplus, saves Input,
        forward |x| {
            let bx = x * T::from_f64(beta);
            if bx.to_f64() > threshold { x } else { bx.exp().ln_1p() / T::from_f64(beta) }
        },
        derivative |x, y| {
            let bx = x * T::from_f64(beta);
            if bx.to_f64() > threshold { T::ONE } else { sigmoid(bx) }
        },
        recorded |x, y| {
            let linear = x.value().map(|v| if (v * T::from_f64(beta)).to_f64() > threshold { T::ONE } else { T::ZERO });
            let curved = x.constant(linear.map(|m| T::ONE - m));
            let d = x.scale(beta).unary(Unary::Sigmoid).mul(&curved)?;
            Recorded::Expr(d.add(&x.constant(linear))?)
        };
    /// x for x > 0, `α(eˣ − 1)` otherwise (PyTorch's `elu`)
    Elu(alpha: 0.8) => "elu", elu, saves Input,
        forward |x| if x > T::ZERO { x } else { T::from_f64(alpha) * x.exp_m1() },
        // the `x ≤ 0` test is PyTorch's: NaN takes the slope-1 branch
        derivative |x, y| if x <= T::ZERO { T::from_f64(alpha) * x.exp() } else { T::ONE },
        recorded |x, y| {
            let positive = x.value().map(|v| if v <= T::ZERO { T::ZERO } else { T::ONE });
            let negative = x.constant(positive.map(|m| T::ONE - m));
            let d = x.unary(Unary::Exp).scale(alpha).mul(&negative)?;
            Recorded::Expr(d.add(&x.constant(positive))?)
        };
    /// ln σ(x) = `min(x, 0) − ln(1 + e^(−|x|))`, which never overflows
    LogSigmoid => "log_sigmoid", log_sigmoid, saves Input,
        forward |x| x.min(T::ZERO) - (-x.abs()).exp().ln_1p(),
        derivative |x, y| sigmoid(-x),
        recorded |x, y| Recorded::Expr(x.neg().unary(Unary::Sigmoid));
    /// x limited to `[min, max]` (±∞ leaves a side open; min > max gives max, as
    /// PyTorch); the gradient passes where `min ≤ x ≤ max`
    Clamp(min: -0.3, max: 0.4) => "clamp", clamp, saves Input,
        forward |x| x.max(T::from_f64(min)).min(T::from_f64(max)),
        derivative |x, y| if x >= T::from_f64(min) && x <= T::from_f64(max) { T::ONE } else { T::ZERO },
        recorded |x, y| Recorded::Constant;
    /// c·x
    Scale(c: -2.5) => "mul_scalar", mul_scalar, saves Nothing,
        forward |x| x * T::from_f64(c),
        derivative |x, y| T::from_f64(c),
        recorded |x, y| Recorded::Constant;
    /// x + c
    AddScalar(c: 0.7) => "add_scalar", add_scalar, saves Nothing,
        forward |x| x + T::from_f64(c),
        derivative |x, y| T::ONE,
        recorded |x, y| Recorded::Constant;
}

/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f64 = FRAC_1_SQRT_2 * FRAC_2_SQRT_PI * 0.5;
/// √(2/π), the slope inside the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = FRAC_2_SQRT_PI * FRAC_1_SQRT_2;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_CUBIC: f64 = 0.044715;

/// `√(2/π)·(x + 0.044715·x³)`, the argument of tanh in [`Unary::GeluTanh`].
#[inline]
fn gelu_tanh_inner<T: Element>(x: T) -> T {
    T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(GELU_TANH_CUBIC) * x * x * x)
}

/// The rule of every unary op: `dx = g · f'(x)`, fused on the fast path. `kept` is
/// what [`Unary::saves`] names; the formulas never read the value not kept, so the
/// gradient stands in for it (it has the right shape).
fn vjp<T: Element>(f: Unary, g: &Operand<T>, kept: Option<&Saved<T>>) -> Result<Operand<T>> {
    match g {
        Operand::Tensor(gt) => {
            let kept = kept.map_or(gt, Saved::value);
            let (x, y) = match f.saves() {
                Saves::Output => (gt, kept),
                Saves::Input | Saves::Nothing => (kept, gt),
            };
            Ok(Operand::Tensor(f.vjp(gt, x, y)?))
        }
        Operand::Var(_) => {
            let kept = kept.map_or_else(|| g.clone(), |s| g.load(s));
            let (xo, yo) = match f.saves() {
                Saves::Output => (g.clone(), kept),
                Saves::Input | Saves::Nothing => (kept, g.clone()),
            };
            let d = match f.recorded(&xo, &yo)? {
                Recorded::Expr(d) => d,
                Recorded::Constant => {
                    let d = xo.value().zip_map(yo.value(), |x, y| f.derivative(x, y))?;
                    g.constant(d)
                }
            };
            g.mul(&d)
        }
    }
}

/// The rule of a unary op with what [`Unary::saves`] names.
struct UnaryRule<T: Element> {
    f: Unary,
    kept: Option<Saved<T>>,
}

impl<T: Element> BackwardRule<T> for UnaryRule<T> {
    fn backward(&self, g: &Operand<T>, _: &[bool]) -> Result<Grads<T>> {
        Ok(Grads::from_iter([Some(vjp(
            self.f,
            g,
            self.kept.as_ref(),
        )?)]))
    }

    fn backward_owned(&self, g: Operand<T>, needs: &[bool]) -> Result<Grads<T>> {
        let Operand::Tensor(g) = g else {
            return self.backward(&g, needs);
        };
        let kept = self.kept.as_ref().map(Saved::value);
        let dx = self.f.vjp_into(g, kept)?;
        Ok(Grads::from_iter([Some(Operand::Tensor(dx))]))
    }
}

impl<T: Element> Var<T> {
    /// `max(x, min)`: [`Var::clamp`] with no upper bound.
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![-2.0, 0.5, 3.0], &[3])?);
    /// assert_eq!(x.clamp_min(0.0).value().data(), &[0.0, 0.5, 3.0]);
    /// assert_eq!(x.clamp_max(1.0).value().data(), &[-2.0, 0.5, 1.0]);
    /// assert_eq!(x.clamp(-1.0, 1.0).sum().backward()?.wrt(&x).unwrap().data(), &[0.0, 1.0, 0.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn clamp_min(&self, min: f64) -> Var<T> {
        self.unary(Unary::Clamp(min, f64::INFINITY))
    }

    /// `min(x, max)`: [`Var::clamp`] with no lower bound.
    #[track_caller]
    pub fn clamp_max(&self, max: f64) -> Var<T> {
        self.unary(Unary::Clamp(f64::NEG_INFINITY, max))
    }

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
        let kept = match f.saves() {
            Saves::Input => Some(Saved::of(self)),
            Saves::Output => Some(Saved::output(self.tape(), &y)),
            Saves::Nothing => None,
        };
        let rule = UnaryRule { f, kept };
        self.tape()
            .record_at(f.name(), site, y, &[self], rule)
            .expect("one input is always on its own tape")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs around every branch point of the table (0, ±thresholds), the far tails
    /// and the special values.
    fn inputs() -> Tensor<f64> {
        let mut v: Vec<f64> = (-40..=40).map(|i| f64::from(i) * 0.173).collect();
        v.extend([0.0, -0.0, 0.4, -0.3, 0.6 / 1.5, 30.0, -30.0, 800.0, -800.0]);
        v.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
        Tensor::from_vec(v.clone(), &[v.len()]).unwrap()
    }

    #[test]
    fn what_each_rule_keeps_gives_the_full_formula_bit_for_bit() {
        // a wrong `saves` row would feed the derivative the other value and fail here
        let x = inputs();
        let g = x.map(|v| 1.0 + 0.01 * v.abs().min(5.0));
        for &f in Unary::ALL {
            let y = f.map(&x);
            let full = f.vjp(&g, &x, &y).unwrap();
            let kept = match f.saves() {
                Saves::Input => Some(&x),
                Saves::Output => Some(&y),
                Saves::Nothing => None,
            };
            // a copy, so the in-place path really writes into a buffer of its own
            let owned = f.vjp_into(g.map(|v| v), kept).unwrap();
            let bits = |t: &Tensor<f64>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&owned), bits(&full), "{}", f.name());
        }
    }

    #[test]
    fn the_owned_gradient_is_rewritten_in_place_and_a_shared_one_is_not() {
        let x = inputs();
        let y = Unary::Relu.map(&x);
        let g = x.map(|v| v + 1.0);
        let ptr = g.data().as_ptr();
        let dx = Unary::Relu.vjp_into(g, Some(&y)).unwrap();
        assert_eq!(dx.data().as_ptr(), ptr);
        let shared = dx.clone();
        let again = Unary::Relu.vjp_into(dx, Some(&y)).unwrap();
        assert!(!again.same_buffer(&shared));
        // relu' ∈ {0, 1}, so a second application changes nothing
        let bits = |t: &Tensor<f64>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&again), bits(&shared));
    }
}
