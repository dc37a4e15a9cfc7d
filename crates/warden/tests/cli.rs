//! The command line against a running gateway: `warden serve` on its configured workers,
//! `warden dev` printing a working MCP URL, and the admin commands (keys, revocations, grants,
//! policy tests) reaching the gateway. What `warden check` refuses is in `check.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;

/// `warden serve` starts as many worker threads as `[server] workers` asks (its start-up line
/// says how many the runtime has) and serves on them.
#[tokio::test]
async fn serve_runs_on_the_configured_workers() {
    for workers in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("warden.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = {workers}\n[identity]\ntest_user = \"me\"\n[storage]\npath = \"data\"\n"
        );
        std::fs::write(&config, with_policies(&text)).unwrap();
        let (_serve, started) = serve_until_listening(&config).await;
        assert_eq!(started["workers"], workers, "{started}");
        let addr = started["addr"].as_str().unwrap();
        let health = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
}

/// Starts `warden serve --config CONFIG` and waits for its `warden listening` line (its log is
/// JSON lines on standard error); the process is killed when the returned guard drops.
async fn serve_until_listening(config: &std::path::Path) -> (Killed, serde_json::Value) {
    let mut serve = Killed(
        warden_cmd()
            .args(["serve", "--config"])
            .arg(config)
            // The configured level (info) logs the start-up line; RUST_LOG would override it.
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = serve.0.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        let started = lines.find_map(|l| {
            serde_json::from_str::<serde_json::Value>(&l)
                .ok()
                .filter(|v| v["message"] == "warden listening")
        });
        let _ = tx.send(started);
        lines.for_each(drop);
    });
    let started = within(Duration::from_secs(20), rx)
        .await
        .unwrap()
        .expect("the gateway logs its start");
    (serve, started)
}

