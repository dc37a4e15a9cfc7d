//! The index and the compiled scopes change how fast a decision is made, never what it is:
//! every decision equals Cedar's own authorizer evaluating every policy.

#[path = "../benches/corpus.rs"]
mod corpus;

use warden_policy::{Decision, PolicyEngine};

fn same(indexed: &Decision, reference: &Decision) -> bool {
    indexed.outcome == reference.outcome
        && indexed.reason == reference.reason
        && indexed.policies == reference.policies
        && indexed.errors.len() == reference.errors.len()
}

#[test]
fn indexed_decisions_equal_cedars_on_a_large_generated_set() {
    let engine = PolicyEngine::from_sources(&corpus::policies(4_200)).expect("corpus loads");
    let samples = corpus::samples(150, 11);
    let mut outcomes = std::collections::HashSet::new();
    for sample in &samples {
        let request = sample.request();
        let indexed = engine.decide(&request);
        let reference = engine.decide_unindexed(&request);
        assert!(
            same(&indexed, &reference),
            "{request:?}\nindexed:   {indexed:?}\nreference: {reference:?}"
        );
        outcomes.insert(format!("{:?}", indexed.reason));
    }
    // The samples reach every rule of the precedence that the corpus can produce.
    for reason in ["Permitted", "ConsentRequired", "Forbidden", "NoPermit"] {
        assert!(outcomes.contains(reason), "no {reason} among {outcomes:?}");
    }
}
