//! The example policy set (`tests/policies/example/`, a copy of the blocks of the policy guide
//! `docs/policies.md`, checked by `tests/docs.rs`) decides as its comments say.

mod common;

use std::path::Path;

use common::call;
use serde_json::json;
use warden_policy::{Action, ConsentRule, Outcome, PolicyEngine, Reason};

fn example() -> PolicyEngine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/example");
    PolicyEngine::load_dir(&dir).unwrap_or_else(|e| panic!("example does not load:\n{e}"))
}

#[test]
fn loads_every_file_of_the_directory() {
    let engine = example();
    assert_eq!(engine.len(), 6);
    let ids: Vec<&str> = engine.policy_ids().collect();
    // Files in name order: agents, everyone, finance, writes.
    assert_eq!(
        ids,
        [
            "no-deletion-by-autorunner",
            "everyone-lists",
            "read-only-tools",
            "finance-transfers",
            "transfer-limit",
            "write-tools-need-consent",
        ]
    );
}

#[test]
fn decides_as_documented() {
    let engine = example();
    let read = || call("files.read_file").tag("access", "read");
    let write = || call("files.write_file").tag("access", "write");
    let delete = || call("files.delete_file").tag("access", "write");
    let transfer = |amount: serde_json::Value| {
        call("bank.transfer")
            .tag("access", "payment")
            .args(json!({ "amount": amount, "to": "DE02120300000000202051" }))
    };
    let once = Outcome::Consent(ConsentRule::Once);
    let cases = [
        (
            "anyone reads",
            read(),
            Outcome::Allow,
            vec!["read-only-tools"],
        ),
        (
            "anyone lists",
            call("files").action(Action::ListTools),
            Outcome::Allow,
            vec!["everyone-lists"],
        ),
        (
            "writes need consent",
            write(),
            once,
            vec!["write-tools-need-consent"],
        ),
        (
            "deleting needs consent",
            delete().agent("claude-desktop"),
            once,
            vec!["write-tools-need-consent"],
        ),
        (
            "autorunner never deletes",
            delete().agent("autorunner"),
            Outcome::Deny,
            vec!["no-deletion-by-autorunner"],
        ),
        (
            "autorunner may read",
            read().agent("autorunner"),
            Outcome::Allow,
            vec!["read-only-tools"],
        ),
        (
            "finance transfers 500",
            transfer(json!(500)).groups(&["finance"]),
            Outcome::Allow,
            vec!["finance-transfers"],
        ),
        (
            "finance transfers 1000.0",
            transfer(json!(1000.0)).groups(&["finance"]),
            Outcome::Allow,
            vec!["finance-transfers"],
        ),
        (
            "finance transfers 999.95",
            transfer(json!(999.95)).groups(&["finance"]),
            Outcome::Allow,
            vec!["finance-transfers"],
        ),
        (
            "a cent over",
            transfer(json!(1000.01)).groups(&["finance"]),
            Outcome::Deny,
            vec!["transfer-limit"],
        ),
        (
            "over the limit",
            transfer(json!(5000)).groups(&["finance"]),
            Outcome::Deny,
            vec!["transfer-limit"],
        ),
        (
            "not in finance",
            transfer(json!(500)).groups(&["engineering"]),
            Outcome::Deny,
            vec![],
        ),
        (
            "amount missing",
            call("bank.transfer")
                .groups(&["finance"])
                .args(json!({"to": "x"})),
            Outcome::Deny,
            vec![],
        ),
        (
            "untagged tool",
            call("files.format_disk"),
            Outcome::Deny,
            vec![],
        ),
    ];
    for (name, request, outcome, policies) in cases {
        let decision = request.decide(&engine);
        assert_eq!(decision.outcome, outcome, "{name}: {}", decision.explain());
        assert_eq!(
            decision.policies,
            policies,
            "{name}: {}",
            decision.explain()
        );
    }
}

#[test]
fn an_ill_typed_amount_is_denied_by_the_limit_failing_closed() {
    let decision = call("bank.transfer")
        .groups(&["finance"])
        .args(json!({ "amount": "500" }))
        .decide(&example());
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.reason, Reason::ForbidFailed);
    assert_eq!(decision.policies, ["transfer-limit"]);
    assert_eq!(decision.errors.len(), 2, "{:?}", decision.errors);
    let text = decision.explain();
    assert!(
        text.starts_with("DENY: forbid transfer-limit could not be evaluated"),
        "{text}"
    );
}

#[test]
fn explains_a_consent() {
    let decision = call("files.write_file")
        .tag("access", "write")
        .decide(&example());
    assert_eq!(
        decision.explain(),
        "CONSENT (once): permitted only after the user approves (consent), by write-tools-need-consent"
    );
}
