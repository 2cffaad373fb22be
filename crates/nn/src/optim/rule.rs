//! One optimizer type for every update rule: [`RuleOptimizer`] owns the parameter
//! groups, the per-parameter state and the double buffers; an [`UpdateRule`] (SGD,
//! Adam, …) says only how one parameter moves. Adding an optimizer is one file with a
//! rule and its options.

use std::collections::HashSet;
use std::fmt::Debug;

use chainrule_autograd::{Element, Gradients, Param};

use super::state::{GroupState, OptimizerState};
use super::{check_shape, Optimizer, Spares};

/// Parameters that share hyperparameters, as in PyTorch's `param_groups`.
///
/// Build groups with Rust's struct update syntax, so each states only what it changes:
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
/// let (body, head) = (Param::new(Tensor::<f32>::zeros(&[3])?), Param::new(Tensor::zeros(&[2])?));
/// let base = SgdOptions { lr: 0.1, momentum: 0.9, ..SgdOptions::default() };
/// let opt = Sgd::with_groups(vec![
///     ParamGroup::new(vec![body], SgdOptions { lr: 0.01, ..base }),
///     ParamGroup::new(vec![head], base),
/// ])?;
/// assert_eq!(opt.lrs(), vec![0.01, 0.1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ParamGroup<T: Element, O> {
    /// The group's parameters.
    pub params: Vec<Param<T>>,
    /// The group's hyperparameters.
    pub options: O,
}

impl<T: Element, O> ParamGroup<T, O> {
    /// A group of `params` updated with `options`.
    ///
    /// ```
    /// use chainrule_autograd::{Param, Tensor};
    /// use chainrule_nn::optim::{AdamOptions, ParamGroup};
    /// let g = ParamGroup::new(vec![Param::new(Tensor::<f32>::zeros(&[2])?)], AdamOptions::default());
    /// assert_eq!(g.params.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(params: impl IntoIterator<Item = Param<T>>, options: O) -> Self {
        ParamGroup {
            params: params.into_iter().collect(),
            options,
        }
    }
}

/// What an optimizer remembers about one parameter: its step count, scalar state
/// (NAdam's running μ product) and per-element buffers (momentum, moments), named by
/// the rule's [`UpdateRule::SLOTS`]. An empty slot has not been created yet (PyTorch's
/// `momentum_buffer` is `None` until the first step).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState<T> {
    /// Updates applied so far.
    pub step: u64,
    /// One value per [`UpdateRule::SCALARS`] entry.
    pub scalars: Vec<f64>,
    /// One buffer per [`UpdateRule::SLOTS`] entry, empty or one value per element.
    pub slots: Vec<Vec<T>>,
}

impl<T> ParamState<T> {
    /// The state of a parameter never updated.
    fn new<R: UpdateRule>() -> Self {
        ParamState {
            step: 0,
            scalars: R::SCALARS.iter().map(|s| s.1).collect(),
            slots: R::SLOTS.iter().map(|_| Vec::new()).collect(),
        }
    }
}

