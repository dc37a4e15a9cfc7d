//! Least privilege per call, end to end: lists filtered per principal, hidden and denied tools
//! indistinguishable from missing ones, argument limits, forbidden agents, consent, and hot
//! reload that keeps the last good policies.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use warden_gateway::devidp::{DevIdp, claims};

const POLICIES: &str = r#"
@id("lists")
permit (principal, action in [Action::"list_tools", Action::"list_prompts", Action::"list_resources"], resource);

@id("everyone-echo")
permit (principal, action == Action::"call_tool", resource == Tool::"fx.echo");

@id("finance-transfer")
permit (principal in Group::"finance", action == Action::"call_tool", resource == Tool::"fx.transfer_funds");

@id("transfer-limit")
forbid (principal, action == Action::"call_tool", resource == Tool::"fx.transfer_funds")
when { context.arguments has amount && context.decimal_arguments.amount.greaterThan(decimal("1000.0")) };

@id("no-rogue-agent")
forbid (principal, action, resource)
when { context has agent && context.agent == Agent::"rogue-agent" };

@id("math-small-sums")
permit (principal in Group::"math", action == Action::"call_tool", resource == Tool::"fx.add")
when { context.arguments has a && context.arguments.a < 100 };

@id("alice-deletes-with-consent")
@consent("once")
permit (principal == User::"alice", action == Action::"call_tool", resource == Tool::"fx.delete_records");
"#;

struct Setup {
    idp: DevIdp,
    warden: warden_gateway::Running,
    url: String,
    policies: tempfile::TempDir,
    _data: tempfile::TempDir,
}

async fn setup() -> Setup {
    let idp = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("main.cedar"), POLICIES).unwrap();
    let data = tempfile::tempdir().unwrap();
    let upstream = fixture_http(None).await;
    let rest = format!(
        "[policy]\ndir = {:?}\nreload_every = \"50ms\"\n[storage]\npath = {:?}\n{}",
        policies.path().display().to_string(),
        data.path().display().to_string(),
        http_upstream("fx", &upstream, "")
    );
    let warden = warden_with("", &format!("issuer = {:?}", idp.issuer), &rest).await;
    let url = warden.mcp_url();
    Setup {
        idp,
        warden,
        url,
        policies,
        _data: data,
    }
}

impl Setup {
    async fn client(&self, user: &str, agent: &str, groups: &[&str]) -> Legacy {
        let token = self.idp.mint(claims(
            user,
            agent,
            &self.url,
            300,
            json!({ "groups": groups }),
        ));
        Legacy::connect_as(&self.url, &token).await
    }

    async fn metric(&self, needle: &str) -> f64 {
        count(&metrics(&self.warden).await, needle)
    }
}

