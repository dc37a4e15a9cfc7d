//! Data rules (`@dlp_results`, `@dlp_arguments`): they match like any policy, grant nothing, and
//! the strictest matching action wins per detector.

mod common;

use common::{call, engine};
use serde_json::json;
use warden_policy::{Action, DataAction, Outcome, PolicyEngine, Reason};

const POLICIES: &str = r#"
@id("support-uses-crm")
permit (principal in Group::"support", action, resource in Server::"crm");

@id("contractors-see-no-contact-data")
@dlp_results("email=block, phone=block")
permit (principal in Group::"contractors", action, resource in Server::"crm");

@id("crm-pseudonymises")
@dlp_results("email=pseudonymise, default=mask")
@dlp_arguments("email=report")
permit (principal, action == Action::"call_tool", resource == Tool::"crm.lookup");

@id("big-exports-block-cards")
@dlp_results("card=block")
permit (principal, action == Action::"call_tool", resource == Tool::"crm.export")
when { context.arguments has rows && context.arguments.rows > 100 };
"#;

#[test]
fn a_data_rule_grants_nothing() {
    let e = engine(POLICIES);
    // Every data rule matches a contractor calling crm.lookup, and no permission does.
    let d = call("crm.lookup").groups(&["contractors"]).decide(&e);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.reason, Reason::NoPermit);
    assert!(d.policies.is_empty(), "{:?}", d.policies);
    let ids: Vec<&str> = d.data.policies().collect();
    assert_eq!(
        ids,
        ["contractors-see-no-contact-data", "crm-pseudonymises"]
    );
    assert!(
        d.explain()
            .contains("data rules: contractors-see-no-contact-data, crm-pseudonymises"),
        "{}",
        d.explain()
    );
    // Nor does it put a tool in a list.
    assert!(!call("crm.lookup").groups(&["contractors"]).visible(&e));
    assert!(
        !call("crm")
            .groups(&["contractors"])
            .action(Action::ListTools)
            .decide(&e)
            .outcome
            .visible()
    );
    // The same unchanged reference: Cedar's own authorizer, through the same precedence.
    let reference = call("crm.lookup")
        .groups(&["contractors"])
        .with_request(|r| e.decide_unindexed(r));
    assert_eq!(reference, d);
}

#[test]
fn the_strictest_matching_action_wins_per_detector() {
    let e = engine(POLICIES);
    let both = call("crm.lookup")
        .groups(&["support", "contractors"])
        .decide(&e);
    assert_eq!(both.outcome, Outcome::Allow);
    assert_eq!(both.policies, ["support-uses-crm"]);
    let results = |d: &warden_policy::Decision, det: &str| d.data.action(true, det);
    assert_eq!(results(&both, "email"), Some(DataAction::Block));
    assert_eq!(results(&both, "phone"), Some(DataAction::Block));
    assert_eq!(results(&both, "card"), Some(DataAction::Mask));
    assert_eq!(both.data.action(false, "email"), Some(DataAction::Report));
    assert_eq!(both.data.action(false, "card"), None);

    let support = call("crm.lookup").groups(&["support"]).decide(&e);
    assert_eq!(results(&support, "email"), Some(DataAction::Pseudonymise));
    // Another tool of the server: only the server-wide rule, and only for contractors.
    let other = call("crm.notes").groups(&["support"]).decide(&e);
    assert!(other.data.is_empty());
}

#[test]
fn a_rule_on_arguments_matches_only_when_they_hold() {
    let e = engine(POLICIES);
    let export = |rows: serde_json::Value| {
        call("crm.export")
            .groups(&["support"])
            .args(json!({ "rows": rows }))
            .decide(&e)
    };
    assert!(export(json!(10)).data.is_empty());
    assert_eq!(
        export(json!(1000)).data.action(true, "card"),
        Some(DataAction::Block)
    );
    // A condition that cannot be evaluated (rows of the wrong type) counts as matching, with
    // block for everything it names: in doubt, the data is withheld.
    let doubt = export(json!("lots"));
    assert_eq!(doubt.data.action(true, "card"), Some(DataAction::Block));
    assert_eq!(doubt.outcome, Outcome::Allow);
    assert_eq!(doubt.errors.len(), 1, "{:?}", doubt.errors);
}

#[test]
fn malformed_rules_do_not_load_and_unknown_detectors_are_named() {
    let load = |text: &str| {
        PolicyEngine::from_sources(&[("p.cedar".to_string(), text.to_string())])
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let scope = "(principal, action, resource);";
    for (text, says) in [
        (
            format!("@dlp_results(\"email=hide\")\npermit {scope}"),
            "is not a DLP action",
        ),
        (
            format!("@dlp_results(\"email\")\npermit {scope}"),
            "detector=action pairs",
        ),
        (
            format!("@dlp_results(\"email=block\")\nforbid {scope}"),
            "belong on a plain permit",
        ),
        (
            format!("@consent(\"once\")\n@dlp_arguments(\"card=block\")\npermit {scope}"),
            "belong on a plain permit",
        ),
    ] {
        let e = load(&text);
        assert!(e.contains("p.cedar:") && e.contains(says), "{text}: {e}");
    }

    let e = engine(POLICIES);
    assert!(e.has_data_rules());
    let all = ["email", "phone", "card"];
    assert!(e.check_data_rules(|d| all.contains(&d)).is_ok());
    let errors = e
        .check_data_rules(|d| d != "phone")
        .unwrap_err()
        .to_string();
    assert!(
        errors
            .contains("test.cedar:5:1: @dlp_results names \"phone\", which is not a DLP detector"),
        "{errors}"
    );
    assert!(!engine("permit (principal, action, resource);").has_data_rules());
}

#[test]
fn the_guides_data_rules_load() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies.md"
    ))
    .unwrap();
    let section = &guide[guide.find("## Data rules").unwrap()..];
    let start = section.find("```text\n").unwrap() + "```text\n".len();
    let end = start + section[start..].find("```").unwrap();
    let e = engine(&section[start..end]);
    assert_eq!(e.len(), 2);
    assert!(e.has_data_rules());
    let export = call("crm.export").args(json!({ "rows": 500 })).decide(&e);
    assert_eq!(export.outcome, Outcome::Deny, "a data rule grants nothing");
    assert_eq!(
        export.data.action(true, "iban"),
        Some(DataAction::Pseudonymise)
    );
}