/// How one parameter moves in one step. Implemented by the rules behind [`super::Sgd`],
/// [`super::Adam`], [`super::RmsProp`], [`super::Adagrad`], [`super::NAdam`] and
/// [`super::RAdam`]; implement it to add an optimizer that gets groups, state saving
/// and schedules for free.
///
/// ```
/// use chainrule_autograd::{Element, Param, Tape, Tensor};
/// use chainrule_nn::optim::{Optimizer, ParamState, RuleOptimizer, UpdateRule};
/// /// Sign descent: p ← p − lr·sign(g).
/// struct SignSgd;
/// impl UpdateRule for SignSgd {
///     const NAME: &'static str = "SignSgd";
///     const SLOTS: &'static [&'static str] = &[];
///     type Options = f64; // the learning rate
///     fn check(lr: &f64) -> chainrule_nn::Result<()> { Ok(()) }
///     fn lr(lr: &f64) -> f64 { *lr }
///     fn set_lr(lr: &mut f64, value: f64) { *lr = value }
///     fn hyper(lr: &f64) -> Vec<(&'static str, f64)> { vec![("lr", *lr)] }
///     fn set_hyper(lr: &mut f64, name: &str, value: f64) -> bool {
///         name == "lr" && { *lr = value; true }
///     }
///     fn update<T: Element>(lr: &f64, _: &mut ParamState<T>, w: &[T], g: &[T], new: &mut [T]) {
///         for ((n, &w), &g) in new.iter_mut().zip(w).zip(g) {
///             let sign = if g > T::ZERO { T::ONE } else if g < T::ZERO { -T::ONE } else { T::ZERO };
///             *n = w - T::from_f64(*lr) * sign;
///         }
///     }
/// }
/// let w = Param::new(Tensor::<f64>::from_vec(vec![3.0, -2.0], &[2])?);
/// let mut opt = RuleOptimizer::<f64, SignSgd>::with_options(vec![w.clone()], 0.5)?;
/// let tape = Tape::new();
/// opt.step(&tape.param(&w).square().sum().backward()?)?;
/// assert_eq!(w.value().data(), &[2.5, -1.5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait UpdateRule {
    /// The optimizer's name in errors and saved state (`"Sgd"`).
    const NAME: &'static str;
    /// The names of the per-element buffers, as PyTorch's state dict names them.
    const SLOTS: &'static [&'static str];
    /// Scalar state with its initial value.
    const SCALARS: &'static [(&'static str, f64)] = &[];
    /// The hyperparameters of one group.
    type Options: Clone + Debug;

    /// PyTorch's validity rules for the hyperparameters.
    ///
    /// # Errors
    /// The first invalid hyperparameter.
    fn check(options: &Self::Options) -> crate::Result<()>;
    /// The learning rate.
    fn lr(options: &Self::Options) -> f64;
    /// Sets the learning rate.
    fn set_lr(options: &mut Self::Options, lr: f64);
    /// The momentum a one-cycle schedule cycles (SGD's momentum, Adam's β₁), if any.
    fn momentum(_options: &Self::Options) -> Option<f64> {
        None
    }
    /// Sets the momentum; ignored by a rule without one.
    fn set_momentum(_options: &mut Self::Options, _momentum: f64) {}
    /// Every hyperparameter by PyTorch's name (booleans as 0 or 1), for saving.
    fn hyper(options: &Self::Options) -> Vec<(&'static str, f64)>;
    /// Sets the hyperparameter `name`; false when the rule has none of that name.
    fn set_hyper(options: &mut Self::Options, name: &str, value: f64) -> bool;
    /// Writes the parameter's next value into `new` from its value `w` and gradient
    /// `g` (of equal length), updating `state`, whose step count already includes
    /// this step.
    fn update<T: Element>(
        options: &Self::Options,
        state: &mut ParamState<T>,
        w: &[T],
        g: &[T],
        new: &mut [T],
    );
}

/// An optimizer made of an [`UpdateRule`] and parameter groups. [`super::Sgd`],
/// [`super::Adam`] and the others are this type with their rule.
///
/// ```
/// use chainrule_autograd::{Param, Tensor};
/// use chainrule_nn::optim::{Adam, Optimizer};
/// let w = Param::new(Tensor::<f32>::zeros(&[3])?);
/// let mut opt = Adam::new(vec![w], 1e-3)?;
/// opt.set_lr(1e-4);
/// assert_eq!(opt.group_options(0).unwrap().lr, 1e-4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RuleOptimizer<T: Element, R: UpdateRule> {
    groups: Vec<ParamGroup<T, R::Options>>,
    /// By the parameter's position over all groups, in group order.
    state: Vec<Option<ParamState<T>>>,
    spares: Spares<T>,
}

impl<T: Element, R: UpdateRule> RuleOptimizer<T, R> {
    /// One group of `params` with `options`.
    ///
    /// # Errors
    /// An invalid hyperparameter, or a parameter listed twice.
    pub fn with_options(
        params: impl IntoIterator<Item = Param<T>>,
        options: R::Options,
    ) -> crate::Result<Self> {
        Self::with_groups(vec![ParamGroup::new(params, options)])
    }

