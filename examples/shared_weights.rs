//! "If the same module is used three times in one iteration, does its gradient need
//! special processing? Will backward() work correctly?" One conv block applied at three
//! points of a model (like a deformable-compensation block reused at three scales):
//! prints each use's contribution, their sum, and the gradient backward delivers.
//!
//! `cargo run --release --example shared_weights`

use chainrule::nn::layers::Conv2d;
use chainrule::nn::Module;
use chainrule::{Conv2dParams, Gradients, Reduction, Tape, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// What the example measured.
pub struct Report {
    /// The weight gradient each use contributed (from three identical copies).
    pub contributions: [Tensor<f64>; 3],
    /// Their sum, added in the order backward meets the uses (last use first).
    pub sum: Tensor<f64>,
    /// The gradient of the single shared block's weight.
    pub shared: Tensor<f64>,
}

fn block(rng: &mut StdRng) -> Conv2d<f64> {
    Conv2d::with_options(
        4,
        4,
        [3, 3],
        Conv2dParams {
            padding: [1, 1],
            ..Default::default()
        },
        true,
        rng,
    )
    .expect("valid groups")
}

/// x → block → tanh → block → tanh → block → loss, with the blocks given.
fn backward(
    blocks: [&Conv2d<f64>; 3],
    x: &Tensor<f64>,
    target: &Tensor<f64>,
) -> chainrule::Result<Gradients<f64>> {
    let tape = Tape::new();
    let mut h = tape.constant(x.clone());
    for b in blocks {
        h = b.forward(&h)?.tanh();
    }
    h.mse_loss(&tape.constant(target.clone()), Reduction::Sum)?
        .backward()
}

/// Runs the shared model and three separate copies.
pub fn run() -> chainrule::Result<Report> {
    let mut rng = StdRng::seed_from_u64(3);
    let shared = block(&mut rng);
    let copy = || {
        Conv2d::from_tensors(
            shared.weight.value(),
            shared.bias.as_ref().map(|b| b.value()),
            shared.params,
        )
    };
    let copies = [copy(), copy(), copy()];
    let mut rand = |dims: &[usize]| {
        Tensor::from_vec(
            (0..dims.iter().product())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            dims,
        )
    };
    let (x, target) = (rand(&[2, 4, 6, 6])?, rand(&[2, 4, 6, 6])?);
    let g_shared = backward([&shared; 3], &x, &target)?;
    let g_copies = backward([&copies[0], &copies[1], &copies[2]], &x, &target)?;
    let contributions = [0, 1, 2].map(|i| {
        g_copies
            .get(&copies[i].weight)
            .expect("each copy is used")
            .clone()
    });
    let mut sum = contributions[2].clone();
    sum.add_assign(&contributions[1])?;
    sum.add_assign(&contributions[0])?;
    Ok(Report {
        contributions,
        sum,
        shared: g_shared
            .get(&shared.weight)
            .expect("the block is used")
            .clone(),
    })
}

fn head(t: &Tensor<f64>) -> String {
    let v: Vec<String> = t.data()[..4].iter().map(|v| format!("{v:+.6}")).collect();
    let norm = t.data().iter().map(|v| v * v).sum::<f64>().sqrt();
    format!("[{} …]  norm {norm:.6}", v.join(", "))
}

#[allow(dead_code)]
fn main() -> chainrule::Result<()> {
    let r = run()?;
    println!("one conv block (weight [4, 4, 3, 3]) used at three points of the model\n");
    for (i, c) in r.contributions.iter().enumerate() {
        println!("use {}            {}", i + 1, head(c));
    }
    println!("sum of the uses    {}", head(&r.sum));
    println!("backward delivers  {}", head(&r.shared));
    let max_diff = r
        .sum
        .data()
        .iter()
        .zip(r.shared.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "\nlargest difference: {max_diff:e} ({})",
        if r.sum == r.shared {
            "bit-identical"
        } else {
            "differs"
        }
    );
    println!("No special processing: backward sums the contributions of every use.");
    Ok(())
}
