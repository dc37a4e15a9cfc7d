//! DLP in the gateway, as a client meets it: the fixture's personal data and fake secrets are
//! masked in what comes back in both eras, JSON and SSE replies, `content` and
//! `structuredContent` alike; an argument carrying an AWS secret key is blocked before it is
//! recorded or forwarded; pseudonyms are stable; a redaction that would break a tool's
//! `outputSchema` withholds the result; findings reach the metrics and the audit trail as types
//! and paths, never values.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;

/// The fixture's personal data and secrets, none of which may reach a client as it is.
const RAW: &[&str] = &[
    "jane.doe@example.com",
    "415 555 0100",
    "4111 1111 1111 1111",
    "GB82 WEST",
    "sk_live_FIXTURE",
    "AKIAIOSFODNN7EXAMPLE",
];

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct Setup {
    warden: warden_gateway::Running,
    url: String,
    data: String,
}

/// Warden in front of the fixture over HTTP (`sse`: legacy replies always in SSE), with `dlp`
/// lines in `[dlp]` and the fixture's `options` otherwise.
async fn setup(sse: bool, dlp: &str, options: warden_fixture::Options) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/mcp", listener.local_addr().unwrap());
    let options = warden_fixture::Options {
        sse_always: sse,
        ..options
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    let data = data_dir();
    let rest = format!(
        "[storage]\npath = {data:?}\n[dlp]\n{dlp}\n{}",
        http_upstream("fx", &upstream, "")
    );
    let warden = warden_with("", "test_user = \"tester\"", &rest).await;
    let url = warden.mcp_url();
    Setup { warden, url, data }
}

fn assert_clean(what: &str, text: &str) {
    for raw in RAW {
        assert!(
            !text.contains(raw),
            "{raw} reached the client in {what}: {text}"
        );
    }
}

