//! The call pipeline as a client meets it: what the metrics say a call ended with, calls held in
//! a stage (cancelled in both eras, their sessions kept while they wait, resumed on release), and
//! upstream connections reused after SSE replies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use warden_gateway::testing::{Waiting, Waits};
use warden_gateway::{Config, Running};

/// Warden with a waiting stage holding calls to `fx__echo` of the fixture over HTTP.
async fn warden_waiting(stage: Arc<Waiting>, server: &str) -> Running {
    let upstream = fixture_http(None).await;
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[identity]\ntest_user = \"tester\"\n\n[policy]\ndir = {:?}\n\n[storage]\npath = {:?}\n\n{}",
        allow_all_policies(),
        data_dir(),
        http_upstream("fx", &upstream, "")
    );
    let config = Config::from_toml(std::path::Path::new("test.toml"), &text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    warden_gateway::start_with(listener, config, Some(stage))
        .await
        .unwrap()
}

async fn until(rx: &mut tokio::sync::watch::Receiver<Waits>, what: impl Fn(&Waits) -> bool) {
    within(Duration::from_secs(10), rx.wait_for(|w| what(w)))
        .await
        .expect("the stage lives");
}

/// Sends a legacy `tools/call` of `fx__echo` with `id`, for the waiting stage to hold; a held
/// call is answered with a stream at once.
async fn held_legacy_call(client: &Legacy, id: i64) -> reqwest::Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "fx__echo", "arguments": { "text": "held" } } });
    let response = client
        .request()
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    response
}

