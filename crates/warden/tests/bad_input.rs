//! Bad input gets a clear answer with the right status, and loses nothing: each case here is
//! something a broken or hostile client sends.

mod common;

use common::*;
use serde_json::{Value, json};

async fn gateway() -> (warden_gateway::Running, String) {
    let upstream = fixture_http(None).await;
    let running = warden(
        "max_body_bytes = 4096\nallowed_origins = [\"https://app.example.com\"]",
        &http_upstream("fx", &upstream, ""),
    )
    .await;
    let url = running.mcp_url();
    (running, url)
}

fn post(url: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_json_rpc_errors() {
    let (_w, url) = gateway().await;
    let cases: [(&str, u16, i64); 5] = [
        ("{not json", 400, -32700),
        ("", 400, -32700),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, 400, -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, 400, -32600),
        ("\u{0}\u{1}garbage", 400, -32700),
    ];
    for (body, status, code) in cases {
        let a = read_answer(post(&url).body(body).send().await.unwrap()).await;
        assert_eq!(a.status, status, "{body:?}");
        assert_eq!(a.error_code(), Some(code), "{body:?}: {a:?}");
        assert!(
            a.reply()["error"]["message"].as_str().unwrap().len() > 10,
            "the message explains: {a:?}"
        );
    }
    let batch = read_answer(post(&url).body("[]").send().await.unwrap()).await;
    assert!(
        batch.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch")
    );
}

#[tokio::test]
async fn content_type_and_accept_are_checked() {
    let (_w, url) = gateway().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let http = reqwest::Client::new();
    let wrong_type = http
        .post(&url)
        .header("content-type", "text/plain")
        .header("accept", ACCEPT_BOTH)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    // reqwest sends `Accept: */*` when none is set, as many HTTP tools do: not enough.
    let no_accept = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_accept.status(), 406);
    let half_accept = http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(half_accept.status(), 406);
    let charset = http
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("accept", ACCEPT_BOTH)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let (_w, url) = gateway().await;
    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": { "pad": "x".repeat(5000) } }).to_string();
    let a = read_answer(post(&url).body(big.clone()).send().await.unwrap()).await;
    assert_eq!(a.status, 413);
    assert!(
        a.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    // Without a Content-Length the limit still holds while streaming.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(100)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = post(&url)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn sessions_must_exist_and_end_for_good() {
    let (_w, url) = gateway().await;
    let ping = json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" });
    let missing = read_answer(post(&url).body(ping.to_string()).send().await.unwrap()).await;
    assert_eq!(missing.status, 400);
    let unknown = read_answer(
        post(&url)
            .header("mcp-session-id", "no-such-session")
            .body(ping.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unknown.status, 404);

    let client = Legacy::connect(&url).await;
    assert_eq!(client.post(&ping).await.status, 200);
    let end = reqwest::Client::new()
        .delete(&url)
        .header("mcp-session-id", &client.session)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 200);
    let after = client.post(&ping).await;
    assert_eq!(after.status, 404, "an ended session is unknown: {after:?}");
}

#[tokio::test]
async fn modern_headers_must_match_the_body() {
    let (_w, url) = gateway().await;
    let http = reqwest::Client::new();
    let body = modern_body(
        1,
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": "hi" } }),
    );
    let ok = read_answer(modern_request(&http, &url, &body).send().await.unwrap()).await;
    assert_eq!(ok.text(), "hi");

    let cases: [&[(&str, Option<&str>)]; 6] = [
        &[("mcp-name", Some("fx__add"))],
        &[("mcp-name", None)],
        &[("mcp-method", Some("tools/list"))],
        &[("mcp-method", None)],
        &[("mcp-protocol-version", Some("2025-11-25"))],
        &[("mcp-protocol-version", None)],
    ];
    for overrides in cases {
        let a = read_answer(
            modern_request_with(&http, &url, &body, overrides)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (a.status.as_u16(), a.error_code()),
            (400, Some(-32020)),
            "{overrides:?}: {a:?}"
        );
        assert_eq!(a.reply()["id"], 1, "the error echoes the request id");
    }
    // The same header twice is refused rather than guessed at, even with the same value.
    for (name, value) in [
        ("mcp-name", "fx__echo"),
        ("mcp-method", "tools/call"),
        ("mcp-protocol-version", MODERN),
    ] {
        let twice = read_answer(
            modern_request(&http, &url, &body)
                .header(name, value)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (twice.status.as_u16(), twice.error_code()),
            (400, Some(-32020)),
            "{name} twice: {twice:?}"
        );
        let message = twice.reply()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains(&format!("the {name} header appears more than once")),
            "{name} twice: {message}"
        );
    }

    let mut no_meta = body.clone();
    no_meta["params"].as_object_mut().unwrap().remove("_meta");
    let a = read_answer(modern_request(&http, &url, &no_meta).send().await.unwrap()).await;
    assert_eq!((a.status.as_u16(), a.error_code()), (400, Some(-32602)));
}

