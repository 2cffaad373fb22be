use chainrule_autograd::{AsIntTensor, Element, Param, Result, Tape, Tensor, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A lookup table of `num` vectors of size `dim` (PyTorch's `Embedding`): weight
/// `[num, dim]` drawn from N(0, 1), the `padding_idx` row zeroed and kept out of every
/// gradient. Its input is integer ids, so it is called with
/// [`Embedding::forward_ids`] rather than through [`crate::Module`].
///
/// ```
/// use chainrule_autograd::{IntTensor, Tape};
/// use chainrule_nn::{layers::Embedding, ModuleState};
/// use rand::SeedableRng;
/// let emb = Embedding::<f32>::new(10, 4, Some(0), &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let tape = Tape::new();
/// let y = emb.forward_ids(&tape, &IntTensor::from_vec(vec![1, 0, 9, 9], &[2, 2])?)?;
/// assert_eq!(y.dims(), &[2, 2, 4]);
/// assert_eq!(&y.value().data()[4..8], &[0.0; 4]); // the padding row
/// assert_eq!(emb.named_parameters()[0].0, "weight");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(crate::Module)]
pub struct Embedding<T: Element = f32> {
    /// `[num, dim]`.
    pub weight: Param<T>,
    /// The row that gets no gradient.
    #[module(skip)]
    pub padding_idx: Option<usize>,
}

impl<T: Element> Embedding<T> {
    /// `num` vectors of size `dim`, PyTorch's initialization.
    ///
    /// # Errors
    /// A table too large to allocate; `padding_idx ≥ num`.
    pub fn new<R: Rng + ?Sized>(
        num: usize,
        dim: usize,
        padding_idx: Option<usize>,
        rng: &mut R,
    ) -> crate::Result<Self> {
        let mut w = Tensor::<T>::zeros(&[num, dim])?;
        for v in w.data_mut() {
            let z: f64 = StandardNormal.sample(rng);
            *v = T::from_f64(z);
        }
        Self::from_tensor(w, padding_idx)
    }

    /// A table from given values; the padding row is zeroed, as PyTorch does.
    ///
    /// # Errors
    /// A weight that is not 2-D; `padding_idx` outside its rows.
    pub fn from_tensor(mut weight: Tensor<T>, padding_idx: Option<usize>) -> crate::Result<Self> {
        let &[num, dim] = weight.dims() else {
            return Err(crate::Error::Invalid {
                what: "Embedding",
                reason: format!("weight {} must be [num, dim]", weight.shape()),
            });
        };
        if let Some(p) = padding_idx {
            if p >= num {
                return Err(crate::Error::Invalid {
                    what: "Embedding",
                    reason: format!("padding_idx {p} is outside 0..{num}"),
                });
            }
            weight.data_mut()[p * dim..(p + 1) * dim].fill(T::ZERO);
        }
        Ok(Embedding {
            weight: Param::new(weight),
            padding_idx,
        })
    }

    /// The rows of `ids` (any shape), shaped `ids.dims() ++ [dim]`.
    ///
    /// # Errors
    /// An id outside `0..num`, named with its position.
    #[track_caller]
    pub fn forward_ids(&self, tape: &Tape<T>, ids: &(impl AsIntTensor + ?Sized)) -> Result<Var<T>> {
        tape.param(&self.weight)
            .embedding(&ids.as_int_tensor(), self.padding_idx)
    }
}
