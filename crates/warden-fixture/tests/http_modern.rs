//! The 2026-07-28 era over Streamable HTTP, as a modern client sees it.

mod common;

use std::num::NonZeroUsize;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_fixture::Options;

const ALL_TOOLS: &[&str] = &[
    "echo",
    "add",
    "transfer_funds",
    "delete_records",
    "lookup_customer",
    "slow",
    "log",
    "pid",
    "ask",
    "sample",
    "roots",
    "toggle_extra",
];

fn assert_complete(msg: &Value) {
    assert_eq!(msg["result"]["resultType"], "complete", "{msg}");
    assert_eq!(
        msg["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "warden-fixture"
    );
}

fn assert_cacheable(msg: &Value) {
    assert!(msg["result"]["ttlMs"].as_u64().is_some(), "{msg}");
    assert!(
        matches!(
            msg["result"]["cacheScope"].as_str(),
            Some("public" | "private")
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn discover_describes_the_server_without_a_session() {
    let url = start().await;
    let client = Modern::new(&url);
    let mut reply = client
        .send(&client.body(json!("d-1"), "server/discover", json!({})))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.sse);
    assert!(reply.header("mcp-session-id").is_none());
    let msg = reply.last().await;
    assert_eq!(msg["id"], "d-1");
    assert_complete(&msg);
    assert_cacheable(&msg);
    let result = &msg["result"];
    assert_eq!(result["supportedVersions"][0], MODERN);
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    let caps = &result["capabilities"];
    assert_eq!(caps["tools"]["listChanged"], true);
    assert_eq!(
        caps["resources"],
        json!({ "subscribe": true, "listChanged": true })
    );
    assert_eq!(caps["prompts"]["listChanged"], true);
    assert!(caps["logging"].is_object() && caps["completions"].is_object());
}

#[tokio::test]
async fn malformed_requests_are_refused_in_the_specified_order() {
    let url = start().await;
    let client = Modern::new(&url);
    let raw = |headers: &[(&str, &str)], body: Value| {
        let mut req = client
            .http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body.to_string()).send()
    };
    let discover_headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "server/discover"),
    ];
    let expect = async |resp: reqwest::Response, status: StatusCode, code: i64| {
        let mut reply = Reply::new(resp);
        assert_eq!(reply.status, status);
        let msg = reply.last().await;
        assert_eq!(msg["error"]["code"], code, "{msg}");
        msg
    };

    // No _meta at all, or a _meta missing a required key: -32602.
    let no_meta = json!({ "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {} });
    expect(
        raw(&discover_headers, no_meta).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32602,
    )
    .await;
    let mut no_caps = client.body(json!(1), "server/discover", json!({}));
    no_caps["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    expect(
        raw(&discover_headers, no_caps).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32602,
    )
    .await;

    // The header contradicts the body: -32020, even when the body's version is unknown.
    let mut future = client.body(json!(2), "server/discover", json!({}));
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "v999.0.0".into();
    let msg = expect(
        raw(&discover_headers, future.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32020,
    )
    .await;
    assert_eq!(msg["id"], 2);

    // Both name an unknown version: -32022 listing what is supported.
    let both = [
        ("mcp-protocol-version", "v999.0.0"),
        ("mcp-method", "server/discover"),
    ];
    let msg = expect(
        raw(&both, future).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32022,
    )
    .await;
    assert_eq!(msg["error"]["data"]["requested"], "v999.0.0");
    assert_eq!(msg["error"]["data"]["supported"][0], MODERN);

    // Routing headers missing or contradicting the body: -32020.
    let echo = client.body(
        json!(3),
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "x" } }),
    );
    let no_name = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
    ];
    expect(
        raw(&no_name, echo.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32020,
    )
    .await;
    let wrong_name = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "add"),
    ];
    expect(
        raw(&wrong_name, echo.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32020,
    )
    .await;
    let wrong_method = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/list"),
        ("mcp-name", "echo"),
    ];
    expect(
        raw(&wrong_method, echo.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32020,
    )
    .await;
    let no_version = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    expect(
        raw(&no_version, echo.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        -32020,
    )
    .await;
    let encoded = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?ZWNobw==?="),
    ];
    let mut reply = Reply::new(raw(&encoded, echo).await.unwrap());
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(text(&reply.last().await), "x");
}

