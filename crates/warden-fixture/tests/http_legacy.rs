//! The legacy (2025-era) Streamable HTTP transport, as a session-keeping client sees it.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn elicit_caps() -> Value {
    json!({ "elicitation": {}, "sampling": {}, "roots": { "listChanged": true } })
}

#[tokio::test]
async fn initialize_opens_a_session_that_delete_ends() {
    let url = start().await;
    let client = Legacy::connect_version(&url, json!({}), "2025-06-18").await;
    assert_eq!(client.version, "2025-06-18");
    assert_eq!(client.session.len(), 32);
    assert!(client.session.bytes().all(|b| b.is_ascii_hexdigit()));
    let tools = client.request("tools/list", json!({})).await;
    assert!(
        tools["result"].get("resultType").is_none(),
        "legacy results carry no resultType"
    );
    assert!(tools["result"].get("ttlMs").is_none());
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 12);

    let resp = client
        .http
        .delete(&url)
        .header("mcp-session-id", &client.session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut gone = client.send(&client.body("tools/list", json!({}))).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.last().await["error"].is_object());
    let resp = client
        .http
        .delete(&url)
        .header("mcp-session-id", &client.session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn versions_are_negotiated_and_sessions_required() {
    let url = start().await;
    assert_eq!(
        Legacy::connect_version(&url, json!({}), "1999-01-01")
            .await
            .version,
        "2025-11-25"
    );
    assert_eq!(
        Legacy::connect_version(&url, json!({}), "2024-11-05")
            .await
            .version,
        "2024-11-05"
    );
    let client = Legacy::connect(&url, json!({})).await;
    let init = client.request("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                                                     "clientInfo": { "name": "x", "version": "1" } })).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "warden-fixture");
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);

    let post = |session: Option<&str>| {
        let mut req = client
            .http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.body(json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string())
            .send()
    };
    assert_eq!(post(None).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        post(Some("no-such-session")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(Some(&client.session)).await.unwrap().status(),
        StatusCode::OK
    );
    let get = client
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", "nope");
    assert_eq!(get.send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn legacy_only_methods_answer_exactly_empty() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    assert_eq!(client.request("ping", json!({})).await["result"], json!({}));
    assert_eq!(
        client
            .request("logging/setLevel", json!({ "level": "info" }))
            .await["result"],
        json!({})
    );
    assert_eq!(
        client
            .request("logging/setLevel", json!({ "level": "loud" }))
            .await["error"]["code"],
        -32602
    );
    assert_eq!(
        client
            .request("resources/subscribe", json!({ "uri": "fixture://readme" }))
            .await["result"],
        json!({})
    );
    assert_eq!(
        client
            .request(
                "resources/unsubscribe",
                json!({ "uri": "fixture://readme" })
            )
            .await["result"],
        json!({})
    );
    assert_eq!(
        client.request("server/discover", json!({})).await["error"]["code"],
        -32601
    );
    let missing = client
        .request("resources/read", json!({ "uri": "fixture://nothing" }))
        .await;
    assert_eq!(missing["error"]["code"], -32002);
    let echo = client.call("echo", json!({ "text": "hi" })).await;
    assert_eq!(text(&echo), "hi");
    assert!(echo["result"].get("resultType").is_none());
}

#[tokio::test]
async fn ask_sends_elicitation_on_the_call_stream_and_waits_for_the_reply() {
    let url = start().await;
    let client = Legacy::connect(&url, elicit_caps()).await;
    let mut call = client
        .send(&client.body(
            "tools/call",
            json!({ "name": "ask", "arguments": { "message": "Name?" } }),
        ))
        .await;
    assert!(call.sse);
    let request = call.next().await.unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "form");
    assert_eq!(request["params"]["message"], "Name?");
    let answer = json!({ "action": "accept", "content": { "answer": "Ada" } });
    let reply = json!({ "jsonrpc": "2.0", "id": request["id"], "result": answer });
    assert_eq!(
        client.post(&reply).send().await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let done = call.next().await.unwrap();
    assert_eq!(text(&done), format!("answer: {answer}"));
    assert!(
        call.next().await.is_none(),
        "the stream ends after the response"
    );
}

#[tokio::test]
async fn sample_and_roots_ask_the_client_too() {
    let url = start().await;
    let client = Legacy::connect_version(&url, elicit_caps(), "2025-06-18").await;
    for (tool, method, answer) in [
        (
            "sample",
            "sampling/createMessage",
            json!({ "role": "assistant", "content": { "type": "text", "text": "Paris" }, "model": "m" }),
        ),
        ("roots", "roots/list", json!({ "roots": [] })),
    ] {
        let mut call = client
            .send(&client.body(
                "tools/call",
                json!({ "name": tool, "arguments": { "prompt": "Capital?" } }),
            ))
            .await;
        let request = call.next().await.unwrap();
        assert_eq!(request["method"], method);
        let reply = json!({ "jsonrpc": "2.0", "id": request["id"], "result": answer });
        assert_eq!(
            client.post(&reply).send().await.unwrap().status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            text(&call.next().await.unwrap()),
            format!("answer: {answer}")
        );
    }
    // Before 2025-11-25 elicitation has no `mode`.
    let mut call = client
        .send(&client.body(
            "tools/call",
            json!({ "name": "ask", "arguments": { "message": "?" } }),
        ))
        .await;
    let request = call.next().await.unwrap();
    assert!(request["params"].get("mode").is_none());
    let refusal =
        json!({ "jsonrpc": "2.0", "id": request["id"], "error": { "code": -1, "message": "no" } });
    client.post(&refusal).send().await.unwrap();
    assert_eq!(call.next().await.unwrap()["result"]["isError"], true);
}

#[tokio::test]
async fn tools_needing_an_undeclared_capability_fail_as_tool_errors() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    let msg = client.call("ask", json!({ "message": "?" })).await;
    assert_eq!(msg["result"]["isError"], true);
    assert!(text(&msg).contains("elicitation"));
}

#[tokio::test]
async fn the_get_stream_carries_list_changes() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    let mut stream = client.listen().await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(stream.sse);
    assert_eq!(
        client.listen().await.status,
        StatusCode::CONFLICT,
        "one GET stream per session"
    );
    assert_eq!(
        text(&client.call("toggle_extra", json!({})).await),
        "extra is now listed"
    );
    let note = stream.next().await.unwrap();
    assert_eq!(note["method"], "notifications/tools/list_changed");
    let tools = client.request("tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 13);
    // Ending the session ends its stream.
    client
        .http
        .delete(&url)
        .header("mcp-session-id", &client.session)
        .send()
        .await
        .unwrap();
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn log_messages_respect_set_level() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    let mut everything = client
        .send(&client.body(
            "tools/call",
            json!({ "name": "log", "arguments": { "level": "debug", "message": "m" } }),
        ))
        .await;
    let messages = everything.all().await;
    assert_eq!(messages[0]["method"], "notifications/message");
    assert_eq!(text(&messages[1]), "logged");
    client
        .request("logging/setLevel", json!({ "level": "warning" }))
        .await;
    let quiet = client
        .call("log", json!({ "level": "info", "message": "m" }))
        .await;
    assert_eq!(text(&quiet), "suppressed");
    let mut loud = client
        .send(&client.body(
            "tools/call",
            json!({ "name": "log", "arguments": { "level": "error", "message": "m" } }),
        ))
        .await;
    assert_eq!(loud.next().await.unwrap()["params"]["level"], "error");
}

async fn read_stats(client: &Legacy) -> Value {
    let msg = client
        .request("resources/read", json!({ "uri": "fixture://stats" }))
        .await;
    serde_json::from_str(msg["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
}

fn slow_call(client: &Legacy, ms: u64, steps: u64) -> Value {
    let mut body = client.body(
        "tools/call",
        json!({ "name": "slow", "arguments": { "ms": ms, "steps": steps } }),
    );
    body["params"]["_meta"] = json!({ "progressToken": "t" });
    body
}

#[tokio::test]
async fn notifications_cancelled_stops_a_call_without_an_answer() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    let body = slow_call(&client, 60_000, 600);
    let mut call = client.send(&body).await;
    assert_eq!(
        call.next().await.unwrap()["method"],
        "notifications/progress"
    );
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": { "requestId": body["id"], "reason": "test" } });
    assert_eq!(
        client.post(&cancel).send().await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let rest = call.all().await;
    assert!(
        rest.iter().all(|m| m["method"] == "notifications/progress"),
        "no response after cancel: {rest:?}"
    );
    let stats = read_stats(&client).await;
    assert_eq!(stats["slowCancelled"], 1);
}

#[tokio::test]
async fn a_disconnect_is_not_a_cancellation() {
    let url = start().await;
    let client = Legacy::connect(&url, json!({})).await;
    let mut call = client.send(&slow_call(&client, 200, 20)).await;
    assert_eq!(
        call.next().await.unwrap()["method"],
        "notifications/progress"
    );
    drop(call);
    let stats = wait_for_stats(
        async || read_stats(&client).await,
        |s| s["slowCompleted"] == 1,
    )
    .await;
    assert_eq!(stats["slowCancelled"], 0);
}

#[tokio::test]
async fn both_eras_share_one_endpoint() {
    let url = start().await;
    let legacy = Legacy::connect(&url, json!({})).await;
    let modern = Modern::new(&url);
    legacy.call("toggle_extra", json!({})).await;
    let (_, tools) = modern.request("tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 13);
    assert_eq!(tools["result"]["resultType"], "complete");
    assert_eq!(text(&legacy.call("extra", json!({})).await), "extra");
}