/// Every byte of the audit log's files (segments, checkpoints, tiles).
fn audit_bytes(data: &str) -> Vec<u8> {
    fn walk(dir: &Path, all: &mut Vec<u8>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, all);
            } else {
                all.extend(std::fs::read(p).unwrap());
            }
        }
    }
    let mut all = Vec::new();
    walk(&Path::new(data).join("audit"), &mut all);
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_data_is_masked_in_both_eras_in_json_and_sse_replies() {
    for sse in [false, true] {
        let s = setup(sse, "", Default::default()).await;
        let legacy = Legacy::connect(&s.url).await;
        let a = legacy
            .tool("fx__lookup_customer", json!({ "customer_id": "c-1" }))
            .await;
        let reply = a.reply().to_string();
        assert_clean(&format!("a legacy reply (sse upstream: {sse})"), &reply);
        let text = a.text();
        for masked in [
            "[card ••••1111]",
            "[email]",
            "[iban]",
            "[phone]",
            "[stripe_key]",
            "[aws_access_key]",
        ] {
            assert!(text.contains(masked), "{masked} missing in {text}");
        }
        let structured = &a.reply()["result"]["structuredContent"];
        assert_eq!(structured["card"], "[card ••••1111]");
        assert_eq!(structured["email"], "[email]");
        assert_eq!(structured["customerId"], "c-1", "what is no finding stays");

        let body = modern_body(
            1,
            "tools/call",
            json!({ "name": "fx__lookup_customer", "arguments": { "customer_id": "c-1" } }),
        );
        let http = reqwest::Client::new();
        let header = [("mcp-param-customerid", Some("c-1"))];
        let sent = modern_request_with(&http, &s.url, &body, &header)
            .send()
            .await
            .unwrap();
        let m = read_answer(sent).await;
        assert_clean("a modern reply", &m.reply().to_string());
        assert!(m.text().contains("[card ••••1111]"), "{}", m.text());

        // Findings are counted by type, and the audit trail holds types and paths only.
        let metrics = metrics(&s.warden).await;
        assert!(
            metrics.contains("warden_dlp_findings_total{direction=\"results\",detector=\"card\",action=\"mask\"} 4"),
            "{metrics}"
        );
        drop(legacy);
        let log = audit_bytes(&s.data);
        assert!(
            contains(&log, "\"detector\":\"card\""),
            "findings are on the record"
        );
        assert!(
            contains(&log, "$.structuredContent.card"),
            "with their paths"
        );
        for raw in RAW {
            assert!(!contains(&log, raw), "{raw} is in the audit log");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_argument_carrying_an_aws_secret_key_is_blocked_before_it_is_recorded_or_sent() {
    let s = setup(false, "", Default::default()).await;
    let legacy = Legacy::connect(&s.url).await;
    let text = format!("aws_secret_access_key = {SECRET}");
    for a in [
        legacy.tool("fx__echo", json!({ "text": text })).await,
        modern(
            &s.url,
            "tools/call",
            json!({ "name": "fx__echo", "arguments": { "text": text } }),
        )
        .await,
    ] {
        assert_eq!(a.error_code(), Some(-32056), "{:?}", a.messages);
        let message = a.reply()["error"]["message"].as_str().unwrap();
        assert!(message.contains("withheld by data policy"), "{message}");
        assert!(message.contains("aws_secret_key"), "{message}");
        assert!(!a.reply().to_string().contains(SECRET));
        assert_eq!(a.reply()["error"]["data"]["direction"], "arguments");
    }
    // The fixture never saw the call.
    let stats = fixture_stats(
        &legacy
            .call("resources/read", json!({ "uri": "fixture://stats" }))
            .await,
    );
    assert_eq!(stats["toolCalls"], 0, "{stats}");
    // An e-mail address in arguments is reported, not blocked, by default.
    let a = legacy
        .tool(
            "fx__echo",
            json!({ "text": "write to jane.doe@example.com" }),
        )
        .await;
    assert_eq!(a.error_code(), None, "{:?}", a.messages);
    drop(legacy);
    let log = audit_bytes(&s.data);
    assert!(
        !contains(&log, SECRET),
        "the blocked secret is not on the record"
    );
    assert!(
        contains(&log, "\"detector\":\"aws_secret_key\""),
        "{}",
        String::from_utf8_lossy(&log)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pseudonyms_are_stable_across_calls_and_differ_between_values() {
    let s = setup(
        true,
        "results = { email = \"pseudonymise\" }",
        Default::default(),
    )
    .await;
    let legacy = Legacy::connect(&s.url).await;
    let token = |a: &Answer| {
        a.reply()["result"]["structuredContent"]["email"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = token(
        &legacy
            .tool("fx__lookup_customer", json!({ "customer_id": "c-1" }))
            .await,
    );
    let again = token(
        &legacy
            .tool("fx__lookup_customer", json!({ "customer_id": "c-2" }))
            .await,
    );
    assert!(
        first.starts_with("[email:") && first.len() == "[email:12345678]".len(),
        "{first}"
    );
    assert_eq!(first, again, "one person, one pseudonym");
    let echoed = legacy
        .tool(
            "fx__echo",
            json!({ "text": "a jane.doe@example.com b someone.else@example.com" }),
        )
        .await;
    let text = echoed.text();
    assert!(text.contains(&first), "{text}");
    assert_eq!(text.matches("[email:").count(), 2, "{text}");
    assert!(!text.contains("someone.else"), "{text}");
    let other = text.split("b ").nth(1).unwrap();
    assert_ne!(other, first, "two people, two pseudonyms");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_whose_redaction_breaks_the_output_schema_is_withheld() {
    let strict = json!({
        "type": "object",
        "properties": { "card": { "type": "string", "pattern": "^[0-9 ]+$" } }
    });
    let loose = json!({ "type": "object", "properties": { "card": { "type": "string" } } });
    for (schema, withheld) in [(strict, true), (loose, false)] {
        let options = warden_fixture::Options {
            lookup_output_schema: Some(schema),
            ..Default::default()
        };
        let s = setup(false, "", options).await;
        let legacy = Legacy::connect(&s.url).await;
        legacy.call("tools/list", json!({})).await;
        let a = legacy
            .tool("fx__lookup_customer", json!({ "customer_id": "c-1" }))
            .await;
        assert_clean("a withheld or masked reply", &a.reply().to_string());
        if withheld {
            assert_eq!(a.error_code(), Some(-32056), "{:?}", a.messages);
            let message = a.reply()["error"]["message"].as_str().unwrap();
            assert!(message.contains("outputSchema"), "{message}");
            assert!(message.contains("structuredContent/card"), "{message}");
        } else {
            assert_eq!(
                a.reply()["result"]["structuredContent"]["card"],
                "[card ••••1111]"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn block_and_off_follow_the_config_and_scopes() {
    let dlp = "results = { card = \"block\" }\n\
               [[dlp.scope]]\ntool = \"fx__echo\"\nresults = { default = \"off\" }\n";
    let s = setup(false, dlp, Default::default()).await;
    let legacy = Legacy::connect(&s.url).await;
    let a = legacy
        .tool("fx__lookup_customer", json!({ "customer_id": "c-1" }))
        .await;
    assert_eq!(a.error_code(), Some(-32056), "{:?}", a.messages);
    let message = a.reply()["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("results of fx__lookup_customer") && message.contains("card"),
        "{message}"
    );
    assert_clean("a blocked reply", &a.reply().to_string());
    // The scope switches result DLP off for echo; arguments keep their defaults.
    let a = legacy
        .tool("fx__echo", json!({ "text": "4111 1111 1111 1111" }))
        .await;
    assert_eq!(a.text(), "4111 1111 1111 1111");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_dlp_config_is_refused_with_the_place_and_a_fix() {
    for (dlp, expected) in [
        ("results = { card = \"shred\" }", "is not a DLP action"),
        (
            "results = { creditcard = \"mask\" }",
            "there is no detector \"creditcard\"",
        ),
        (
            "[[dlp.custom]]\nid = \"emp\"\nregex = \"(\"\n",
            "the regex does not compile",
        ),
        (
            "[[dlp.scope]]\nresults = { card = \"off\" }\n",
            "must name an upstream, a tool or a group",
        ),
    ] {
        let text = format!("[identity]\ntest_user = \"t\"\n[policy]\ndir = \"p\"\n[dlp]\n{dlp}\n");
        let e = warden_gateway::config::Config::from_toml(Path::new("t.toml"), &text)
            .err()
            .unwrap_or_else(|| panic!("{dlp} loaded"))
            .to_string();
        assert!(e.contains(expected), "{dlp}: {e}");
    }
}

/// A data rule in policy (`@dlp_results`) changes what DLP does for the calls it matches, and
/// the call's request record names it; a rule naming a detector that does not exist stops
/// `warden check` and the start, at the policy's place.
#[tokio::test(flavor = "multi_thread")]
async fn data_rules_from_policy_are_checked_applied_and_recorded() {
    let policies = tempfile::tempdir().unwrap();
    let rules = policies.path().join("rules.cedar");
    let allow = "permit (principal, action, resource);\n";
    std::fs::write(
        &rules,
        format!("{allow}\n@id(\"cards-in-full\")\n@dlp_results(\"creditcard=report\")\npermit (principal, action, resource);\n"),
    )
    .unwrap();
    // A free port and a store of its own: the start below must fail on the rule alone, and
    // leave nothing behind (the defaults are port 8080 and ./warden-data).
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\ntest_user = \"tester\"\n[policy]\ndir = {0:?}\n[storage]\npath = {0:?}\n[upstreams.fx]\nurl = \"http://127.0.0.1:9/mcp\"\n",
        policies.path().display().to_string()
    );
    let file = policies.path().join("warden.toml");
    std::fs::write(&file, &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains(
            "rules.cedar:3:1: @dlp_results names \"creditcard\", which is not a DLP detector"
        ),
        "{said}"
    );
    let parsed = warden_gateway::config::Config::from_toml(&file, &config).unwrap();
    let refused = warden_gateway::start(parsed)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("\"creditcard\""), "{refused}");

    std::fs::write(
        &rules,
        format!(
            "{allow}\n@id(\"cards-in-full\")\n@dlp_results(\"card=report\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.lookup_customer\");\n\
             \n@id(\"no-addresses-out\")\n@dlp_arguments(\"email=block\")\npermit (principal, action, resource == Tool::\"fx.echo\");\n"
        ),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(warden_fixture::serve_http(listener));
    let data = data_dir();
    let rest = format!(
        "[storage]\npath = {data:?}\n[policy]\ndir = {:?}\n{}",
        policies.path().display().to_string(),
        http_upstream("fx", &upstream, "")
    );
    let warden = warden_with("", "test_user = \"tester\"", &rest).await;
    let legacy = Legacy::connect(&warden.mcp_url()).await;
    let a = legacy
        .tool("fx__lookup_customer", json!({ "customer_id": "c-1" }))
        .await;
    let text = a.text();
    // The rule reports cards in this tool's results; everything else keeps its default.
    assert!(text.contains("4111 1111 1111 1111"), "{text}");
    assert!(!text.contains("jane.doe@example.com"), "{text}");
    let a = legacy
        .tool("fx__echo", json!({ "text": "4111 1111 1111 1111" }))
        .await;
    assert_eq!(a.text(), "[card ••••1111]");
    // A rule on arguments: an e-mail address may not leave in echo's arguments.
    let a = legacy
        .tool(
            "fx__echo",
            json!({ "text": "write to jane.doe@example.com" }),
        )
        .await;
    assert_eq!(a.error_code(), Some(-32056), "{:?}", a.messages);
    let message = a.reply()["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("arguments of fx__echo") && message.contains("email"),
        "{message}"
    );
    warden.stop().await.unwrap();
    let log = audit_bytes(&data);
    assert!(
        contains(&log, "\"data_rules\":[\"cards-in-full\"]"),
        "the request record names the data rule"
    );
}
