//! Table-driven decisions over one policy set that exercises every part of the schema.

mod common;

use std::time::Duration;

use common::{Call, call, engine};
use serde_json::json;
use warden_policy::{Action, ConsentRule, Outcome, PolicyEngine, Reason};

const POLICIES: &str = r#"
// Plain permits
@id("eng-reads-repo")
permit (principal in Group::"eng", action == Action::"call_tool", resource in Server::"git");

// `!= false`, not `== true`: equality across types is false rather than an error, so a forbid
// written with `== true` would let `"force": "yes"` through.
@id("forbid-force-push")
forbid (principal, action == Action::"call_tool", resource == Tool::"git.push")
when { context.arguments has force && context.arguments.force != false };

@id("no-pushes-from-ci-bot")
forbid (principal, action, resource in Server::"git")
when { context has agent && context.agent == Agent::"ci-bot" };

// Consent, both kinds, and precedence between them
@id("deploy-once")
@consent("once")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.deploy");

@id("deploy-quarter-hour")
@consent("15m")
permit (principal in Group::"ops", action == Action::"call_tool", resource == Tool::"ops.deploy");

@id("restart-quarter-hour")
@consent("15m")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.restart");

@id("oncall-restarts")
permit (principal in Group::"oncall", action == Action::"call_tool", resource == Tool::"ops.restart");

// Arguments
@id("small-refunds")
permit (principal, action == Action::"call_tool", resource == Tool::"shop.refund")
when {
  context.arguments has amount && context.arguments.amount < 100 &&
  context.arguments has currency && ["EUR", "USD"].contains(context.arguments.currency)
};

@id("precise-prices")
permit (principal, action == Action::"call_tool", resource == Tool::"shop.set_price")
when {
  context.arguments has price &&
  context.arguments.price.lessThanOrEqual(decimal("99.9900"))
};

@id("labelled-issues")
permit (principal, action == Action::"call_tool", resource == Tool::"tracker.create")
when {
  context.arguments has labels && context.arguments.labels.contains("triage") &&
  context.arguments has meta && context.arguments.meta has project &&
  context.arguments.meta.project like "WARD-*"
};

@id("refund-ceiling")
forbid (principal, action == Action::"call_tool", resource == Tool::"shop.refund")
when { context.arguments has amount && context.arguments.amount > 500 };

// Tags
@id("low-risk-for-all")
permit (principal, action == Action::"call_tool", resource is Tool)
when { resource.hasTag("risk") && resource.getTag("risk") == "low" };

@id("never-critical")
forbid (principal, action, resource is Tool)
when { resource.hasTag("risk") && resource.getTag("risk") == "critical" };

// Time of day, weekday
@id("reports-in-office-hours")
permit (principal, action == Action::"call_tool", resource == Tool::"hr.report")
when {
  context.hour >= 9 && context.hour < 17 &&
  !["sat", "sun"].contains(context.weekday)
};

@id("backups-before-2030")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.backup")
when { context.now < datetime("2030-01-01") };

// Client address
@id("admin-from-office")
permit (principal, action == Action::"call_tool", resource == Tool::"admin.console")
when { context has client_ip && context.client_ip.isInRange(ip("10.0.0.0/8")) };

// Era and scopes
@id("legacy-no-subscribe")
forbid (principal, action == Action::"subscribe", resource)
when { context.era == "legacy" };

@id("subscribe-with-scope")
permit (principal, action == Action::"subscribe", resource)
when { context.scopes.contains("resources:subscribe") };

// Resources and prompts
@id("public-docs")
permit (principal, action == Action::"read_resource", resource in Server::"docs")
when { resource.uri like "docs://public/*" };

@id("prompts-for-eng")
permit (principal in Group::"eng", action == Action::"get_prompt", resource == Prompt::"git.review");

@id("bob-lists")
permit (principal == User::"bob", action == Action::"list_tools", resource == Server::"git");
"#;

fn policies() -> PolicyEngine {
    engine(POLICIES)
}

/// 2026-03-14 (a Saturday) 10:30 UTC.
const SATURDAY_MORNING: u64 = 1_773_484_200;
/// 2026-03-11 (a Wednesday) 18:30 UTC.
const WEDNESDAY_EVENING: u64 = 1_773_253_800;