    /// One group per entry, each with its own hyperparameters.
    ///
    /// # Errors
    /// An invalid hyperparameter (naming its group), or a parameter in two groups (as in
    /// PyTorch).
    pub fn with_groups(groups: Vec<ParamGroup<T, R::Options>>) -> crate::Result<Self> {
        let mut seen = HashSet::new();
        for (i, g) in groups.iter().enumerate() {
            check_group::<R>(i, groups.len(), &g.options)?;
            if g.params.iter().any(|p| !seen.insert(p.id())) {
                return Err(crate::Error::Invalid {
                    what: R::NAME,
                    reason: format!(
                        "a parameter of group {i} is listed twice (each parameter belongs to one group)"
                    ),
                });
            }
        }
        let count = seen.len();
        Ok(RuleOptimizer {
            groups,
            state: vec![None; count],
            spares: Spares::new(),
        })
    }

    /// Changes every group's options with `f`, then checks them: the builder methods
    /// (`momentum`, `betas`, …) are this.
    pub(crate) fn configure(mut self, f: impl Fn(&mut R::Options)) -> crate::Result<Self> {
        let n = self.groups.len();
        for (i, g) in self.groups.iter_mut().enumerate() {
            f(&mut g.options);
            check_group::<R>(i, n, &g.options)?;
        }
        Ok(self)
    }

    /// The groups, in order.
    pub fn groups(&self) -> &[ParamGroup<T, R::Options>] {
        &self.groups
    }

    /// The options of group `group`, if it exists.
    pub fn group_options(&self, group: usize) -> Option<&R::Options> {
        self.groups.get(group).map(|g| &g.options)
    }

    /// Replaces the options of group `group`.
    ///
    /// # Errors
    /// No such group, or an invalid hyperparameter (nothing changes).
    pub fn set_group_options(&mut self, group: usize, options: R::Options) -> crate::Result<()> {
        let n = self.groups.len();
        let Some(g) = self.groups.get_mut(group) else {
            return Err(crate::Error::Invalid {
                what: R::NAME,
                reason: format!("no parameter group {group} (the optimizer has {n})"),
            });
        };
        check_group::<R>(group, n, &options)?;
        g.options = options;
        Ok(())
    }

    /// The state of every parameter, by position over all groups (`None`: never
    /// updated).
    pub fn param_states(&self) -> &[Option<ParamState<T>>] {
        &self.state
    }

    fn params(&self) -> impl Iterator<Item = &Param<T>> {
        self.groups.iter().flat_map(|g| &g.params)
    }
}

fn check_group<R: UpdateRule>(group: usize, groups: usize, o: &R::Options) -> crate::Result<()> {
    R::check(o).map_err(|e| match e {
        crate::Error::Invalid { what, reason } if groups > 1 => crate::Error::Invalid {
            what,
            reason: format!("group {group}: {reason}"),
        },
        e => e,
    })
}

impl<T: Element, R: UpdateRule> Optimizer<T> for RuleOptimizer<T, R> {
    fn step(&mut self, grads: &Gradients<T>) -> crate::Result<()> {
        // every shape first, so a bad gradient changes no parameter; one lookup and
        // one snapshot per parameter (W6 has 2000)
        let mut work = Vec::with_capacity(self.state.len());
        let mut index = 0;
        for (group, g) in self.groups.iter().enumerate() {
            for p in &g.params {
                if let Some(grad) = grads.get(p) {
                    let w = p.value();
                    check_shape(R::NAME, &w, grad)?;
                    work.push((group, index, p, grad, w));
                }
                index += 1;
            }
        }
        for (group, i, p, g, w) in work {
            let state = self.state[i].get_or_insert_with(ParamState::new::<R>);
            state.step += 1;
            let options = &self.groups[group].options;
            self.spares.swap_update(i, p, w, |old, new| {
                R::update(options, state, old, g.data(), new)
            });
        }
        Ok(())
    }

    fn lrs(&self) -> Vec<f64> {
        self.groups.iter().map(|g| R::lr(&g.options)).collect()
    }

    fn set_group_lr(&mut self, group: usize, lr: f64) {
        if let Some(g) = self.groups.get_mut(group) {
            R::set_lr(&mut g.options, lr);
        }
    }

