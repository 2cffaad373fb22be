//! Activation layers (no parameters).

use chainrule_autograd::{Element, Result, Var};

use crate::Module;

/// max(x, 0).
#[derive(Clone, Copy, Debug)]
pub struct ReLU;

impl<T: Element> Module<T> for ReLU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.relu())
    }
}

/// x for x > 0, slope·x otherwise.
#[derive(Clone, Copy, Debug)]
pub struct LeakyReLU(pub f64);

impl<T: Element> Module<T> for LeakyReLU {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.leaky_relu(self.0))
    }
}

/// The logistic function.
#[derive(Clone, Copy, Debug)]
pub struct Sigmoid;

impl<T: Element> Module<T> for Sigmoid {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.sigmoid())
    }
}

/// Hyperbolic tangent.
#[derive(Clone, Copy, Debug)]
pub struct Tanh;

impl<T: Element> Module<T> for Tanh {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.tanh())
    }
}

/// Softmax along a dim. For training, feed logits to `cross_entropy` instead: it fuses
/// the softmax and stays stable.
#[derive(Clone, Copy, Debug)]
pub struct Softmax(pub isize);

impl<T: Element> Module<T> for Softmax {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.softmax(self.0)
    }
}
