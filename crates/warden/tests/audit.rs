//! The audit trail as a user of the gateway meets it: every call's request (with the exact
//! arguments and the decision) and response are on the record in both eras, JSON and SSE
//! replies alike; refusals at the edge, by identity and by policy are too; no record holds a
//! credential; admin actions are recorded; the log's checkpoint and tiles are served to
//! administrators; a log that cannot be written refuses calls (or, when configured, lets them
//! through loudly); one log has one writer; a readable signing key is refused.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use warden_audit::{Checkpoint, Reader, Record, Verifier};
use warden_gateway::devidp::{DevIdp, claims};

struct Setup {
    idp: DevIdp,
    warden: warden_gateway::Running,
    url: String,
    upstream: String,
    data: String,
}

const POLICIES: &str = "permit (principal, action, resource);\n\
    @id(\"no-deletes\")\n\
    forbid (principal, action == Action::\"call_tool\", resource == Tool::\"fx.delete_records\");\n";

/// Warden with JWT identity (admins in group `admins`), a policy that denies
/// `fx__delete_records`, the fixture over HTTP (answering legacy calls in SSE when `sse`), and
/// `audit` lines added to `[audit]`.
async fn setup(sse: bool, audit: &str) -> Setup {
    let idp = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/mcp", listener.local_addr().unwrap());
    let options = warden_fixture::Options {
        sse_always: sse,
        ..Default::default()
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    let data = data_dir();
    let policies = Path::new(&data).join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("p.cedar"), POLICIES).unwrap();
    let identity = format!(
        "issuer = {:?}\njwks_min_refresh = \"0s\"\nadmin_groups = [\"admins\"]\napi_keys = true\n",
        idp.issuer
    );
    let rest = format!(
        "[storage]\npath = {data:?}\n[policy]\ndir = {:?}\n[audit]\n{audit}\n{}",
        policies.display().to_string(),
        http_upstream("fx", &upstream, "")
    );
    let warden = warden_with("", &identity, &rest).await;
    let url = warden.mcp_url();
    Setup {
        idp,
        warden,
        url,
        upstream,
        data,
    }
}

impl Setup {
    fn token(&self, user: &str, groups: &[&str]) -> String {
        self.idp.mint(claims(
            user,
            "agent-1",
            &self.url,
            300,
            json!({ "groups": groups }),
        ))
    }

    fn base(&self) -> String {
        format!("http://{}", self.warden.addr)
    }

    /// Every record so far, as stored bytes and parsed.
    fn records(&self) -> Vec<(Vec<u8>, Record)> {
        let mut reader = Reader::open(&Path::new(&self.data).join("audit")).unwrap();
        reader
            .next_batch()
            .unwrap()
            .into_iter()
            .map(|(_, b)| {
                let r = Record::from_bytes(&b).unwrap();
                (b, r)
            })
            .collect()
    }