    fn momenta(&self) -> Vec<Option<f64>> {
        self.groups
            .iter()
            .map(|g| R::momentum(&g.options))
            .collect()
    }

    fn set_group_momentum(&mut self, group: usize, momentum: f64) {
        if let Some(g) = self.groups.get_mut(group) {
            R::set_momentum(&mut g.options, momentum);
        }
    }

    fn state_dict(&self) -> OptimizerState<T> {
        let mut first = 0;
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let params = (first..first + g.params.len()).collect();
                first += g.params.len();
                let mut hyper: Vec<(String, f64)> = R::hyper(&g.options)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                // by name, as a loaded state has them
                hyper.sort_by(|a, b| a.0.cmp(&b.0));
                GroupState { hyper, params }
            })
            .collect();
        OptimizerState {
            optimizer: R::NAME.to_string(),
            slot_names: R::SLOTS.iter().map(|s| s.to_string()).collect(),
            scalar_names: R::SCALARS.iter().map(|s| s.0.to_string()).collect(),
            groups,
            params: self.state.clone(),
        }
    }

    fn load_state_dict(&mut self, saved: &OptimizerState<T>) -> crate::Result<()> {
        let mut problems = Vec::new();
        if saved.optimizer != R::NAME {
            problems.push(format!(
                "the state is a {}'s, this optimizer is a {}",
                saved.optimizer,
                R::NAME
            ));
        }
        if saved.groups.len() != self.groups.len() {
            problems.push(format!(
                "the state has {} parameter groups, the optimizer {}",
                saved.groups.len(),
                self.groups.len()
            ));
        }
        let mut groups: Vec<R::Options> = self.groups.iter().map(|g| g.options.clone()).collect();
        let mut first = 0;
        for (i, (g, s)) in self.groups.iter().zip(&saved.groups).enumerate() {
            let want: Vec<usize> = (first..first + g.params.len()).collect();
            first += g.params.len();
            if s.params != want {
                problems.push(format!(
                    "group {i} holds parameters {:?} in the state, {want:?} in the optimizer",
                    s.params
                ));
            }
            for (name, value) in &s.hyper {
                if !R::set_hyper(&mut groups[i], name, *value) {
                    problems.push(format!(
                        "group {i}: {} has no hyperparameter {name:?}",
                        R::NAME
                    ));
                }
            }
            if let Err(e) = check_group::<R>(i, self.groups.len(), &groups[i]) {
                problems.push(e.to_string());
            }
        }
        if saved.slot_names.iter().ne(R::SLOTS.iter())
            || saved
                .scalar_names
                .iter()
                .ne(R::SCALARS.iter().map(|s| &s.0))
        {
            problems.push(format!(
                "the state's buffers {:?} and scalars {:?} are not {}'s {:?} and {:?}",
                saved.slot_names,
                saved.scalar_names,
                R::NAME,
                R::SLOTS,
                R::SCALARS.iter().map(|s| s.0).collect::<Vec<_>>()
            ));
        }
        if saved.params.len() != self.state.len() {
            problems.push(format!(
                "the state covers {} parameters, the optimizer holds {}",
                saved.params.len(),
                self.state.len()
            ));
        }
        for (i, (p, s)) in self.params().zip(&saved.params).enumerate() {
            let Some(s) = s else { continue };
            let n = p.value().numel();
            for (name, slot) in R::SLOTS.iter().zip(&s.slots) {
                if !slot.is_empty() && slot.len() != n {
                    problems.push(format!(
                        "parameter {i}: {name} has {} values, the parameter {n}",
                        slot.len()
                    ));
                }
            }
            if s.slots.len() != R::SLOTS.len() || s.scalars.len() != R::SCALARS.len() {
                problems.push(format!(
                    "parameter {i}: the state has the wrong number of buffers"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(crate::Error::Invalid {
                what: R::NAME,
                reason: format!("cannot load the optimizer state: {}", problems.join("; ")),
            });
        }
        for (g, o) in self.groups.iter_mut().zip(groups) {
            g.options = o;
        }
        self.state = saved.params.clone();
        Ok(())
    }
}
