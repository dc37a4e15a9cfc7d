//! Which items a caller's lists show: [`PolicyEngine::visible`], the arguments unknown.

mod common;

#[path = "../benches/corpus.rs"]
mod corpus;

use common::{Call, call, engine};
use proptest::prelude::*;
use serde_json::json;
use warden_policy::{Action, PolicyEngine};

const POLICIES: &str = r#"
// Finance pays up to 1,000 per call.
@id("finance-pays")
permit (principal in Group::"finance", action == Action::"call_tool", resource == Tool::"bank.pay")
when {
  context.arguments has amount &&
  context.decimal_arguments.amount.lessThanOrEqual(decimal("1000.0"))
};

// Nobody pays into a blocked account: decided per call, hides nothing.
@id("blocked-account")
forbid (principal, action == Action::"call_tool", resource == Tool::"bank.pay")
when { context.arguments has to && context.arguments.to == "XX00" };

// The group test after the argument test is still evaluated.
@id("ops-scales")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.scale")
when { context.arguments has replicas && principal in Group::"ops" };

// An argument test that cannot help: the rest of the condition is never true.
@id("never")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.never")
when { context.arguments has x && context.hour > 23 };

// An argument test under `unless`.
@id("dry-runs-only")
permit (principal in Group::"ops", action == Action::"call_tool", resource == Tool::"ops.migrate")
unless { context.arguments has apply && context.arguments.apply == true };

// Reboots: free, except on Wednesdays, when any argument or none is forbidden.
@id("reboots")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.reboot");

@id("no-reboots-on-wednesday")
forbid (principal, action == Action::"call_tool", resource == Tool::"ops.reboot")
when { context.arguments has force || context.weekday == "wed" };

// Writes and deletions with consent; the autorunner never deletes.
@id("writes-with-consent")
@consent("once")
permit (principal, action == Action::"call_tool", resource is Tool)
when { resource.hasTag("access") && resource.getTag("access") == "write" };

@id("no-deletion-by-autorunner")
forbid (principal, action == Action::"call_tool", resource == Tool::"files.delete")
when { context has agent && context.agent == Agent::"autorunner" };

// A prompt for support, with an argument condition.
@id("support-prompts")
permit (principal in Group::"support", action == Action::"get_prompt", resource == Prompt::"crm.reply")
when { context.arguments has tone && context.arguments.tone != "rude" };
"#;

/// 2026-03-14, a Saturday, 10:30 UTC.
const SATURDAY: u64 = 1_773_484_200;

#[test]
fn lists_what_some_arguments_make_callable() {
    let engine = engine(POLICIES);
    let finance = || call("bank.pay").groups(&["finance"]);
    let write = |tool: &str| call(tool).tag("access", "write");
    let cases: Vec<(&str, Call, bool)> = vec![
        ("argument-conditioned permit, its group", finance(), true),
        (
            "argument-conditioned permit, another group",
            call("bank.pay").groups(&["eng"]),
            false,
        ),
        (
            "the arguments of the request are ignored",
            finance().args(json!({ "amount": 5000 })),
            true,
        ),
        (
            "group test after the argument test, its group",
            call("ops.scale").groups(&["ops"]),
            true,
        ),
        (
            "group test after the argument test, another group",
            call("ops.scale").groups(&["eng"]),
            false,
        ),
        (
            "never true whatever the arguments",
            call("ops.never"),
            false,
        ),
        (
            "argument test under unless",
            call("ops.migrate").groups(&["ops"]),
            true,
        ),
        (
            "forbid that holds whatever the arguments",
            call("ops.reboot"),
            false,
        ),
        (
            "the same forbid on another day depends on the arguments",
            call("ops.reboot").at(SATURDAY, 0),
            true,
        ),
        ("consent permit", write("files.write"), true),
        (
            "consent permit, the forbid names another agent",
            write("files.delete").agent("claude-desktop"),
            true,
        ),
        (
            "forbid on a named agent",
            write("files.delete").agent("autorunner"),
            false,
        ),
        (
            "the named agent still sees other tools",
            write("files.write").agent("autorunner"),
            true,
        ),
        ("no permit", call("files.format"), false),
        (
            "no permit for that group",
            call("ops.migrate").groups(&["finance"]),
            false,
        ),
        (
            "prompt with an argument condition",
            call("crm.reply")
                .action(Action::GetPrompt)
                .groups(&["support"]),
            true,
        ),
        (
            "prompt, another group",
            call("crm.reply").action(Action::GetPrompt),
            false,
        ),
    ];
    for (name, request, visible) in cases {
        assert_eq!(request.visible(&engine), visible, "{name}: {request:?}");
    }
}

