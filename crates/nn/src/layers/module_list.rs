use chainrule_autograd::Element;

use crate::ModuleState;

/// PyTorch's `nn.ModuleList`: modules held in order, named by position (`"0.weight"`),
/// called however the owner's forward likes. `ModuleList<Block>` keeps the blocks'
/// type; `ModuleList<Box<dyn Module<T>>>` holds any mix.
///
/// ```
/// use chainrule_nn::{layers::{Linear, ModuleList}, ModuleState};
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut blocks = ModuleList::new();
/// for _ in 0..3 {
///     blocks.push(Linear::<f32>::new(4, 4, &mut rng)?);
/// }
/// assert_eq!(blocks.len(), 3);
/// assert_eq!(blocks.named_parameters()[2].0, "1.weight");
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ModuleList<M> {
    modules: Vec<M>,
}

impl<M> Default for ModuleList<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> ModuleList<M> {
    /// An empty list.
    pub fn new() -> Self {
        ModuleList {
            modules: Vec::new(),
        }
    }

    /// Appends a module.
    pub fn push(&mut self, module: M) {
        self.modules.push(module);
    }
}

impl<M> From<Vec<M>> for ModuleList<M> {
    fn from(modules: Vec<M>) -> Self {
        ModuleList { modules }
    }
}

impl<M> std::ops::Deref for ModuleList<M> {
    type Target = [M];

    fn deref(&self) -> &[M] {
        &self.modules
    }
}

impl<'a, M> IntoIterator for &'a ModuleList<M> {
    type Item = &'a M;
    type IntoIter = std::slice::Iter<'a, M>;

    fn into_iter(self) -> Self::IntoIter {
        self.modules.iter()
    }
}

impl<T: Element, M: ModuleState<T>> ModuleState<T> for ModuleList<M> {
    fn kind(&self) -> &'static str {
        "ModuleList"
    }

    fn visit_children(&self, prefix: &str, f: &mut dyn FnMut(&str, &dyn ModuleState<T>)) {
        for (i, m) in self.modules.iter().enumerate() {
            f(&format!("{prefix}{i}"), m);
        }
    }
}