#[tokio::test]
async fn unknown_and_legacy_only_methods_are_404() {
    let url = start().await;
    let client = Modern::new(&url);
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
    ] {
        let (status, msg) = client
            .request(
                method,
                json!({ "uri": "fixture://readme", "level": "info" }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(msg["error"]["code"], -32601, "{method}");
        assert_eq!(msg["id"], 1);
    }
}

#[tokio::test]
async fn get_delete_and_notifications() {
    let url = start().await;
    let http = client();
    for req in [http.get(&url), http.delete(&url)] {
        let resp = req
            .header("mcp-protocol-version", MODERN)
            .header("mcp-session-id", "whatever")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let resp = http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let client = Modern::new(&url);
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": { "requestId": 1, "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN } } });
    let resp = client.post(&note).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_bodies_and_foreign_origins_are_refused() {
    let url = start().await;
    let http = client();
    let post = |body: &'static str| {
        http.post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body)
    };
    let mut reply = Reply::new(post("{not json").send().await.unwrap());
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.last().await["error"]["code"], -32700);
    let mut reply = Reply::new(post("[]").send().await.unwrap());
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.last().await["error"]["code"], -32600);
    let client = Modern::new(&url);
    let body = client.body(json!(1), "server/discover", json!({}));
    let resp = client
        .post(&body)
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = client
        .post(&body)
        .header("origin", "http://localhost:1234")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let plain = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "text/plain");
    let resp = plain.body(body.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn lists_are_complete_and_cacheable() {
    let url = start().await;
    let client = Modern::new(&url);
    let (_, tools) = client.request("tools/list", json!({})).await;
    assert_complete(&tools);
    assert_cacheable(&tools);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL_TOOLS);
    assert!(tools["result"].get("nextCursor").is_none());
    for tool in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(!tool["description"].as_str().unwrap().is_empty());
    }
    for method in ["resources/list", "resources/templates/list", "prompts/list"] {
        let (status, msg) = client.request(method, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_complete(&msg);
        assert_cacheable(&msg);
    }
}

#[tokio::test]
async fn simple_tools_answer_in_plain_json() {
    let url = start().await;
    let client = Modern::new(&url);
    let mut reply = client
        .send(&client.body(
            json!(7),
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "hello" } }),
        ))
        .await;
    assert!(!reply.sse);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let msg = reply.last().await;
    assert_complete(&msg);
    assert_eq!(text(&msg), "hello");
    assert_eq!(
        text(&client.call("add", json!({ "a": 2, "b": 3.5 })).await),
        "5.5"
    );
    assert_eq!(
        text(&client.call("add", json!({ "a": 2, "b": 3 })).await),
        "5"
    );
    assert_eq!(
        text(
            &client
                .call("transfer_funds", json!({ "to": "bob", "amount": 10 }))
                .await
        ),
        "transferred 10 to bob"
    );
    assert_eq!(
        text(
            &client
                .call("delete_records", json!({ "table": "users" }))
                .await
        ),
        "deleted all records in users"
    );
    assert_eq!(
        text(&client.call("pid", json!({})).await),
        std::process::id().to_string()
    );
    let bad = client.call("add", json!({ "a": "two" })).await;
    assert_eq!(bad["result"]["isError"], true);
    let (status, unknown) = client
        .request("tools/call", json!({ "name": "nope" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown["error"]["code"], -32602);
}

#[tokio::test]
async fn lookup_customer_returns_fake_personal_data_and_needs_its_param_header() {
    let url = start().await;
    let client = Modern::new(&url);
    let msg = client
        .call("lookup_customer", json!({ "customer_id": "c-42" }))
        .await;
    let text = text(&msg);
    for needle in [
        "c-42",
        "jane.doe@example.com",
        "+1 415 555 0100",
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "sk_live_",
        "AKIA",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert_eq!(
        msg["result"]["structuredContent"]["email"],
        "jane.doe@example.com"
    );
    // Without the mirrored Mcp-Param-CustomerId header the request is refused.
    let body = client.body(
        json!(1),
        "tools/call",
        json!({ "name": "lookup_customer", "arguments": { "customer_id": "c-42" } }),
    );
    let req = client
        .http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "lookup_customer")
        .body(body.to_string());
    let mut reply = Reply::new(req.send().await.unwrap());
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.last().await["error"]["code"], -32020);
}

