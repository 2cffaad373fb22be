//! `#[derive(Module)]`: parameter, buffer and submodule walks with PyTorch's names for
//! params, `Option` and `Vec` fields, nested modules and generic structs; train/eval
//! reaching every submodule; freezing.

use chainrule_autograd::{Element, IntTensor, Param, Reduction, Result, Tape, Tensor, Var};
use chainrule_nn::layers::{Dropout, Linear, ReLU, Sequential};
use chainrule_nn::{Buffer, Module, ModuleState};
use rand::{rngs::StdRng, SeedableRng};

#[derive(Module)]
struct Block<T: Element> {
    fc: Linear<T>,
    extra: Option<Linear<T>>,
    scale: Param<T>,
    gates: Vec<Param<T>>,
    seen: Buffer<T>,
    hidden: usize,
}

impl<T: Element> Module<T> for Block<T> {
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let h = self.fc.forward(x)?;
        let h = match &self.extra {
            Some(e) => e.forward(&h)?,
            None => h,
        };
        h.mul(&x.tape().param(&self.scale))
    }
}

/// A tuple struct holding a list of blocks and a dropout, without type parameters.
#[derive(Module)]
struct Net(Vec<Block<f32>>, Dropout, #[module(skip)] bool);

impl Module for Net {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for b in &self.0 {
            h = b.forward(&h)?;
        }
        self.1.forward(&h)
    }
}

fn block<T: Element>(extra: bool, rng: &mut StdRng) -> Block<T> {
    Block {
        fc: Linear::new(3, 3, rng).unwrap(),
        extra: extra.then(|| Linear::without_bias(3, 3, rng).unwrap()),
        scale: Param::new(Tensor::ones(&[1]).unwrap()),
        gates: vec![Param::new(Tensor::zeros(&[2]).unwrap()); 2],
        seen: Buffer::new(Tensor::zeros(&[1]).unwrap()),
        hidden: 3,
    }
}

#[test]
fn derived_walks_name_every_field_like_pytorch() {
    let mut rng = StdRng::seed_from_u64(0);
    let b: Block<f64> = block(true, &mut rng);
    assert_eq!(b.hidden, 3);
    let names: Vec<String> = b.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "scale",
            "gates.0",
            "gates.1",
            "fc.weight",
            "fc.bias",
            "extra.weight"
        ]
    );
    let buffers: Vec<String> = b.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers, ["seen"]);
    let net = Net(
        vec![block(false, &mut rng), block(true, &mut rng)],
        Dropout::new(0.5, 1).unwrap(),
        true,
    );
    assert!(net.2, "a skipped field stays plain data");
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names[..4],
        ["0.0.scale", "0.0.gates.0", "0.0.gates.1", "0.0.fc.weight"]
    );
    assert!(names.contains(&"0.1.extra.weight".to_string()));
    assert_eq!(net.named_buffers().len(), 2);
    let modules = net.named_modules();
    let listed: Vec<(&str, &str)> = modules.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    assert_eq!(
        listed,
        [
            ("", "Net"),
            ("0.0", "Block"),
            ("0.0.fc", "Linear"),
            ("0.1", "Block"),
            ("0.1.fc", "Linear"),
            ("0.1.extra", "Linear"),
            ("1", "Dropout")
        ]
    );
}

#[test]
fn eval_reaches_a_dropout_inside_a_derived_module_and_a_sequential() {
    let mut rng = StdRng::seed_from_u64(1);
    let net = Net(
        vec![block(false, &mut rng)],
        Dropout::new(0.5, 2).unwrap(),
        false,
    );
    let seq = Sequential::<f32>::new()
        .push(Net(vec![], Dropout::new(0.9, 3).unwrap(), false))
        .push(ReLU);
    let x = Tape::<f32>::new().constant(Tensor::ones(&[4, 3]).unwrap());
    // training: two passes draw different masks
    assert_ne!(
        net.forward(&x).unwrap().value(),
        net.forward(&x).unwrap().value()
    );
    net.eval();
    seq.eval();
    assert_eq!(
        net.forward(&x).unwrap().value(),
        net.forward(&x).unwrap().value()
    );
    assert_eq!(seq.forward(&x).unwrap().value(), x.value());
    net.train();
    assert_ne!(
        net.forward(&x).unwrap().value(),
        net.forward(&x).unwrap().value()
    );
}

#[test]
fn a_frozen_module_gets_no_gradient_computed() {
    let mut rng = StdRng::seed_from_u64(2);
    let (frozen, trained) = (
        Linear::<f64>::new(3, 3, &mut rng).unwrap(),
        Linear::<f64>::new(3, 2, &mut rng).unwrap(),
    );
    frozen.freeze();
    let tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[2, 3]).unwrap());
    let loss = trained
        .forward(&frozen.forward(&x).unwrap())
        .unwrap()
        .cross_entropy(&IntTensor::from(vec![0, 1]), Reduction::Mean)
        .unwrap();
    let grads = loss.backward().unwrap();
    assert!(frozen.parameters().iter().all(|p| grads.get(p).is_none()));
    assert!(trained.parameters().iter().all(|p| grads.get(p).is_some()));
    // no record of the frozen weights: only x's linear, the trained one and the loss
    assert!(tape.records().iter().filter(|r| r.op == "param").count() == 2);
    frozen.unfreeze();
    assert!(frozen.parameters().iter().all(Param::requires_grad));
}

#[test]
fn apply_visits_every_module_parents_first() {
    let mut rng = StdRng::seed_from_u64(3);
    let net = Net(
        vec![block(true, &mut rng)],
        Dropout::new(0.1, 0).unwrap(),
        false,
    );
    let mut seen = Vec::new();
    net.apply(&mut |name, m| seen.push(format!("{name}:{}:{}", m.kind(), m.parameters().len())));
    assert_eq!(
        seen,
        [
            ":Net:6",
            "0.0:Block:6",
            "0.0.fc:Linear:2",
            "0.0.extra:Linear:1",
            "1:Dropout:0"
        ]
    );
    let _: &dyn ModuleState = &net;
}