#[tokio::test]
async fn unsupported_versions_name_the_supported_ones() {
    let (_w, url) = gateway().await;
    let http = reqwest::Client::new();
    let mut body = modern_body(3, "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    let a = read_answer(
        modern_request_with(
            &http,
            &url,
            &body,
            &[("mcp-protocol-version", Some("2099-01-01"))],
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((a.status.as_u16(), a.error_code()), (400, Some(-32022)));
    assert_eq!(a.reply()["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(a.reply()["error"]["data"]["supported"], json!([MODERN]));

    // A legacy session with an unknown version header is refused too.
    let client = Legacy::connect(&url).await;
    let r = post(&url)
        .header("mcp-session-id", &client.session)
        .header("mcp-protocol-version", "1999-01-01")
        .body(json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_forbidden() {
    let (_w, url) = gateway().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let evil = post(&url)
        .header("origin", "http://evil.example")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    let configured = post(&url)
        .header("origin", "https://app.example.com")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 200);
    let local = post(&url)
        .header("origin", "http://localhost:6274")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
    let rebound = post(&url)
        .header("host", "evil.example:80")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // The endpoint's POST skips the router; every other request passes the same checks in the
    // router's layer.
    let client = reqwest::Client::new();
    let health = url.replace("/mcp", "/healthz");
    for request in [client.get(&url), client.delete(&url), client.get(&health)] {
        for (name, value) in [
            ("host", "evil.example:80"),
            ("origin", "http://evil.example"),
        ] {
            let r = request
                .try_clone()
                .unwrap()
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{name}: {value}");
        }
    }
    let fine = client.get(&health).send().await.unwrap();
    assert_eq!(fine.status(), 200);
}

/// A POST is the endpoint's exactly when its path is the endpoint's path, as written: the
/// query does not count, a trailing slash or another case is another path (the router's 404),
/// and Warden's own pages do not take calls (405).
#[tokio::test]
async fn only_the_endpoints_own_path_takes_calls() {
    let (_w, url) = gateway().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let with_query = post(&format!("{url}?from=test"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(with_query.status(), 200);
    assert!(with_query.headers().contains_key("mcp-session-id"));
    for (path, status) in [
        (format!("{url}/"), 404),
        (url.replace("/mcp", "/MCP"), 404),
        (url.replace("/mcp", "/mcp2"), 404),
        (url.replace("/mcp", "/healthz"), 405),
        (url.replace("/mcp", "/metrics"), 405),
    ] {
        let r = post(&path).body(body).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(!r.headers().contains_key("mcp-session-id"), "{path}");
    }
}

#[tokio::test]
async fn unknown_tools_and_methods_get_protocol_errors() {
    let (_w, url) = gateway().await;
    let client = Legacy::connect(&url).await;
    // Unknown upstream, no prefix, empty name, and a name the upstream does not have: all the
    // same answer, from Warden.
    for name in ["nosuch__echo", "echo", "fx__", "__echo", "fx__nosuch"] {
        let a = client.tool(name, json!({})).await;
        assert_eq!(a.error_code(), Some(-32602), "{name}: {a:?}");
        assert_eq!(
            a.reply()["error"]["message"],
            format!("Unknown tool: {name}")
        );
    }
    let a = client.call("no/such/method", json!({})).await;
    assert_eq!((a.status.as_u16(), a.error_code()), (200, Some(-32601)));
    let a = modern(&url, "no/such/method", json!({})).await;
    assert_eq!((a.status.as_u16(), a.error_code()), (404, Some(-32601)));
    let bad_cursor = client
        .call("tools/list", json!({ "cursor": "forged" }))
        .await;
    assert_eq!(bad_cursor.error_code(), Some(-32602));
}

#[tokio::test]
async fn modern_era_has_no_get_delete_or_client_responses() {
    let (_w, url) = gateway().await;
    let http = reqwest::Client::new();
    let get = http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let delete = http
        .delete(&url)
        .header("mcp-protocol-version", MODERN)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 405);
    let response = json!({ "jsonrpc": "2.0", "id": 1, "result": {}, "params": { "_meta": {} } });
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("mcp-protocol-version", MODERN)
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn stray_responses_to_a_legacy_session_are_refused() {
    let (_w, url) = gateway().await;
    let client = Legacy::connect(&url).await;
    let a = client
        .post(&json!({ "jsonrpc": "2.0", "id": "warden-999", "result": {} }))
        .await;
    assert_eq!(a.status, 400);
    // The session still works afterwards.
    let ping = client.call("ping", json!({})).await;
    assert_eq!(ping.reply()["result"], json!({}));
    let _: Value = ping.reply().clone();
}