fn minutes(m: u64) -> Outcome {
    Outcome::Consent(ConsentRule::For(Duration::from_secs(m * 60)))
}

#[test]
fn decision_table() {
    let engine = policies();
    let once = Outcome::Consent(ConsentRule::Once);
    let deny = Outcome::Deny;
    let allow = Outcome::Allow;
    let cases: Vec<(&str, Call, Outcome, &[&str])> = vec![
        ("default deny", call("git.status"), deny, &[]),
        (
            "group member allowed",
            call("git.status").groups(&["eng"]),
            allow,
            &["eng-reads-repo"],
        ),
        (
            "other group denied",
            call("git.status").groups(&["sales"]),
            deny,
            &[],
        ),
        (
            "forbid wins over permit",
            call("git.push")
                .groups(&["eng"])
                .args(json!({"force": true})),
            deny,
            &["forbid-force-push"],
        ),
        (
            "forbid not met",
            call("git.push")
                .groups(&["eng"])
                .args(json!({"force": false})),
            allow,
            &["eng-reads-repo"],
        ),
        (
            "absent argument skips forbid",
            call("git.push")
                .groups(&["eng"])
                .args(json!({"force": null})),
            allow,
            &["eng-reads-repo"],
        ),
        (
            "agent-specific forbid",
            call("git.status").groups(&["eng"]).agent("ci-bot"),
            deny,
            &["no-pushes-from-ci-bot"],
        ),
        (
            "other agent allowed",
            call("git.status").groups(&["eng"]).agent("claude-code"),
            allow,
            &["eng-reads-repo"],
        ),
        ("consent once", call("ops.deploy"), once, &["deploy-once"]),
        (
            "strictest consent wins",
            call("ops.deploy").groups(&["ops"]),
            once,
            &["deploy-once", "deploy-quarter-hour"],
        ),
        (
            "consent for a while",
            call("ops.restart"),
            minutes(15),
            &["restart-quarter-hour"],
        ),
        (
            "plain permit beats consent",
            call("ops.restart").groups(&["oncall"]),
            allow,
            &["oncall-restarts"],
        ),
        (
            "argument condition met",
            call("shop.refund").args(json!({"amount": 40, "currency": "EUR"})),
            allow,
            &["small-refunds"],
        ),
        (
            "argument over limit",
            call("shop.refund").args(json!({"amount": 400, "currency": "EUR"})),
            deny,
            &[],
        ),
        (
            "argument over ceiling",
            call("shop.refund").args(json!({"amount": 900, "currency": "EUR"})),
            deny,
            &["refund-ceiling"],
        ),
        (
            "argument missing",
            call("shop.refund").args(json!({"amount": 40})),
            deny,
            &[],
        ),
        ("no arguments at all", call("shop.refund"), deny, &[]),
        (
            "decimal argument",
            call("shop.set_price").args(json!({"price": 19.99})),
            allow,
            &["precise-prices"],
        ),
        (
            "decimal over limit",
            call("shop.set_price").args(json!({"price": 100.5})),
            deny,
            &[],
        ),
        (
            "set and record arguments",
            call("tracker.create")
                .args(json!({"labels": ["bug", "triage", "bug"], "meta": {"project": "WARD-12"}})),
            allow,
            &["labelled-issues"],
        ),
        (
            "nested argument mismatch",
            call("tracker.create")
                .args(json!({"labels": ["triage"], "meta": {"project": "OTHER-1"}})),
            deny,
            &[],
        ),
        (
            "tag allows",
            call("misc.ping").tag("risk", "low"),
            allow,
            &["low-risk-for-all"],
        ),
        (
            "tag forbids",
            call("git.rebase").groups(&["eng"]).tag("risk", "critical"),
            deny,
            &["never-critical"],
        ),
        (
            "office hours",
            call("hr.report"),
            allow,
            &["reports-in-office-hours"],
        ),
        (
            "after hours",
            call("hr.report").at(WEDNESDAY_EVENING, 0),
            deny,
            &[],
        ),
        (
            "after hours UTC is office hours in UTC-8",
            call("hr.report").at(WEDNESDAY_EVENING, -8 * 60),
            allow,
            &["reports-in-office-hours"],
        ),
        (
            "weekend",
            call("hr.report").at(SATURDAY_MORNING, 0),
            deny,
            &[],
        ),
        (
            "datetime",
            call("ops.backup"),
            allow,
            &["backups-before-2030"],
        ),
        (
            "office network",
            call("admin.console").ip("10.20.30.40"),
            allow,
            &["admin-from-office"],
        ),
        (
            "mapped IPv4 is IPv4",
            call("admin.console").ip("::ffff:10.1.1.1"),
            allow,
            &["admin-from-office"],
        ),
        (
            "outside network",
            call("admin.console").ip("192.0.2.1"),
            deny,
            &[],
        ),
        ("unknown address", call("admin.console"), deny, &[]),
        (
            "modern subscribe",
            call("docs")
                .action(Action::Subscribe)
                .scopes(&["resources:subscribe"]),
            allow,
            &["subscribe-with-scope"],
        ),
        (
            "legacy subscribe",
            call("docs")
                .action(Action::Subscribe)
                .scopes(&["resources:subscribe"])
                .era("legacy"),
            deny,
            &["legacy-no-subscribe"],
        ),
        (
            "subscribe without scope",
            call("docs").action(Action::Subscribe),
            deny,
            &[],
        ),
        (
            "public resource",
            resource("docs", "docs://public/readme"),
            allow,
            &["public-docs"],
        ),
        (
            "private resource",
            resource("docs", "docs://private/salaries"),
            deny,
            &[],
        ),
        (
            "public-looking URI on another server",
            resource("wiki", "docs://public/readme"),
            deny,
            &[],
        ),
        (
            "prompt for group",
            call("git.review")
                .action(Action::GetPrompt)
                .groups(&["eng"]),
            allow,
            &["prompts-for-eng"],
        ),
        (
            "list for one user",
            call("git").user("bob").action(Action::ListTools),
            allow,
            &["bob-lists"],
        ),
        (
            "list for another",
            call("git").action(Action::ListTools),
            deny,
            &[],
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

fn resource(server: &str, uri: &str) -> Call {
    let mut c = call(server).action(Action::ReadResource);
    c.target = uri.into();
    c
}

#[test]
fn ill_typed_arguments_never_allow() {
    let engine = policies();
    // A string where a permit compares a number: the permit errors and is skipped.
    let d = call("shop.set_price")
        .args(json!({"price": "19.99"}))
        .decide(&engine);
    assert_eq!((d.outcome, d.reason), (Outcome::Deny, Reason::NoPermit));
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(
        d.errors[0].starts_with("precise-prices: "),
        "{:?}",
        d.errors
    );
    // A number too precise for a decimal is its text, which no comparison accepts.
    let d = call("shop.set_price")
        .args(json!({"price": 19.99999}))
        .decide(&engine);
    assert_eq!((d.outcome, d.reason), (Outcome::Deny, Reason::NoPermit));
    // A forbid that cannot be evaluated denies, even where a permit would allow.
    let d = call("shop.refund")
        .args(json!({"amount": "40", "currency": "EUR"}))
        .decide(&engine);
    assert_eq!((d.outcome, d.reason), (Outcome::Deny, Reason::ForbidFailed));
    assert_eq!(d.policies, ["refund-ceiling"]);
    assert_eq!(d.errors.len(), 2, "{:?}", d.errors);
    // Equality across types is false, not an error: the forbid is written `!= false`.
    let d = call("git.push")
        .groups(&["eng"])
        .args(json!({"force": "yes"}))
        .decide(&engine);
    assert_eq!((d.outcome, d.reason), (Outcome::Deny, Reason::Forbidden));
    assert_eq!(d.policies, ["forbid-force-push"]);
}

#[test]
fn arguments_that_cannot_be_normalised_deny_when_a_policy_reads_them() {
    let engine = policies();
    let mut deep = json!(1);
    for _ in 0..64 {
        deep = json!({ "x": deep });
    }
    // shop.refund's policies read `amount` and `currency`.
    let d = call("shop.refund")
        .args(json!({ "amount": deep, "currency": "EUR" }))
        .decide(&engine);
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Deny, Reason::InvalidRequest)
    );
    assert!(d.explain().contains("nested deeper"), "{}", d.explain());
    let d = call("shop.refund").args(json!([1, 2])).decide(&engine);
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Deny, Reason::InvalidRequest)
    );
    assert!(
        d.explain().contains("must be a JSON object"),
        "{}",
        d.explain()
    );
    // An argument no policy reads is not looked at.
    let d = call("shop.refund")
        .args(json!({ "amount": 40, "currency": "EUR", "note": deep }))
        .decide(&engine);
    assert_eq!(d.outcome, Outcome::Allow, "{}", d.explain());
    let d = call("git.status")
        .groups(&["eng"])
        .args(json!({ "deep": deep }))
        .decide(&engine);
    assert_eq!(d.outcome, Outcome::Allow, "{}", d.explain());
}

