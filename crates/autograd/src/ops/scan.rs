//! Running sums. The reverse scan is the forward scan's adjoint, so each op's rule is
//! the other and both differentiate to any order.

use chainrule_tensor::Element;

use crate::error::InOp;
use crate::ops::one;
use crate::{Operand, Result, Site, Var};

impl<T: Element> Var<T> {
    /// Running sum along `dim` (PyTorch's `cumsum`).
    ///
    /// ```
    /// use chainrule_autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let y = x.cumsum(0)?;
    /// assert_eq!(y.value().data(), &[1.0, 3.0, 6.0]);
    /// assert_eq!(y.sum().backward()?.wrt(&x).unwrap().data(), &[3.0, 2.0, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `dim` out of range.
    #[track_caller]
    pub fn cumsum(&self, dim: isize) -> Result<Var<T>> {
        let site = Site::caller();
        let d = self.shape().resolve_dim(dim).in_op("cumsum", site)?;
        self.scan(d, false, site)
    }

    /// The running sum along `dim`, from the end when `reverse`.
    fn scan(&self, dim: usize, reverse: bool, site: Site) -> Result<Var<T>> {
        let op = if reverse { "cumsum_reverse" } else { "cumsum" };
        let y = self.value().cumsum(dim, reverse).in_op(op, site)?;
        let rule = move |g: &Operand<T>, _: &[bool]| Ok(one(g.scan(dim, !reverse)?));
        self.tape().record_at(op, site, y, &[self], rule)
    }
}

impl<T: Element> Operand<T> {
    /// The running sum along `dim`, from the end when `reverse`.
    fn scan(&self, dim: usize, reverse: bool) -> Result<Operand<T>> {
        Ok(match self {
            Operand::Tensor(t) => Operand::Tensor(t.cumsum(dim, reverse)?),
            Operand::Var(v) => Operand::Var(Box::new(v.scan(dim, reverse, Site::caller())?)),
        })
    }
}
