//! LSTM, GRU and MultiheadAttention layers against PyTorch 2.15 (f64): the same
//! parameter names in the same order, and the same outputs for weights set by a
//! formula (`sin(0.37·i + k)/2` for the k-th parameter), as
//! `torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)`,
//! `torch.nn.GRU(3, 4, bidirectional=True)` and `torch.nn.MultiheadAttention(6, 2)`
//! computed them (`tests/data/make_sequence_layers.py` prints them).

use chainrule_autograd::{Tape, Tensor};
use chainrule_nn::layers::{Gru, Lstm, MultiheadAttention, RnnConfig};
use chainrule_nn::ModuleState;
use rand::{rngs::StdRng, SeedableRng};

fn fill(m: &dyn ModuleState<f64>) -> Vec<String> {
    m.named_parameters()
        .into_iter()
        .enumerate()
        .map(|(k, (name, p))| {
            let v = (0..p.numel())
                .map(|i| ((i as f64) * 0.37 + k as f64).sin() * 0.5)
                .collect();
            p.set(Tensor::from_vec(v, &p.dims()).unwrap());
            name
        })
        .collect()
}

fn wave(n: usize, step: f64, f: fn(f64) -> f64, dims: &[usize]) -> Tensor<f64> {
    Tensor::from_vec((0..n).map(|i| f(i as f64 * step)).collect(), dims).unwrap()
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, PyTorch {want:?}");
    }
}

#[test]
fn a_two_layer_bidirectional_batch_first_lstm_matches_pytorch() {
    let cfg = RnnConfig {
        num_layers: 2,
        bidirectional: true,
        batch_first: true,
        ..Default::default()
    };
    let lstm = Lstm::<f64>::new(3, 4, cfg, &mut StdRng::seed_from_u64(0)).unwrap();
    let names = fill(&lstm);
    let layers = |l: usize, rev: &str| {
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
            .map(|w| format!("{w}_l{l}{rev}"))
            .to_vec()
    };
    assert_eq!(
        names,
        [
            layers(0, ""),
            layers(0, "_reverse"),
            layers(1, ""),
            layers(1, "_reverse")
        ]
        .concat()
    );
    let tape = Tape::new();
    let x = tape.constant(wave(30, 0.23, f64::cos, &[2, 5, 3]));
    let (out, (h, c)) = lstm.forward_with(&x, None).unwrap();
    assert_eq!(out.dims(), &[2, 5, 8]);
    close(&[out.sum().value().item().unwrap()], &[-1.6297159824271814]);
    close(
        &out.value().data()[(5 + 3) * 8..(5 + 4) * 8],
        &[
            0.13584534530262296,
            0.1806220560442189,
            0.08187469336578047,
            0.32005193578674573,
            -0.2571595859445029,
            -0.2680267992642677,
            -0.07733775526405089,
            -0.18090792254085777,
        ],
    );
    close(&[h.sum().value().item().unwrap()], &[-2.6331602011259085]);
    close(
        &c.value().data()[3 * 8..4 * 8],
        &[
            -0.5013378283411045,
            -0.7881207027238546,
            -0.15775229595479545,
            -0.25428912407345483,
            -0.6751775243678193,
            -0.7376538961202015,
            -0.4571754547408987,
            0.10554741774526523,
        ],
    );
}

#[test]
fn a_bidirectional_gru_matches_pytorch() {
    let cfg = RnnConfig {
        bidirectional: true,
        ..Default::default()
    };
    let gru = Gru::<f64>::new(3, 4, cfg, &mut StdRng::seed_from_u64(0)).unwrap();
    fill(&gru);
    let tape = Tape::new();
    // PyTorch's input is the LSTM test's transposed to [T, n, input]
    let x = tape
        .constant(wave(30, 0.23, f64::cos, &[2, 5, 3]))
        .transpose(0, 1)
        .unwrap();
    let (out, h) = gru.forward_with(&x, None).unwrap();
    close(&[out.sum().value().item().unwrap()], &[-13.76400809489218]);
    close(
        &out.value().data()[(4 * 2 + 1) * 8..(4 * 2 + 2) * 8],
        &[
            -0.5201656387094327,
            -0.9561668019661885,
            -0.5901628561034725,
            0.16028286405638287,
            0.12122307311769454,
            0.39953103227470366,
            -0.10794466887263733,
            -0.5439384987870717,
        ],
    );
    close(&[h.sum().value().item().unwrap()], &[-3.0301025891871376]);
}

#[test]
fn multihead_attention_matches_pytorch() {
    let mha = MultiheadAttention::<f64>::new(6, 2, false, &mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(
        fill(&mha),
        [
            "in_proj_weight",
            "in_proj_bias",
            "out_proj.weight",
            "out_proj.bias"
        ]
    );
    let tape = Tape::new();
    let q = tape.constant(wave(48, 0.11, f64::cos, &[4, 2, 6]));
    let kv = tape.constant(wave(60, 0.13, f64::sin, &[5, 2, 6]));
    let o = mha.forward_with(&q, &kv, &kv, None, false).unwrap();
    assert_eq!(o.dims(), &[4, 2, 6]);
    close(&[o.sum().value().item().unwrap()], &[-14.4618701210787]);
    close(
        &o.value().data()[(2 * 2 + 1) * 6..(2 * 2 + 2) * 6],
        &[
            -0.2898671777564747,
            0.034262074326418854,
            -0.09954955792030967,
            -0.7796624721238762,
            -0.22412174417586628,
            -0.4449176389136884,
        ],
    );
}