#[tokio::test]
async fn slow_streams_progress_then_the_result() {
    let url = start().await;
    let client = Modern::new(&url);
    let body = client.body(
        json!(1),
        "tools/call",
        json!({ "name": "slow", "arguments": { "ms": 30, "steps": 3 },
                                                           "_meta": { "progressToken": "p-1" } }),
    );
    let mut reply = client.send(&body).await;
    assert!(reply.sse);
    assert_eq!(reply.header("x-accel-buffering"), Some("no"));
    let messages = reply.all().await;
    assert_eq!(messages.len(), 4, "{messages:?}");
    for (i, note) in messages[..3].iter().enumerate() {
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progressToken"], "p-1");
        assert_eq!(note["params"]["progress"], i as u64 + 1);
        assert_eq!(note["params"]["total"], 3);
    }
    assert_complete(&messages[3]);
    assert_eq!(text(&messages[3]), "done");
    // Without a progress token the answer is plain JSON.
    let mut reply = client
        .send(&client.body(
            json!(2),
            "tools/call",
            json!({ "name": "slow", "arguments": { "ms": 1 } }),
        ))
        .await;
    assert!(!reply.sse);
    assert_eq!(text(&reply.last().await), "done");
}

async fn read_stats(client: &Modern) -> Value {
    let (_, msg) = client
        .request("resources/read", json!({ "uri": "fixture://stats" }))
        .await;
    assert_eq!(msg["result"]["ttlMs"], 0);
    serde_json::from_str(msg["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn closing_the_stream_cancels_the_call() {
    let url = start().await;
    let client = Modern::new(&url);
    let body = client.body(
        json!(1),
        "tools/call",
        json!({ "name": "slow", "arguments": { "ms": 60000, "steps": 600 },
                                                           "_meta": { "progressToken": 9 } }),
    );
    let mut reply = client.send(&body).await;
    assert_eq!(
        reply.next().await.unwrap()["method"],
        "notifications/progress"
    );
    drop(reply);
    let stats = wait_for_stats(
        async || read_stats(&client).await,
        |s| s["slowCancelled"] == 1,
    )
    .await;
    assert_eq!(stats["slowStarted"], 1);
    assert_eq!(stats["slowCompleted"], 0);
}

#[tokio::test]
async fn going_away_before_a_plain_json_answer_cancels_too() {
    let url = start().await;
    let client = Modern::new(&url);
    let body = client.body(
        json!(1),
        "tools/call",
        json!({ "name": "slow", "arguments": { "ms": 60000 } }),
    );
    // The client gives up (closes its connection) while the answer is still pending.
    let gave_up = client
        .post(&body)
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    let stats = wait_for_stats(
        async || read_stats(&client).await,
        |s| s["slowCancelled"] == 1,
    )
    .await;
    assert_eq!(stats["slowCompleted"], 0);
}

#[tokio::test]
async fn logs_flow_only_when_the_request_asks() {
    let url = start().await;
    let client = Modern::new(&url);
    let quiet = client
        .call("log", json!({ "level": "error", "message": "boom" }))
        .await;
    assert_eq!(text(&quiet), "suppressed");
    let body = client.body(json!(1), "tools/call", json!({ "name": "log", "arguments": { "level": "error", "message": "boom" },
                                                           "_meta": { "io.modelcontextprotocol/logLevel": "warning" } }));
    let mut reply = client.send(&body).await;
    assert!(reply.sse);
    let messages = reply.all().await;
    assert_eq!(messages[0]["method"], "notifications/message");
    assert_eq!(messages[0]["params"]["level"], "error");
    assert_eq!(messages[0]["params"]["data"], "boom");
    assert_eq!(text(&messages[1]), "logged");
}

#[tokio::test]
async fn ask_needs_the_capability_then_takes_two_rounds() {
    let url = start().await;
    let bare = Modern::new(&url);
    let (status, refused) = bare
        .request(
            "tools/call",
            json!({ "name": "ask", "arguments": { "message": "Name?" } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], -32021);
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"],
        json!({ "elicitation": {} })
    );

    let client = Modern::with_caps(&url, json!({ "elicitation": {} }));
    let params = json!({ "name": "ask", "arguments": { "message": "Name?" } });
    let (_, first) = client.request("tools/call", params.clone()).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert!(result.get("ttlMs").is_none());
    let request = &result["inputRequests"]["q"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "form");
    assert_eq!(request["params"]["message"], "Name?");
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["answer"]["type"],
        "string"
    );
    let state = result["requestState"].as_str().unwrap().to_string();

    let answer = json!({ "action": "accept", "content": { "answer": "Ada" } });
    let mut retry = params.clone();
    retry["inputResponses"] = json!({ "q": answer });
    retry["requestState"] = state.clone().into();
    let mut reply = client
        .send(&client.body(json!(2), "tools/call", retry.clone()))
        .await;
    let done = reply.last().await;
    assert_eq!(done["id"], 2);
    assert_complete(&done);
    assert_eq!(text(&done), format!("answer: {answer}"));

    // A tampered state is an error; a retry without the answer asks again.
    retry["requestState"] = format!("{state}-TAMPERED").into();
    let (_, tampered) = client.request("tools/call", retry).await;
    assert_eq!(tampered["error"]["code"], -32602);
    let mut missing = params;
    missing["inputResponses"] = json!({ "wrong_key": answer });
    missing["requestState"] = state.into();
    let (_, again) = client.request("tools/call", missing).await;
    assert_eq!(again["result"]["resultType"], "input_required");
}

#[tokio::test]
async fn sample_and_roots_ask_through_input_requests() {
    let url = start().await;
    let client = Modern::with_caps(&url, json!({ "sampling": {}, "roots": {} }));
    let cases = [
        (
            "sample",
            json!({ "prompt": "Capital of France?" }),
            "sampling/createMessage",
            json!({ "role": "assistant", "content": { "type": "text", "text": "Paris" }, "model": "m" }),
        ),
        (
            "roots",
            json!({}),
            "roots/list",
            json!({ "roots": [{ "uri": "file:///tmp", "name": "tmp" }] }),
        ),
    ];
    for (tool, args, method, answer) in cases {
        let params = json!({ "name": tool, "arguments": args });
        let (_, first) = client.request("tools/call", params.clone()).await;
        assert_eq!(first["result"]["inputRequests"]["q"]["method"], method);
        let mut retry = params;
        retry["inputResponses"] = json!({ "q": answer });
        retry["requestState"] = first["result"]["requestState"].clone();
        let (_, done) = client.request("tools/call", retry).await;
        assert_eq!(text(&done), format!("answer: {answer}"));
    }
    let (_, sample) = client
        .request(
            "tools/call",
            json!({ "name": "sample", "arguments": { "prompt": "Hi" } }),
        )
        .await;
    assert_eq!(
        sample["result"]["inputRequests"]["q"]["params"]["messages"][0]["content"]["text"],
        "Hi"
    );
}

#[tokio::test]
async fn listeners_hear_about_tool_list_changes() {
    let url = start().await;
    let client = Modern::new(&url);
    let listen = client.body(
        json!("L"),
        "subscriptions/listen",
        json!({ "notifications": { "toolsListChanged": true } }),
    );
    let mut tools_stream = client.send(&listen).await;
    assert!(tools_stream.sse);
    let ack = tools_stream.next().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({ "toolsListChanged": true })
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L"
    );
    let prompts_only = client.body(
        json!(5),
        "subscriptions/listen",
        json!({ "notifications": { "promptsListChanged": true } }),
    );
    let mut prompts_stream = client.send(&prompts_only).await;
    assert_eq!(
        prompts_stream.next().await.unwrap()["method"],
        "notifications/subscriptions/acknowledged"
    );

    assert_eq!(
        text(&client.call("toggle_extra", json!({})).await),
        "extra is now listed"
    );
    let changed = tools_stream.next().await.unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L"
    );
    let (_, tools) = client.request("tools/list", json!({})).await;
    assert_eq!(
        tools["result"]["tools"].as_array().unwrap().last().unwrap()["name"],
        "extra"
    );
    assert_eq!(text(&client.call("extra", json!({})).await), "extra");

    client.call("toggle_extra", json!({})).await;
    assert_eq!(
        tools_stream.next().await.unwrap()["method"],
        "notifications/tools/list_changed"
    );
    let (_, gone) = client
        .request("tools/call", json!({ "name": "extra" }))
        .await;
    assert_eq!(gone["error"]["code"], -32602);
    // The prompts-only stream heard nothing: its next event would be a keep-alive, much later.
    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(100), prompts_stream.next()).await;
    assert!(nothing.is_err(), "{nothing:?}");
}

