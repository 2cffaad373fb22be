//! Checking a module's own parameters: a custom module passes at first and second
//! order, and a wrong rule inside it is named by the parameter's name.

use chainrule_autograd::{Error, Grads, Operand, Param, Reduction, Result, Saved, Tensor, Var};
use chainrule_nn::check::{gradcheck_module, gradgradcheck_module};
use chainrule_nn::layers::{Linear, Sequential, Tanh};
use chainrule_nn::{Module, ModuleState};
use rand::SeedableRng;

/// y = x · exp(scale), elementwise per feature, with a hand-written rule; `wrong`
/// forgets the exp in the gradient of `scale`.
#[derive(Module)]
struct Gain {
    scale: Param<f64>,
    wrong: bool,
}

impl Module<f64> for Gain {
    fn forward(&self, x: &Var<f64>) -> Result<Var<f64>> {
        let s = x.tape().param(&self.scale);
        let e = s.value().map(f64::exp);
        let y = x.value().broadcast_zip(&e, |x, e| x * e)?;
        let (xs, ss, wrong) = (Saved::of(x), Saved::of(&s), self.wrong);
        x.tape()
            .record("gain", y, &[x, &s], move |g: &Operand<f64>, _: &[bool]| {
                let (x, s) = (g.load(&xs), g.load(&ss));
                let e = s.unary(chainrule_autograd::Unary::Exp);
                let ds = if wrong {
                    g.mul(&x)?
                } else {
                    g.mul(&x)?.mul(&e)?
                };
                let ds = ds.sum_to(s.shape())?;
                Ok(Grads::from_iter([Some(g.mul(&e)?), Some(ds)]))
            })
    }
}

fn model(wrong: bool) -> Sequential<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    Sequential::new()
        .push(Linear::new(3, 4, &mut rng).unwrap())
        .push(Tanh)
        .push(Gain {
            scale: Param::new(Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.05], &[4]).unwrap()),
            wrong,
        })
}

fn loss(m: &Sequential<f64>, v: &[Var<f64>]) -> Result<Var<f64>> {
    m.forward(&v[0])?.cross_entropy(&[1, 3], Reduction::Mean)
}

fn input() -> Tensor<f64> {
    Tensor::from_vec(vec![0.5, -1.0, 0.25, 0.8, 0.1, -0.6], &[2, 3]).unwrap()
}

#[test]
fn a_custom_module_passes_at_first_and_second_order() {
    let m = model(false);
    let before = m.parameters()[0].value();
    let r1 = gradcheck_module(&m, &[input()], loss).unwrap();
    let r2 = gradgradcheck_module(&m, &[input()], loss).unwrap();
    assert_eq!(r1.checked, 12 + 4 + 4 + 6);
    assert_eq!(r2.checked, r1.checked);
    assert_eq!(m.parameters()[0].value().data(), before.data(), "restored");
}

#[test]
fn a_wrong_rule_is_named_by_its_parameter() {
    let m = model(true);
    let err = gradcheck_module(&m, &[input()], loss).unwrap_err();
    let Error::Gradcheck(mm) = &err else {
        panic!("{err}")
    };
    assert_eq!(mm.name, "2.scale", "{err}");
    assert!(err.to_string().contains("2.scale element ["), "{err}");
}