#[test]
fn an_empty_policy_set_denies_everything() {
    let engine = PolicyEngine::from_sources(&[]).unwrap();
    assert!(engine.is_empty());
    for action in Action::ALL {
        let d = call("git.status")
            .groups(&["eng"])
            .action(action)
            .decide(&engine);
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(d.explain().contains("default deny"));
    }
}

#[test]
fn a_request_debug_shows_no_argument_values() {
    let c = call("vault.put").args(json!({ "secret": "sk-live-123" }));
    let text = c.with_request(|r| format!("{r:?}"));
    assert!(!text.contains("sk-live-123"), "{text}");
    assert!(text.contains("arguments: Some(\"<1 field>\")"), "{text}");
}

#[test]
fn approvers_of_the_matching_consent_permits_are_named() {
    let engine = engine(
        r#"
@id("transfer-four-eyes")
@consent("once")
@approvers("finance-managers")
permit (principal, action == Action::"call_tool", resource == Tool::"bank.transfer");

@id("transfer-ops")
@consent("15m")
@approvers("ops-leads")
permit (principal in Group::"ops", action == Action::"call_tool", resource == Tool::"bank.transfer");

@id("restart-self")
@consent("15m")
permit (principal, action == Action::"call_tool", resource == Tool::"ops.restart");
"#,
    );
    let d = call("bank.transfer").decide(&engine);
    assert_eq!(d.outcome, Outcome::Consent(ConsentRule::Once));
    assert_eq!(d.approvers, ["finance-managers"]);
    assert!(d.explain().contains("finance-managers"), "{}", d.explain());
    // Every matching consent permit's group may approve; the rule is still the strictest.
    let d = call("bank.transfer").groups(&["ops"]).decide(&engine);
    assert_eq!(d.outcome, Outcome::Consent(ConsentRule::Once));
    assert_eq!(d.approvers, ["finance-managers", "ops-leads"]);
    let d = call("ops.restart").decide(&engine);
    assert!(d.approvers.is_empty());
    assert!(call("git.status").decide(&engine).approvers.is_empty());
}

#[test]
fn reads_arguments_says_whether_any_policy_reads_them() {
    assert!(engine(POLICIES).reads_arguments());
    let none = engine(
        r#"permit (principal in Group::"eng", action == Action::"call_tool", resource in Server::"git");
        forbid (principal, action, resource) when { context.hour < 6 };"#,
    );
    assert!(!none.reads_arguments());
    // Where no policy reads them, leaving the arguments out changes no decision.
    for args in [json!({ "force": true }), json!({}), json!([1])] {
        let with = call("git.push").groups(&["eng"]).args(args).decide(&none);
        let without = call("git.push").groups(&["eng"]).decide(&none);
        assert_eq!(with.outcome, without.outcome);
    }
    let decimal = engine(
        r#"permit (principal, action == Action::"call_tool", resource)
        when { context.decimal_arguments has amount
               && context.decimal_arguments.amount.lessThanOrEqual(decimal("10.0")) };"#,
    );
    assert!(decimal.reads_arguments());
    let presence =
        engine(r#"forbid (principal, action, resource) when { context.arguments has path };"#);
    assert!(presence.reads_arguments());
}