async fn tool_names(client: &Legacy) -> Vec<String> {
    let list = client.call("tools/list", json!({})).await;
    list.reply()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The error a call got, with the tool's name blanked, to compare answers across names.
fn error_shape(a: &Answer, name: &str) -> Value {
    let mut e = a.reply()["error"].clone();
    e["message"] = e["message"]
        .as_str()
        .unwrap_or_default()
        .replace(name, "NAME")
        .into();
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_sees_and_calls_only_what_policy_allows() {
    let s = setup().await;
    let alice = s.client("alice", "agent-1", &["finance", "math"]).await;
    let bob = s.client("bob", "agent-1", &[]).await;

    let mut seen = tool_names(&alice).await;
    seen.sort();
    assert_eq!(
        seen,
        [
            "fx__add",
            "fx__delete_records",
            "fx__echo",
            "fx__transfer_funds"
        ],
        "consent-needing tools and tools allowed for some arguments stay visible"
    );
    assert_eq!(
        alice
            .tool("fx__add", json!({ "a": 2, "b": 3 }))
            .await
            .text(),
        "5"
    );
    let big = alice.tool("fx__add", json!({ "a": 200, "b": 3 })).await;
    assert_eq!(big.reply()["error"]["message"], "Unknown tool: fx__add");
    assert_eq!(tool_names(&bob).await, ["fx__echo"]);

    // Bob calling a tool hidden from him gets exactly what a missing tool gets.
    let hidden = bob
        .tool("fx__transfer_funds", json!({ "to": "x", "amount": 5 }))
        .await;
    let missing = bob.tool("fx__no_such_tool", json!({})).await;
    assert_eq!(hidden.status, missing.status);
    assert_eq!(
        error_shape(&hidden, "fx__transfer_funds"),
        error_shape(&missing, "fx__no_such_tool")
    );
    assert_eq!(
        hidden.reply()["error"]["message"],
        "Unknown tool: fx__transfer_funds"
    );

    // Alice may transfer, under the limit only; over it the tool is as good as missing.
    assert!(
        alice
            .tool("fx__transfer_funds", json!({ "to": "x", "amount": 500 }))
            .await
            .text()
            .contains("transferred")
    );
    assert!(
        alice
            .tool("fx__transfer_funds", json!({ "to": "x", "amount": 999.5 }))
            .await
            .text()
            .contains("transferred")
    );
    let over = alice
        .tool("fx__transfer_funds", json!({ "to": "x", "amount": 5000 }))
        .await;
    assert_eq!(
        over.reply()["error"]["message"],
        "Unknown tool: fx__transfer_funds"
    );

    // Consent: refused for now, saying approval is required and naming the policy.
    let consent = alice
        .tool("fx__delete_records", json!({ "table": "t" }))
        .await;
    assert_eq!(consent.error_code(), Some(-32053));
    assert!(
        consent.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice-deletes-with-consent"),
        "{consent:?}"
    );

    // A forbidden agent is refused even for an allowed user, and sees nothing.
    let rogue = s.client("alice", "rogue-agent", &["finance"]).await;
    assert_eq!(
        rogue.tool("fx__echo", json!({ "text": "x" })).await.reply()["error"]["message"],
        "Unknown tool: fx__echo"
    );
    assert!(tool_names(&rogue).await.is_empty());

    // Modern clients get the same filtering, and lists are marked private.
    let token = s.idp.mint(claims("bob", "agent-1", &s.url, 300, json!({})));
    let http = reqwest::Client::new();
    let body = modern_body(1, "tools/list", json!({}));
    let list = read_answer(
        modern_request(&http, &s.url, &body)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = list.reply()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fx__echo"]);
    assert_eq!(list.reply()["result"]["cacheScope"], "private");
    assert!(
        s.metric(r#"warden_policy_decisions_total{outcome="deny"}"#)
            .await
            >= 3.0
    );
}

/// Puts a policy file in place whole, as a deployment should: written beside it under a name
/// Warden does not read, then renamed over it. (A file written in place is also only loaded once
/// it has stopped changing, but a writer stalled between emptying and filling it for longer
/// than a reload's interval would still be read empty.)
fn put(path: &std::path::Path, text: &str) {
    let part = path.with_extension("part");
    std::fs::write(&part, text).unwrap();
    std::fs::rename(&part, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_policy_file_during_hot_reload_keeps_the_old_policies_serving() {
    let s = setup().await;
    let bob = s.client("bob", "agent-1", &[]).await;
    assert_eq!(tool_names(&bob).await, ["fx__echo"]);

    put(
        &s.policies.path().join("broken.cedar"),
        "permit (principal, action == Action::\"call_tool\", resource) when { context.nonsense };",
    );
    within(Duration::from_secs(10), async {
        while s
            .metric(r#"warden_policy_reloads_total{outcome="refused"}"#)
            .await
            < 1.0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        bob.tool("fx__echo", json!({ "text": "still" }))
            .await
            .text(),
        "still",
        "the old set still serves"
    );
    assert_eq!(
        tool_names(&bob).await,
        ["fx__echo"],
        "and nothing of the broken file applies"
    );

    put(
        &s.policies.path().join("broken.cedar"),
        "@id(\"bob-adds\")\npermit (principal == User::\"bob\", action == Action::\"call_tool\", resource == Tool::\"fx.add\");",
    );
    within(Duration::from_secs(10), async {
        while s
            .metric(r#"warden_policy_reloads_total{outcome="loaded"}"#)
            .await
            < 1.0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let mut names = tool_names(&bob).await;
    names.sort();
    assert_eq!(names, ["fx__add", "fx__echo"], "the fixed set is live");
    assert_eq!(
        bob.tool("fx__add", json!({ "a": 2, "b": 3 })).await.text(),
        "5"
    );
}
