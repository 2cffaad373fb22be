#![allow(clippy::duplicate_mod)] // each example includes the shared plot helper itself
//! The examples' claims, checked on small sizes: each example file is compiled in here
//! as a module and its `run` function called.

#[path = "../examples/shared_weights.rs"]
#[allow(dead_code)]
mod shared_weights;

#[path = "../examples/init_depth.rs"]
#[allow(dead_code)]
mod init_depth;

#[path = "../examples/xor.rs"]
#[allow(dead_code)]
mod xor;

#[path = "../examples/graph.rs"]
#[allow(dead_code)]
mod graph;

#[path = "../examples/gradcheck.rs"]
#[allow(dead_code)]
mod gradcheck_example;

#[path = "../examples/higher_order.rs"]
#[allow(dead_code)]
mod higher_order;

#[test]
fn higher_order_hvp_penalty_and_maml_claims_hold() {
    let err = higher_order::hvp_error().unwrap();
    assert!(err < 1e-8, "Hv differs from finite differences by {err:e}");
    let log = higher_order::gradient_penalty(300).unwrap();
    let (first, last) = (log[0], log[log.len() - 1]);
    assert!(last.3 < first.3 / 10.0, "penalty {} -> {}", first.3, last.3);
    assert!((last.2 - 1.0).abs() < 0.2, "gradient norm {}", last.2);
    let r = higher_order::maml(2000).unwrap();
    assert!(
        r.maml < 0.85 * r.pretrained && r.pretrained < r.random,
        "random {} pretrained {} maml {}",
        r.random,
        r.pretrained,
        r.maml
    );
}

#[test]
fn shared_weights_three_contributions_sum_to_the_gradient() {
    let r = shared_weights::run().unwrap();
    assert_eq!(r.sum, r.shared);
    assert!(r
        .contributions
        .iter()
        .all(|c| c.data().iter().any(|v| v.abs() > 1e-3)));
    assert_ne!(r.contributions[0], r.contributions[1]);
}

#[test]
fn init_depth_he_keeps_scale_while_naive_collapses() {
    use init_depth::Init;
    let he = init_depth::activation_std(Init::He, 4).unwrap();
    let ratio = he[init_depth::DEPTH - 1] / he[0];
    assert!(
        (0.5..=2.0).contains(&ratio),
        "He: last/first std ratio {ratio}"
    );
    let naive = init_depth::activation_std(Init::Naive, 1).unwrap();
    assert!(
        naive[init_depth::DEPTH - 1] < 1e-6 * naive[0],
        "naive init did not collapse: {naive:?}"
    );
    let glorot = init_depth::activation_std(Init::Glorot, 1).unwrap();
    assert!(
        glorot[init_depth::DEPTH - 1] < 0.01 * glorot[0],
        "Glorot did not shrink: {glorot:?}"
    );
}

#[test]
fn xor_needs_a_hidden_layer() {
    let models = xor::run(300).unwrap();
    assert!(
        models[0].accuracy < 0.75,
        "logistic regression separated XOR: {}",
        models[0].accuracy
    );
    for m in &models[1..] {
        assert_eq!(m.accuracy, 1.0, "{} reached {}", m.name, m.accuracy);
    }
}

#[test]
fn graph_dot_has_one_node_per_record_and_valid_edges() {
    let tape = graph::record().unwrap();
    let dot = tape.to_dot();
    assert!(dot.starts_with("digraph tape {") && dot.trim_end().ends_with('}'));
    let nodes: Vec<&str> = dot.lines().filter(|l| l.contains("[label=")).collect();
    assert_eq!(nodes.len(), tape.len());
    for edge in dot.lines().filter(|l| l.contains("->")) {
        let ids: Vec<usize> = edge
            .trim()
            .trim_end_matches(';')
            .split(" -> ")
            .map(|n| n[1..].parse().unwrap())
            .collect();
        assert!(ids[0] < ids[1] && ids[1] < tape.len(), "{edge}");
    }
    // the shared weight is one node feeding two linear ops
    let shared_uses = tape
        .records()
        .iter()
        .filter(|r| r.op == "linear" && r.inputs.contains(&5))
        .count();
    assert_eq!(shared_uses, 2);
}

#[test]
fn gradcheck_example_passes_correct_rules_and_catches_the_wrong_one() {
    let (composite, good, bad) = gradcheck_example::run();
    assert!(composite.is_ok() && good.is_ok());
    assert!(matches!(bad, Err(chainrule::Error::Gradcheck(_))));
    let [second, module, module2, module_bad] = gradcheck_example::run_module_checks();
    assert!(second.is_ok() && module.is_ok() && module2.is_ok());
    match module_bad {
        // the wrong rule is softplus's input gradient: every element below it is
        // off (13 of 16), the worst one the model's input; the scale's gradient is right
        Err(chainrule::Error::Gradcheck(m)) => {
            assert_eq!((m.name.as_str(), m.failed), ("input 0", 13));
        }
        other => panic!("the wrong rule was not caught: {other:?}"),
    }
}