#[test]
fn an_argument_forbid_still_decides_the_call() {
    let engine = engine(POLICIES);
    let pay = |to: &str| {
        call("bank.pay")
            .groups(&["finance"])
            .args(json!({ "amount": 10, "to": to }))
    };
    assert!(pay("XX00").visible(&engine));
    assert!(!pay("XX00").decide(&engine).outcome.visible());
    assert!(pay("DE02").decide(&engine).outcome.visible());
}

#[test]
fn the_example_set_lists_transfers_for_finance_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/example");
    let engine = PolicyEngine::load_dir(&dir).expect("example loads");
    let transfer = || call("bank.transfer").tag("access", "payment");
    assert!(transfer().groups(&["finance"]).visible(&engine));
    assert!(!transfer().groups(&["eng"]).visible(&engine));
    // `decide` without arguments hides it: the amount is missing.
    assert!(
        !transfer()
            .groups(&["finance"])
            .decide(&engine)
            .outcome
            .visible()
    );
}

/// Whatever some arguments make callable is listed.
fn listed_when_callable(engine: &PolicyEngine, request: &Call) -> Result<(), TestCaseError> {
    if request.decide(engine).outcome.visible() {
        prop_assert!(
            request.visible(engine),
            "callable but not listed: {request:?}"
        );
    }
    Ok(())
}

fn arguments() -> impl Strategy<Value = serde_json::Value> {
    let value = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        (-2_000_000i64..2_000_000).prop_map(|c| serde_json::Value::from(c as f64 / 100.0)),
        "[a-zX0-9]{0,4}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    let names = prop_oneof![
        Just("amount"),
        Just("to"),
        Just("replicas"),
        Just("x"),
        Just("apply"),
        Just("force"),
        Just("tone"),
    ];
    prop::collection::btree_map(names, value, 0..5).prop_map(|m| json!(m))
}

proptest! {
    #[test]
    fn every_callable_item_is_listed(
        args in arguments(),
        tool in prop::sample::select(vec![
            "bank.pay", "ops.scale", "ops.never", "ops.migrate", "ops.reboot", "files.delete",
            "files.write", "crm.reply",
        ]),
        groups in prop::sample::subsequence(vec!["finance", "ops", "support", "eng"], 0..3),
        agent in prop::option::of(prop::sample::select(vec!["autorunner", "desktop"])),
        saturday in any::<bool>(),
    ) {
        let engine = engine(POLICIES);
        let mut request = call(tool).groups(&groups).tag("access", "write").args(args);
        if tool == "crm.reply" {
            request = request.action(Action::GetPrompt);
        }
        if let Some(agent) = agent {
            request = request.agent(agent);
        }
        if saturday {
            request = request.at(SATURDAY, 0);
        }
        listed_when_callable(&engine, &request)?;
    }
}

#[test]
fn every_callable_item_of_a_large_generated_set_is_listed() {
    let engine = PolicyEngine::from_sources(&corpus::policies(4_200)).expect("corpus loads");
    let (mut callable, mut listed) = (0, 0);
    for sample in corpus::samples(2_000, 5).iter().filter(|s| !s.list) {
        let request = sample.request();
        let decided = engine.decide(&request).outcome.visible();
        let visible = engine.visible(&request);
        assert!(!decided || visible, "callable but not listed: {request:?}");
        callable += usize::from(decided);
        listed += usize::from(visible);
    }
    // Argument conditions make more items listed than callable with these arguments, not all.
    assert!(listed > callable, "{listed} listed, {callable} callable");
    assert!(listed < 2_000 * 19 / 20, "{listed} listed");
}