    /// Waits (bounded) until a record that `want` accepts is on the log, and returns it.
    async fn await_record(&self, want: impl Fn(&Record) -> bool) -> Record {
        within(Duration::from_secs(10), async {
            loop {
                if let Some((_, r)) = self.records().into_iter().find(|(_, r)| want(r)) {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// A modern `tools/call` with a bearer token.
    async fn modern_call(&self, token: &str, tool: &str, arguments: Value) -> Answer {
        let http = reqwest::Client::new();
        let body = modern_body(
            7,
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        );
        let r = modern_request(&http, &self.url, &body)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read_answer(r).await
    }
}

/// The request and response records of the call whose request has `text` in its arguments.
fn call_records(records: &[(Vec<u8>, Record)], text: &str) -> (Record, Record) {
    let request = records
        .iter()
        .map(|(_, r)| r)
        .find(|r| {
            r.kind == warden_audit::Kind::Request && r.detail["params"]["arguments"]["text"] == text
        })
        .unwrap_or_else(|| panic!("no request record with {text}"))
        .clone();
    let response = records
        .iter()
        .map(|(_, r)| r)
        .find(|r| r.kind == warden_audit::Kind::Response && r.call == request.call)
        .unwrap_or_else(|| panic!("no response record for {:?}", request.call))
        .clone();
    (request, response)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_has_its_request_decision_and_response_on_the_record_in_both_eras() {
    for sse in [false, true] {
        let s = setup(sse, "").await;
        let alice = s.token("alice", &[]);
        let modern = s
            .modern_call(&alice, "fx__echo", json!({ "text": "modern hello" }))
            .await;
        assert_eq!(modern.error_code(), None, "{:?}", modern.reply());
        let legacy = Legacy::connect_as(&s.url, &alice).await;
        let a = legacy
            .tool("fx__echo", json!({ "text": "legacy hello" }))
            .await;
        assert_eq!(a.error_code(), None, "{:?}", a.reply());
        let records = s.records();
        let answers = [
            ("modern hello", "modern", &modern),
            ("legacy hello", "legacy", &a),
        ];
        for (text, era, answer) in answers {
            let (request, response) = call_records(&records, text);
            assert_eq!(request.principal.as_deref(), Some("alice"));
            assert_eq!(request.agent.as_deref(), Some("agent-1"));
            assert_eq!(request.upstream.as_deref(), Some("fx"));
            assert_eq!(request.name.as_deref(), Some("fx__echo"));
            assert_eq!(request.method.as_deref(), Some("tools/call"));
            assert_eq!(request.detail["decision"]["outcome"], "allow");
            assert_eq!(request.detail["era"], era);
            assert_eq!(request.detail["peer"], "127.0.0.1", "the client's address");
            assert_eq!(
                request.detail["params"],
                json!({ "name": "fx__echo", "arguments": { "text": text } }),
                "the parameters as sent, without `_meta`"
            );
            assert!(
                response.seq > request.seq,
                "the response comes after the request"
            );
            assert_eq!(response.outcome.as_deref(), Some("ok"));
            assert!(response.latency_us.is_some());
            let result = response.detail["result"].to_string();
            assert!(
                result.contains(text),
                "the payload returned is recorded: {result}"
            );
            assert_eq!(
                response.detail["result"],
                answer.reply()["result"],
                "the record holds the result the client got"
            );
        }
        let (legacy_request, _) = call_records(&records, "legacy hello");
        assert!(
            legacy_request.session.is_some(),
            "a legacy call names its session"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_recorded_and_no_record_holds_a_credential() {
    let s = setup(false, "").await;
    let alice = s.token("alice", &[]);
    let admin = s.token("root", &["admins"]);
    let http = reqwest::Client::new();
    // No credentials, and a forged token.
    let a = s.modern_call("", "fx__echo", json!({ "text": "x" })).await;
    assert_eq!(a.status, 401);
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    assert_eq!(
        s.modern_call(&forged, "fx__echo", json!({ "text": "x" }))
            .await
            .status,
        401
    );
    // A call policy denies: answered as unknown, recorded as denied with the policy.
    let a = s
        .modern_call(&alice, "fx__delete_records", json!({ "table": "users" }))
        .await;
    assert!(
        a.reply().to_string().contains("Unknown tool"),
        "{:?}",
        a.reply()
    );
    // An API key made by an administrator, used for a call.
    let r = http
        .post(format!("{}/admin/keys", s.base()))
        .bearer_auth(&admin)
        .json(&json!({ "name": "svc" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let a = s
        .modern_call(&key, "fx__echo", json!({ "text": "by key" }))
        .await;
    assert_eq!(a.error_code(), None, "{:?}", a.reply());

    let auth = s
        .await_record(|r| {
            r.kind == warden_audit::Kind::Refusal
                && r.outcome.as_deref() == Some("auth")
                && r.detail["reason"]
                    .as_str()
                    .is_some_and(|t| t.contains("invalid token"))
        })
        .await;
    assert_eq!(auth.detail["status"], 401);
    assert_eq!(auth.detail["peer"], "127.0.0.1");
    let denied = s
        .await_record(|r| r.name.as_deref() == Some("fx__delete_records"))
        .await;
    assert_eq!(denied.kind, warden_audit::Kind::Refusal);
    assert_eq!(denied.outcome.as_deref(), Some("denied"));
    assert_eq!(denied.detail["decision"]["outcome"], "deny");
    assert_eq!(denied.detail["decision"]["policies"], json!(["no-deletes"]));
    assert_eq!(denied.detail["params"]["arguments"]["table"], "users");
    let created = s
        .await_record(|r| r.name.as_deref() == Some("key.create"))
        .await;
    assert_eq!(created.principal.as_deref(), Some("root"));
    assert_eq!(created.detail["name"], "svc");

    let everything: Vec<u8> = s.records().into_iter().flat_map(|(b, _)| b).collect();
    let everything = String::from_utf8(everything).unwrap();
    for (what, secret) in [
        ("alice's token", alice.as_str()),
        ("the admin's token", admin.as_str()),
        ("the forged token", forged.as_str()),
        ("the API key", key.as_str()),
    ] {
        assert!(!everything.contains(secret), "{what} is in a record");
    }
    assert!(!everything.contains("eyJ"), "a JWT is in a record");
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_follow_the_signed_checkpoint_and_tiles_over_http() {
    let s = setup(false, "checkpoint_every = 1").await;
    let alice = s.token("alice", &[]);
    let admin = s.token("root", &["admins"]);
    for i in 0..3 {
        let a = s
            .modern_call(&alice, "fx__echo", json!({ "text": format!("t{i}") }))
            .await;
        assert_eq!(a.error_code(), None);
    }
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        http.get(format!("{}/admin/audit/{path}", s.base()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get("checkpoint", &alice).await.unwrap().status(), 403);
    let note = get("checkpoint", &admin)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let vkey = std::fs::read_to_string(Path::new(&s.data).join("audit-signing.vkey")).unwrap();
    let key = Verifier::parse(vkey.trim()).unwrap();
    let checkpoint = Checkpoint::open(&note, &key).expect("signed by the log's key");
    assert!(checkpoint.size >= 3, "{note}");
    // The leaf tile holds the leaf hashes of exactly the records the log holds.
    let width = checkpoint.size.min(255);
    let tile = get(&format!("tile/0/000.p/{width}"), &admin)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let leaves: Vec<u8> = s
        .records()
        .iter()
        .take(width as usize)
        .flat_map(|(b, _)| warden_audit::merkle::leaf_hash(b))
        .collect();
    assert_eq!(tile.to_vec(), leaves);
    assert_eq!(get("tile/0/5", &admin).await.unwrap().status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_that_cannot_be_written_refuses_the_call_before_it_runs() {
    let s = setup(false, "").await;
    let alice = s.token("alice", &[]);
    let calls = || async {
        let stats = modern(
            &s.upstream,
            "resources/read",
            json!({ "uri": "fixture://stats" }),
        )
        .await;
        fixture_stats(&stats)["toolCalls"].clone()
    };
    let before = calls().await;
    s.warden.gateway.audit.faults().fail_next_sync();
    let a = s
        .modern_call(&alice, "fx__echo", json!({ "text": "unrecorded" }))
        .await;
    assert_eq!(a.error_code(), Some(-32055), "{:?}", a.reply());
    assert!(
        a.reply().to_string().contains("audit trail cannot record"),
        "{:?}",
        a.reply()
    );
    assert_eq!(calls().await, before, "the upstream never saw the call");
    // The log takes nothing more until Warden restarts, and says so.
    let a = s
        .modern_call(&alice, "fx__echo", json!({ "text": "again" }))
        .await;
    assert_eq!(a.error_code(), Some(-32055));
    let ready = reqwest::get(format!("{}/readyz", s.base())).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("calls are refused"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_open_lets_calls_through_loudly() {
    let s = setup(false, "on_failure = \"open\"").await;
    let alice = s.token("alice", &[]);
    s.warden.gateway.audit.faults().fail_next_write();
    let a = s
        .modern_call(&alice, "fx__echo", json!({ "text": "through" }))
        .await;
    assert_eq!(a.error_code(), None, "{:?}", a.reply());
    let ready = reqwest::get(format!("{}/readyz", s.base())).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains("UNRECORDED"));
    let metrics = reqwest::get(format!("{}/metrics", s.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let missed = metrics
        .lines()
        .find(|l| l.starts_with("warden_audit_missed_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(missed >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_are_kept_as_configured() {
    let s = setup(
        false,
        "payloads = { fx__echo = \"digest\", fx = \"redacted\" }",
    )
    .await;
    let alice = s.token("alice", &[]);
    s.modern_call(&alice, "fx__echo", json!({ "text": "4111 1111 1111 1111" }))
        .await;
    s.modern_call(&alice, "fx__add", json!({ "a": 2, "b": 3 }))
        .await;
    let records = s.records();
    let of = |name: &str| -> HashMap<String, Value> {
        records
            .iter()
            .filter(|(_, r)| r.name.as_deref() == Some(name))
            .map(|(_, r)| (format!("{:?}", r.kind), r.detail.clone()))
            .collect()
    };
    let echo = of("fx__echo");
    assert_eq!(
        echo["Request"]["params"]["sha256"].as_str().unwrap().len(),
        64
    );
    let all: String = records
        .iter()
        .map(|(b, _)| String::from_utf8_lossy(b))
        .collect();
    assert!(!all.contains("4111 1111"), "a digest keeps no value");
    let add = of("fx__add");
    assert_eq!(
        add["Request"]["params"]["arguments"],
        json!({ "a": 2, "b": 3 })
    );
    assert_eq!(add["Request"]["params"]["name"], "<redacted 7 chars>");
}

/// Why a gateway keeping its files in `data` does not start.
async fn refused_start(data: &str) -> String {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\ntest_user = \"t\"\n[policy]\ndir = {:?}\n[storage]\npath = {data:?}\n",
        allow_all_policies(),
    );
    let config = warden_gateway::Config::from_toml(Path::new("t.toml"), &text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = warden_gateway::start_on(listener, config).await.err();
    refused.expect("refused").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_log_has_one_writer_and_its_key_is_private() {
    let s = setup(false, "").await;
    let e = refused_start(&s.data).await;
    assert!(e.contains("in use by another Warden"), "{e}");

    let other = data_dir();
    let key = Path::new(&other).join("audit-signing.key");
    std::fs::copy(Path::new(&s.data).join("audit-signing.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = refused_start(&other).await;
    assert!(e.contains("chmod 600"), "{e}");
}

/// `warden audit` with `args`, its output and whether it succeeded.
fn warden_audit(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.success(),
        if out.status.success() { text } else { all },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_proves_filters_and_exports_what_the_gateway_recorded() {
    let s = setup(false, "checkpoint_every = 1").await;
    let (alice, bob) = (s.token("alice", &[]), s.token("bob", &[]));
    s.modern_call(&alice, "fx__echo", json!({ "text": "from alice" }))
        .await;
    s.modern_call(&bob, "fx__echo", json!({ "text": "from bob" }))
        .await;
    let dir = format!("{}/audit", s.data);
    let vkey = format!("{}/audit-signing.vkey", s.data);
    // Each record signed (checkpoint_every = 1): wait until the last one is covered.
    let records = s.records();
    let (bytes, last) = records.last().cloned().unwrap();
    let proof = within(Duration::from_secs(10), async {
        loop {
            let (ok, out) = warden_audit(&[
                "prove",
                &last.seq.to_string(),
                "--dir",
                &dir,
                "--key",
                &vkey,
                "--since",
                "1",
            ]);
            if ok {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (inclusion, consistency) = proof
        .split_once("\nwarden-audit/consistency-proof@v1")
        .unwrap();
    let key = Verifier::parse(std::fs::read_to_string(&vkey).unwrap().trim()).unwrap();
    let inclusion = warden_audit::InclusionProof::parse(inclusion).unwrap();
    inclusion
        .verify_record(&key, &bytes)
        .expect("the record is proven in the signed tree");
    let consistency = format!("warden-audit/consistency-proof@v1{consistency}");
    warden_audit::ConsistencyProof::parse(&consistency)
        .unwrap()
        .verify(&key)
        .expect("the tree of one record is a prefix of the signed one");

    let (ok, shown) = warden_audit(&["show", "--dir", &dir, "--user", "bob", "--kind", "request"]);
    assert!(ok, "{shown}");
    assert_eq!(
        shown.lines().filter(|l| l.starts_with('#')).count(),
        1,
        "{shown}"
    );
    assert!(shown.contains("user=bob") && shown.contains("from bob") && !shown.contains("alice"));
    let (ok, exported) = warden_audit(&["export", "--dir", &dir, "--from", &last.seq.to_string()]);
    assert!(ok, "{exported}");
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(
        lines,
        [String::from_utf8(bytes).unwrap()],
        "the stored bytes, one per line"
    );
    let (ok, tail) = warden_audit(&["tail", "--dir", &dir, "-n", "1"]);
    assert!(ok && tail.starts_with(&format!("#{} ", last.seq)), "{tail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_client_goes_away_ends_on_the_record_without_its_payload() {
    let s = setup(false, "").await;
    let alice = s.token("alice", &[]);
    let http = reqwest::Client::new();
    // With progress asked for, the reply is a stream: the client can close it mid-call.
    let params = json!({
        "name": "fx__slow",
        "arguments": { "ms": 60_000, "steps": 600 },
        "_meta": { "progressToken": "p-1" },
    });
    let body = modern_body(9, "tools/call", params);
    let response = modern_request(&http, &s.url, &body)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The request record is durable before the call goes upstream; then the client goes away.
    let (_, request) = first_record(&s, "request record", |r| {
        r.kind == warden_audit::Kind::Request && r.name.as_deref() == Some("fx__slow")
    })
    .await;
    drop(response);
    drop(http);
    let (bytes, ended) = first_record(&s, "record of the call's end", |r| {
        r.kind == warden_audit::Kind::Response && r.call == request.call
    })
    .await;
    assert_eq!(ended.outcome.as_deref(), Some("client_gone"));
    assert!(ended.latency_us.is_some());
    assert_eq!(ended.detail, Value::Null, "no payload: {ended:?}");
    assert!(!String::from_utf8_lossy(&bytes).contains("params"));
}

/// The first record of `s`'s log that `find` accepts, read again until there is one (20 s at
/// most).
async fn first_record(s: &Setup, what: &str, find: impl Fn(&Record) -> bool) -> (Vec<u8>, Record) {
    let found = async {
        loop {
            if let Some(hit) = s.records().into_iter().find(|(_, r)| find(r)) {
                return hit;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let found = tokio::time::timeout(Duration::from_secs(20), found).await;
    found.unwrap_or_else(|_| {
        let seen: Vec<_> = s
            .records()
            .into_iter()
            .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
            .collect();
        panic!("no {what} within 20 s; the log: {seen:#?}")
    })
}