/// The held call has left the stage, its stream ended without a reply, and it was counted as
/// cancelled, with no call left in flight.
async fn ended_cancelled(
    w: &Running,
    waits: &mut tokio::sync::watch::Receiver<Waits>,
    response: reqwest::Response,
) {
    until(waits, |w| w.abandoned == 1 && w.waiting == 0).await;
    let rest: Vec<Value> = within(Duration::from_secs(10), events(response).collect()).await;
    assert!(
        rest.iter()
            .all(|m| m.get("result").is_none() && m.get("error").is_none()),
        "{rest:?}"
    );
    let text = metrics(w).await;
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="fx",tool="echo",outcome="cancelled"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(count(&text, "warden_calls_in_flight "), 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_outcome_of_unknown_denied_and_failed_calls_is_not_ok() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("p.cedar"),
        "permit (principal, action, resource);\n\
         forbid (principal, action == Action::\"call_tool\", resource == Tool::\"fx.add\");\n",
    )
    .unwrap();
    let upstream = fixture_http(None).await;
    let rest = format!(
        "[policy]\ndir = {:?}\n\n{}",
        policies.path().display().to_string(),
        http_upstream("fx", &upstream, ""),
    );
    let w = warden_with("", "test_user = \"tester\"", &rest).await;
    let client = Legacy::connect(&w.mcp_url()).await;
    assert_eq!(
        client.tool("fx__echo", json!({ "text": "x" })).await.text(),
        "x"
    );
    let unknown = client.tool("fx__nosuch", json!({})).await;
    let denied = client.tool("fx__add", json!({ "a": 1, "b": 2 })).await;
    // A denied tool answers exactly like an unknown one...
    assert_eq!(unknown.error_code(), Some(-32602));
    assert_eq!(denied.error_code(), Some(-32602));
    assert_eq!(
        unknown.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nosuch", "add"),
        denied.reply()["error"]["message"]
    );

    // ...but the operator's metrics tell them apart, and none of them is "ok".
    let text = metrics(&w).await;
    let calls = |outcome: &str| {
        text.lines()
            .filter(|l| l.starts_with("warden_requests_total{method=\"tools/call\""))
            .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="fx",tool="echo",outcome="ok"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="",tool="",outcome="unknown"}"#
        ),
        1.0,
        "{text}"
    );
    // Names a client made up (or may not see) are not labels of their own.
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="",tool="",outcome="denied"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(calls("ok"), 1.0, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_error_is_counted_as_one() {
    // The catalog knows a tool once listed; then the upstream goes away.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fixture = tokio::spawn(warden_fixture::serve_http_with(
        listener,
        Default::default(),
    ));
    let w = warden("", &http_upstream("fx", &format!("http://{addr}/mcp"), "")).await;
    let answer = modern(&w.mcp_url(), "tools/list", json!({})).await;
    assert!(answer.reply()["result"]["tools"].is_array(), "{answer:?}");
    fixture.abort();
    let _ = fixture.await;
    let failed = modern(
        &w.mcp_url(),
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": "x" } }),
    )
    .await;
    assert_eq!(failed.error_code(), Some(-32050), "{failed:?}");
    let text = metrics(&w).await;
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="fx",tool="echo",outcome="upstream_error"}"#
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_legacy_call_is_cancelled_by_the_client_and_its_session_outlives_the_idle_timeout() {
    let stage = Waiting::new("fx__echo");
    let mut waits = stage.watch();
    let w = warden_waiting(stage.clone(), "session_idle_timeout = \"100ms\"").await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let response = held_legacy_call(&client, 41).await;
    until(&mut waits, |w| w.waiting == 1).await;
    assert_eq!(count(&metrics(&w).await, "warden_calls_in_flight "), 1.0);

    // The session is idle far longer than its timeout while the call waits, and the reaper
    // runs several times meanwhile: the session stays.
    let sweeps = w.gateway.sessions.sweeps();
    within(Duration::from_secs(10), async {
        while w.gateway.sessions.sweeps() < sweeps + 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        w.gateway.sessions.len(),
        1,
        "a session with a call in flight was reaped"
    );

    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": { "requestId": 41, "reason": "the user changed their mind" } });
    assert_eq!(client.post(&cancel).await.status, 202);
    ended_cancelled(&w, &mut waits, response).await;
    // Without calls in flight the session is reaped like any idle one.
    within(Duration::from_secs(10), async {
        while !w.gateway.sessions.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_legacy_call_is_cancelled_when_its_session_is_deleted() {
    let stage = Waiting::new("fx__echo");
    let mut waits = stage.watch();
    let w = warden_waiting(stage.clone(), "").await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let response = held_legacy_call(&client, 5).await;
    until(&mut waits, |w| w.waiting == 1).await;

    let deleted = client
        .http
        .delete(&client.url)
        .header("mcp-session-id", &client.session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    ended_cancelled(&w, &mut waits, response).await;
    // A call in the ended session is refused, not held.
    assert_eq!(
        client
            .tool("fx__echo", json!({ "text": "late" }))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_modern_call_ends_when_the_client_closes_its_stream() {
    let stage = Waiting::new("fx__echo");
    let mut waits = stage.watch();
    let w = warden_waiting(stage.clone(), "").await;
    let http = reqwest::Client::new();
    let body = modern_body(
        7,
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": "held" } }),
    );
    let response = modern_request(&http, &w.mcp_url(), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    until(&mut waits, |w| w.waiting == 1).await;
    drop(response);
    drop(http);
    until(&mut waits, |w| w.abandoned == 1 && w.waiting == 0).await;
    let text = metrics(&w).await;
    assert_eq!(
        count(
            &text,
            r#"warden_requests_total{method="tools/call",server="fx",tool="echo",outcome="client_gone"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(count(&text, "warden_calls_in_flight "), 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_call_goes_on_to_its_upstream_in_both_eras() {
    let stage = Waiting::new("fx__echo");
    let mut waits = stage.watch();
    let w = warden_waiting(stage.clone(), "").await;
    let url = w.mcp_url();
    let client = Legacy::connect(&url).await;
    let legacy =
        tokio::spawn(async move { client.tool("fx__echo", json!({ "text": "legacy" })).await });
    let modern_call = tokio::spawn(async move {
        modern(
            &url,
            "tools/call",
            json!({ "name": "fx__echo", "arguments": { "text": "modern" } }),
        )
        .await
    });
    until(&mut waits, |w| w.waiting == 2).await;
    stage.release();
    let (legacy, modern_call) = within(Duration::from_secs(10), async {
        (legacy.await.unwrap(), modern_call.await.unwrap())
    })
    .await;
    assert_eq!(legacy.text(), "legacy");
    assert_eq!(modern_call.text(), "modern");
    assert_eq!(modern_call.reply()["result"]["resultType"], "complete");
    until(&mut waits, |w| w.resumed == 2).await;
    // Calls to other tools never wait.
    let other = modern(
        &w.mcp_url(),
        "tools/call",
        json!({ "name": "fx__add", "arguments": { "a": 2, "b": 3 } }),
    )
    .await;
    assert!(other.reply()["result"].is_object(), "{other:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_to_an_upstream_that_answers_in_sse_are_reused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = warden_fixture::Options {
        sse_always: true,
        ..Default::default()
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    let w = warden(
        "",
        &http_upstream("fx", &format!("http://{addr}/mcp"), "era = \"legacy\""),
    )
    .await;
    let client = Arc::new(Legacy::connect(&w.mcp_url()).await);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..25 {
                let text = format!("{worker}-{i}");
                let answer = client.tool("fx__echo", json!({ "text": text })).await;
                assert_eq!(answer.text(), text, "{answer:?}");
            }
        }));
    }
    for worker in workers {
        within(Duration::from_secs(60), worker).await.unwrap();
    }
    let stats = fixture_stats(
        &client
            .call("resources/read", json!({ "uri": "fixture://stats" }))
            .await,
    );
    let accepted = stats["connections"]
        .as_u64()
        .expect("the fixture counts connections");
    // 200 calls at concurrency 8: at most 8 connections carry them; the session's GET stream,
    // which the upstream holds open for notifications, is one more.
    assert!(
        accepted <= 8 + 1,
        "the fixture accepted {accepted} connections: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_answers_the_call_in_flight_and_closes_idle_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stage = Waiting::new("fx__echo");
    let mut waits = stage.watch();
    let w = warden_waiting(stage.clone(), "").await;
    let url = w.mcp_url();
    // A kept-alive connection, answered once and idle since.
    let mut idle = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", w.addr);
    idle.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let held = tokio::spawn(async move {
        modern(
            &url,
            "tools/call",
            json!({ "name": "fx__echo", "arguments": { "text": "the last" } }),
        )
        .await
    });
    until(&mut waits, |w| w.waiting == 1).await;
    let stopped = tokio::spawn(w.stop());
    // The idle connection is closed at once (the rest of its answer, then the end)...
    let mut rest = Vec::new();
    within(Duration::from_secs(10), idle.read_to_end(&mut rest))
        .await
        .unwrap();
    // ...while the gateway waits for the call it holds, which is then answered.
    assert!(!stopped.is_finished());
    stage.release();
    let answer = within(Duration::from_secs(10), held).await.unwrap();
    assert_eq!(answer.text(), "the last");
    within(Duration::from_secs(10), stopped)
        .await
        .unwrap()
        .unwrap();
}