#[tokio::test]
async fn resources_prompts_and_completions() {
    let url = start().await;
    let client = Modern::new(&url);
    let read = async |uri: &str| {
        client
            .request("resources/read", json!({ "uri": uri }))
            .await
            .1
    };
    let readme = read("fixture://readme").await;
    assert_complete(&readme);
    assert_eq!(readme["result"]["cacheScope"], "public");
    assert_eq!(readme["result"]["contents"][0]["mimeType"], "text/plain");
    let data = read("fixture://data.json").await;
    assert_eq!(data["result"]["cacheScope"], "private");
    assert_eq!(
        data["result"]["contents"][0]["mimeType"],
        "application/json"
    );
    let item = read("fixture://items/42").await;
    let item_text: Value =
        serde_json::from_str(item["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(item_text["id"], "42");
    let missing = read("fixture://nothing").await;
    assert_eq!(missing["error"]["code"], -32602);
    assert_eq!(missing["error"]["data"]["uri"], "fixture://nothing");

    let (_, prompt) = client
        .request(
            "prompts/get",
            json!({ "name": "greeting", "arguments": { "name": "Ada" } }),
        )
        .await;
    assert_complete(&prompt);
    assert_eq!(prompt["result"]["messages"][0]["role"], "user");
    assert!(
        prompt["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Ada")
    );

    let complete = async |reference: Value, name: &str, value: &str| {
        let params = json!({ "ref": reference, "argument": { "name": name, "value": value } });
        client.request("completion/complete", params).await.1
    };
    let names = complete(
        json!({ "type": "ref/prompt", "name": "greeting" }),
        "name",
        "a",
    )
    .await;
    assert_complete(&names);
    assert_eq!(
        names["result"]["completion"]["values"],
        json!(["Ada", "Alan", "Alice"])
    );
    let ids = complete(
        json!({ "type": "ref/resource", "uri": "fixture://items/{id}" }),
        "id",
        "4",
    )
    .await;
    assert_eq!(ids["result"]["completion"]["values"], json!(["42"]));
}

#[tokio::test]
async fn tools_list_pages_when_asked() {
    let url = start_with(Options {
        page_size: NonZeroUsize::new(5),
        ..Options::default()
    })
    .await;
    let client = Modern::new(&url);
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let params = if cursor.is_null() {
            json!({})
        } else {
            json!({ "cursor": cursor })
        };
        let (_, page) = client.request("tools/list", params).await;
        assert_cacheable(&page);
        pages += 1;
        for t in page["result"]["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
        }
        cursor = page["result"]
            .get("nextCursor")
            .cloned()
            .unwrap_or(Value::Null);
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ALL_TOOLS);
    let (_, bad) = client
        .request("tools/list", json!({ "cursor": "nonsense" }))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
}
