use chainrule_autograd::{Element, Result, Site, Var};

use crate::{Module, ModuleState};

/// Modules applied in order; parameters are named by position (`"0.weight"`), as in
/// PyTorch's `nn.Sequential`.
///
/// ```
/// use chainrule_nn::{layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential}, ModuleState};
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Sequential::<f32>::new()
///     .push(Conv2d::new(1, 3, [5, 5], &mut rng)?)
///     .push(ReLU)
///     .push(MaxPool2d::new([2, 2]))
///     .push(Flatten::default())
///     .push(Linear::new(432, 10, &mut rng)?);
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "4.weight", "4.bias"]);
/// # Ok::<(), chainrule_nn::Error>(())
/// ```
pub struct Sequential<T: Element = f32> {
    layers: Vec<(String, Box<dyn Module<T>>)>,
}

impl<T: Element> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Sequential<T> {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a module, named by its position.
    pub fn push(mut self, module: impl Module<T> + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(module)));
        self
    }

    /// Appends a module under a name of your choosing (`"conv1"`).
    pub fn push_named(mut self, name: &str, module: impl Module<T> + 'static) -> Self {
        self.layers.push((name.to_string(), Box::new(module)));
        self
    }

    /// Runs the layers in order, calling `inspect(name, output)` after each.
    ///
    /// # Errors
    /// The first layer error, reported at the caller's line with the layer's path:
    /// `conv2d in "0" (Conv2d) of Sequential at src/main.rs:12:9: …`.
    #[track_caller]
    pub fn forward_inspect(
        &self,
        x: &Var<T>,
        mut inspect: impl FnMut(&str, &Var<T>),
    ) -> Result<Var<T>> {
        let site = Site::caller();
        let mut h = x.clone();
        for (name, layer) in &self.layers {
            h = layer
                .forward(&h)
                .map_err(|e| e.in_module(name, layer.kind(), "Sequential", site))?;
            inspect(name, &h);
        }
        Ok(h)
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Element> ModuleState<T> for Sequential<T> {
    fn visit_children(&self, prefix: &str, f: &mut dyn FnMut(&str, &dyn ModuleState<T>)) {
        for (name, layer) in &self.layers {
            f(&format!("{prefix}{name}"), layer.as_ref());
        }
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    #[track_caller]
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_inspect(x, |_, _| {})
    }
}
