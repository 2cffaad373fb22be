//! Anomaly mode: while it is on, every value an op produces in forward and every
//! gradient contribution in backward is checked for NaN and ±inf; the first one found
//! is an error naming the op, which value, and the line that recorded the op. Off,
//! it costs one flag read per record.

use chainrule_tensor::{Element, Tensor};

use crate::{Error, Site, Tape};

/// The first non-finite value seen, kept until backward reports it.
#[derive(Clone, Debug)]
pub(crate) struct Anomaly {
    pub(crate) op: &'static str,
    pub(crate) site: Site,
    pub(crate) what: String,
}

impl Anomaly {
    pub(crate) fn error(&self) -> Error {
        Error::Anomaly {
            op: self.op,
            site: self.site,
            what: self.what.clone(),
        }
    }
}

/// "NaN", "inf" or `None` for a finite tensor.
pub(crate) fn non_finite<T: Element>(t: &Tensor<T>) -> Option<&'static str> {
    let mut inf = false;
    for &v in t.data() {
        if v.is_nan() {
            return Some("NaN");
        }
        inf |= v.is_infinite();
    }
    inf.then_some("inf")
}

impl<T: Element> Tape<T> {
    /// Turns anomaly mode on until the returned guard is dropped (PyTorch's
    /// `detect_anomaly`). Forward values are checked as each op records; the first
    /// NaN or ±inf makes the next `backward` or `grad` on this tape fail with
    /// [`Error::Anomaly`] (ops whose signature cannot fail keep returning their value),
    /// and [`Tape::anomaly`] reports it at once. Backward checks every gradient a rule
    /// returns and stops at the first bad one.
    ///
    /// ```
    /// use chainrule_autograd::{Error, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let _on = tape.detect_anomaly();
    /// let x = tape.leaf(Tensor::from_vec(vec![-1.0, 4.0], &[2])?);
    /// let y = x.sqrt().sum(); // √−1 = NaN
    /// let err = y.backward().unwrap_err();
    /// assert!(matches!(err, Error::Anomaly { op: "sqrt", .. }));
    /// assert!(err.to_string().contains("NaN in the output"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn detect_anomaly(&self) -> AnomalyGuard<T> {
        let previous = self.inner.anomaly_mode.replace(true);
        AnomalyGuard {
            tape: self.clone(),
            previous,
        }
    }

    /// The first anomaly anomaly mode found on this tape, as an error.
    ///
    /// # Errors
    /// [`Error::Anomaly`] once a non-finite value was recorded under
    /// [`Tape::detect_anomaly`].
    pub fn anomaly(&self) -> crate::Result<()> {
        match &*self.inner.anomaly.borrow() {
            Some(a) => Err(a.error()),
            None => Ok(()),
        }
    }

    /// Notes `value` (what `op` at `site` produced) when anomaly mode is on.
    pub(crate) fn watch(&self, op: &'static str, site: Site, value: &Tensor<T>, what: &str) {
        if !self.inner.anomaly_mode.get() || self.inner.anomaly.borrow().is_some() {
            return;
        }
        if let Some(kind) = non_finite(value) {
            *self.inner.anomaly.borrow_mut() = Some(Anomaly {
                op,
                site,
                what: format!("{kind} in the {what}"),
            });
        }
    }
}

/// Restores the previous anomaly setting when dropped; see [`Tape::detect_anomaly`].
pub struct AnomalyGuard<T: Element> {
    tape: Tape<T>,
    previous: bool,
}

impl<T: Element> Drop for AnomalyGuard<T> {
    fn drop(&mut self) {
        self.tape.inner.anomaly_mode.set(self.previous);
    }
}