/// Kills the child when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_prints_a_working_mcp_url_and_logs_json_when_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Killed(
        warden_cmd()
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let url = lines.find_map(|l| l.strip_prefix("MCP URL: ").map(str::to_string));
        let token = lines.find_map(|l| l.strip_prefix("Token: ").map(str::to_string));
        let _ = tx.send(url.zip(token));
        lines.for_each(drop);
    });
    let (url, token) = rx
        .await
        .unwrap()
        .expect("warden dev prints the MCP URL and a token");
    let anonymous = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {} }).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the demo verifies tokens like production"
    );
    assert!(
        dir.path().join("data/warden-dev.toml").exists(),
        "the demo config is written to the data dir"
    );
    let client = Legacy::connect_as(&url, &token).await;
    let tools = client.call("tools/list", json!({})).await;
    let names: Vec<&str> = tools.reply()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for demo in [
        "demo__echo",
        "demo__transfer_funds",
        "demo__lookup_customer",
    ] {
        assert!(names.contains(&demo), "{demo} in {names:?}");
    }
    assert!(
        !names.contains(&"demo__delete_records"),
        "hidden from the demo user: {names:?}"
    );
    assert_eq!(
        client
            .tool("demo__echo", json!({ "text": "hello" }))
            .await
            .text(),
        "hello"
    );
    let hidden = client
        .tool("demo__delete_records", json!({ "table": "t" }))
        .await;
    assert_eq!(
        hidden.reply()["error"]["message"],
        "Unknown tool: demo__delete_records"
    );
    // A client that cannot open links is given the consent page's link as the tool's answer.
    let plain = Legacy::connect_as_with(&url, &token, json!({})).await;
    let consent = plain
        .tool("demo__transfer_funds", json!({ "to": "x", "amount": 5 }))
        .await;
    assert_eq!(consent.reply()["result"]["isError"], true, "{consent:?}");
    let origin = url.trim_end_matches("/mcp");
    assert!(
        consent.text().contains(&format!("open {origin}/consent/")),
        "{consent:?}"
    );
    drop(child);

    // `warden serve` logs JSON lines by default.
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        with_policies(&format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\ntest_user = \"me\"\n{}",
            stdio_upstream("fx", "")
        )),
    )
    .unwrap();
    let mut serve = Killed(
        warden_cmd()
            .args(["serve", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = serve.0.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        // The lines up to the one that says it listens (the policies and the audit log open
        // first).
        let mut lines = Vec::new();
        for line in BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .take(10)
        {
            let done = line.contains("warden listening");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "INFO" && l["timestamp"].is_string()),
        "{lines:?}"
    );
    let line = lines
        .iter()
        .find(|l| l["message"] == "warden listening")
        .expect("the listening line");
    assert!(line["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_and_keys_from_the_cli_reach_a_running_gateway() {
    use warden_gateway::devidp::{DevIdp, claims};
    let idp = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\nissuer = {:?}\n[storage]\npath = \"data\"\n[outbound]\nallow = [\"127.0.0.1\"]\n{}",
        idp.issuer,
        stdio_upstream("fx", "")
    );
    std::fs::write(&config, with_policies(&text)).unwrap();
    let (_serve, started) = serve_until_listening(&config).await;
    let url = format!("http://{}/mcp", started["addr"].as_str().unwrap());
    let cli = |args: &[&str]| {
        let out = warden_cmd()
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let status = |token: String| {
        let url = url.clone();
        async move { modern_status(&url, &token).await }
    };

    let alice = idp.mint(claims("alice", "agent-1", &url, 300, json!({})));
    assert_eq!(status(alice.clone()).await, 200);
    cli(&["revoke", "--user", "alice", "--reason", "offboarded"]);
    assert_eq!(
        status(alice.clone()).await,
        401,
        "revoked by another process, felt on the next request"
    );
    assert!(cli(&["revocations"]).contains("offboarded"));
    cli(&["revoke", "--user", "alice", "--undo"]);
    assert_eq!(status(alice).await, 200);

    let key = cli(&["keys", "create", "--name", "ci-bot", "--groups", "bots"])
        .trim()
        .to_string();
    assert!(key.starts_with("wdn_"));
    assert_eq!(status(key.clone()).await, 200);
    let listed = cli(&["keys", "list"]);
    assert!(
        listed.contains("ci-bot") && !listed.contains(&key[key.len() - 20..]),
        "{listed}"
    );
    cli(&["keys", "revoke", "ci-bot"]);
    assert_eq!(status(key.clone()).await, 401);

    // Every change made here reaches the running gateway's audit log, attributed to the CLI,
    // and the key itself is in no record.
    let log = dir.path().join("data/audit");
    let actions = within(Duration::from_secs(30), async {
        loop {
            let mut reader = warden_audit::Reader::open(&log).unwrap();
            let records: Vec<warden_audit::Record> = reader
                .next_batch()
                .unwrap()
                .iter()
                .map(|(_, b)| {
                    assert!(
                        !String::from_utf8_lossy(b).contains(&key),
                        "the key is recorded"
                    );
                    warden_audit::Record::from_bytes(b).unwrap()
                })
                .collect();
            let by_cli: Vec<String> = records
                .iter()
                .filter(|r| {
                    r.principal
                        .as_deref()
                        .is_some_and(|p| p.starts_with("cli:"))
                })
                .filter_map(|r| r.name.clone())
                .collect();
            if by_cli.len() >= 4 {
                return by_cli;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(
        actions,
        [
            "revocation.add",
            "revocation.remove",
            "key.create",
            "key.revoke"
        ]
    );
}

async fn modern_status(url: &str, token: &str) -> u16 {
    let http = reqwest::Client::new();
    let body = modern_body(
        1,
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": "x" } }),
    );
    modern_request(&http, url, &body)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn policy_test_explains_decisions_and_lint_finds_policies_for_missing_tools() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("bank.cedar"),
        r#"@id("finance-transfer")
permit (principal in Group::"finance", action == Action::"call_tool", resource == Tool::"fx.transfer_funds");
@id("transfer-limit")
forbid (principal, action == Action::"call_tool", resource == Tool::"fx.transfer_funds")
when { context.arguments has amount && context.arguments.amount > 1000 };
"#,
    )
    .unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[identity]\ntest_user = \"me\"\n{}",
            stdio_upstream("fx", "")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = warden_cmd()
            .args(["policy"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (_, out) = run(&[
        "test",
        "--user",
        "alice",
        "--groups",
        "finance",
        "--tool",
        "fx__transfer_funds",
        "--args",
        r#"{"amount": 500}"#,
    ]);
    assert!(
        out.starts_with("ALLOW") && out.contains("finance-transfer"),
        "{out}"
    );
    let (_, out) = run(&[
        "test",
        "--user",
        "alice",
        "--groups",
        "finance",
        "--tool",
        "fx.transfer_funds",
        "--args",
        r#"{"amount": 5000}"#,
    ]);
    assert!(
        out.starts_with("DENY") && out.contains("transfer-limit"),
        "{out}"
    );
    let (_, out) = run(&["test", "--user", "bob", "--tool", "fx__transfer_funds"]);
    assert!(out.starts_with("DENY"), "{out}");
    let (code, out) = run(&["test", "--user", "bob", "--tool", "nosuch__tool"]);
    assert_eq!(code, Some(2), "{out}");

    let (code, out) = run(&["lint"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("2 policies") && out.contains("0 finding(s)"),
        "{out}"
    );
    std::fs::write(policies.join("typo.cedar"), "@id(\"typo\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.transfer_fund\");\n").unwrap();
    let (code, out) = run(&["lint"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("typo") && out.contains("transfer_fund"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_explained_by_policy_test_listed_and_revoked_from_the_cli() {
    use warden_gateway::consent::canonical;
    use warden_gateway::store::{self, Grant, GrantKind};
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("consent.cedar"),
        "@id(\"transfer-once\")\n@consent(\"once\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.transfer_funds\");\n\
         @id(\"add-hour\")\n@consent(\"1h\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.add\");\n",
    )
    .unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[identity]\ntest_user = \"me\"\n{}",
            stdio_upstream("fx", "")
        ),
    )
    .unwrap();
    let loaded = warden_gateway::Config::load(&config).unwrap();
    let db = store::open(&loaded.storage).await.unwrap();
    let now = store::now();
    let args = serde_json::json!({ "to": "Bob", "amount": 10 });
    let grant = |id: &str, tool: &str, kind| Grant {
        id: id.into(),
        user: "alice".into(),
        agent: Some("claude".into()),
        tool: tool.into(),
        kind,
        created_at: now,
        expires_at: now + 600,
        consumed_at: None,
    };
    let digest = canonical::digest(&canonical::canonical(Some(&args)));
    db.insert_grant(&grant(
        "g-once",
        "fx.transfer_funds",
        GrantKind::OneCall {
            arguments_digest: digest,
        },
    ))
    .await
    .unwrap();
    db.insert_grant(&grant("g-hour", "fx.add", GrantKind::Standing))
        .await
        .unwrap();
    let run = |args: &[&str]| {
        let out = warden_cmd()
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let test = |tool: &str, call: &str| {
        run(&[
            "policy", "test", "--user", "alice", "--agent", "claude", "--tool", tool, "--args",
            call,
        ])
    };
    let (_, out) = test("fx__transfer_funds", r#"{"amount": 10, "to": "Bob"}"#);
    assert!(
        out.starts_with("CONSENT") && out.contains("one-call grant g-once"),
        "{out}"
    );
    let (_, out) = test("fx__transfer_funds", r#"{"amount": 11, "to": "Bob"}"#);
    assert!(
        out.contains("not covered by a grant") && out.contains("consent page"),
        "{out}"
    );
    let (_, out) = test("fx__add", r#"{"a": 1, "b": 2}"#);
    assert!(out.contains("grant g-hour allows fx.add"), "{out}");

    let (code, out) = run(&["grants", "list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("g-once") && out.contains("one-call") && out.contains("g-hour"),
        "{out}"
    );
    let (_, out) = run(&["grants", "list", "--user", "bob", "--json"]);
    assert!(out.trim().is_empty(), "{out}");
    let (code, out) = run(&["grants", "revoke", "g-hour"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["grants", "revoke", "g-hour"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no live grant"), "{out}");
    let (_, out) = run(&["grants", "list", "--json"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"id\":\"g-once\""), "{out}");
    let (_, out) = test("fx__add", r#"{"a": 1, "b": 2}"#);
    assert!(out.contains("not covered"), "{out}");
}
