//! The binary in `--stdio` mode, driven through its stdin and stdout in both eras.

mod common;

use common::*;
use serde_json::{Value, json};

async fn initialize(child: &mut StdioChild, caps: Value) -> Value {
    let init = child
        .request(
            json!(0),
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": caps,
                                                  "clientInfo": { "name": "t", "version": "0" } }),
        )
        .await;
    child
        .send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .await;
    init
}

#[tokio::test]
async fn legacy_session_over_stdio() {
    let mut child = StdioChild::spawn();
    let init = initialize(&mut child, json!({})).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "warden-fixture");
    let tools = child.request(json!(1), "tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 12);
    let echo = child
        .request(
            json!("e"),
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "hi" } }),
        )
        .await;
    assert_eq!(text(&echo), "hi");
    let pid = child
        .request(json!(2), "tools/call", json!({ "name": "pid" }))
        .await;
    assert_eq!(text(&pid), child.child.id().unwrap().to_string());
    assert_eq!(
        child.request(json!(3), "ping", json!({})).await["result"],
        json!({})
    );
    // Garbage gets a parse error with a null id, and the connection lives on.
    child.send(&json!("not an object")).await;
    assert_eq!(child.recv().await.unwrap()["error"]["code"], -32600);
    assert_eq!(
        child.request(json!(4), "ping", json!({})).await["result"],
        json!({})
    );
}

#[tokio::test]
async fn modern_requests_over_stdio() {
    let mut child = StdioChild::spawn();
    let discover = child
        .request(
            json!("probe"),
            "server/discover",
            json!({ "_meta": modern_meta(json!({})) }),
        )
        .await;
    assert_eq!(discover["result"]["resultType"], "complete");
    assert_eq!(discover["result"]["supportedVersions"][0], MODERN);
    let echo = child
        .request(json!(1), "tools/call", json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": modern_meta(json!({})) }))
        .await;
    assert_eq!(echo["result"]["resultType"], "complete");
    assert_eq!(text(&echo), "hi");
    let no_caps = child
        .request(
            json!(2),
            "tools/list",
            json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN } }),
        )
        .await;
    assert_eq!(no_caps["error"]["code"], -32602);
    let mut future = modern_meta(json!({}));
    future["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    let unsupported = child
        .request(json!(3), "tools/list", json!({ "_meta": future }))
        .await;
    assert_eq!(unsupported["error"]["code"], -32022);
    assert_eq!(unsupported["error"]["data"]["requested"], "2099-01-01");
    let ping = child
        .request(json!(4), "ping", json!({ "_meta": modern_meta(json!({})) }))
        .await;
    assert_eq!(ping["error"]["code"], -32601);
    // The modern ask is a multi-round-trip, never a request on stdout.
    let params = json!({ "name": "ask", "arguments": { "message": "?" }, "_meta": modern_meta(json!({ "elicitation": {} })) });
    let (before, first) = {
        child.send(&json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params.clone() })).await;
        child.until_response(&json!(5)).await
    };
    assert!(before.is_empty());
    assert_eq!(first["result"]["resultType"], "input_required");
    let mut retry = params;
    retry["inputResponses"] = json!({ "q": { "action": "decline" } });
    retry["requestState"] = first["result"]["requestState"].clone();
    let done = child.request(json!(6), "tools/call", retry).await;
    assert_eq!(text(&done), r#"answer: {"action":"decline"}"#);
}

#[tokio::test]
async fn legacy_ask_writes_a_request_and_reads_the_reply() {
    let mut child = StdioChild::spawn();
    initialize(&mut child, json!({ "elicitation": {} })).await;
    child
        .send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": { "name": "ask", "arguments": { "message": "Name?" } } }))
        .await;
    let request = child.recv().await.unwrap();
    assert_eq!(request["method"], "elicitation/create");
    let answer = json!({ "action": "accept", "content": { "answer": "Ada" } });
    child
        .send(&json!({ "jsonrpc": "2.0", "id": request["id"], "result": answer }))
        .await;
    let (_, done) = child.until_response(&json!(1)).await;
    assert_eq!(text(&done), format!("answer: {answer}"));
}

#[tokio::test]
async fn cancelled_calls_send_nothing_more() {
    let mut child = StdioChild::spawn();
    initialize(&mut child, json!({})).await;
    // Progress every 500 ms: the cancellation lands well before the next one is due.
    child
        .send(
            &json!({ "jsonrpc": "2.0", "id": "slow", "method": "tools/call",
                        "params": { "name": "slow", "arguments": { "ms": 20000, "steps": 40 },
                                    "_meta": { "progressToken": 1 } } }),
        )
        .await;
    assert_eq!(
        child.recv().await.unwrap()["method"],
        "notifications/progress"
    );
    child.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "slow" } })).await;
    // Until the fixture has counted the cancellation, a progress tick already under way may
    // still arrive; never the call's reply.
    let mut stats_id = 100;
    loop {
        let (between, stats) = child
            .request_collecting(
                json!(stats_id),
                "resources/read",
                json!({ "uri": "fixture://stats" }),
            )
            .await;
        assert!(
            between
                .iter()
                .all(|m| m["method"] == "notifications/progress"),
            "nothing but progress: {between:?}"
        );
        let stats: Value =
            serde_json::from_str(stats["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
        if stats["slowCancelled"] == 1 {
            break;
        }
        stats_id += 1;
    }
    // Once it has, nothing more comes for the cancelled call.
    let (after, _) = child
        .request_collecting(json!("last"), "ping", json!({}))
        .await;
    assert!(
        after.is_empty(),
        "nothing for the cancelled call: {after:?}"
    );
}

#[tokio::test]
async fn list_changes_reach_legacy_clients_and_modern_listeners() {
    let mut child = StdioChild::spawn();
    let listen =
        json!({ "notifications": { "toolsListChanged": true }, "_meta": modern_meta(json!({})) });
    child.send(&json!({ "jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": listen })).await;
    let ack = child.recv().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L"
    );
    initialize(&mut child, json!({})).await;
    child.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "toggle_extra" } })).await;
    let (notes, done) = child.until_response(&json!(1)).await;
    let mut notes = notes;
    // The change may be announced after the response; read until both forms arrived.
    while notes.len() < 2 {
        notes.push(child.recv().await.unwrap());
    }
    assert_eq!(text(&done), "extra is now listed");
    assert!(
        notes
            .iter()
            .all(|n| n["method"] == "notifications/tools/list_changed")
    );
    let tagged = notes
        .iter()
        .filter(|n| n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "L")
        .count();
    assert_eq!(tagged, 1, "{notes:?}");
    // Cancelling the listener ends it: the next change reaches only the legacy client.
    child.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "L" } })).await;
    child.request(json!(2), "ping", json!({})).await;
    child.send(&json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": { "name": "toggle_extra" } })).await;
    let (mut notes, _) = child.until_response(&json!(3)).await;
    if notes.is_empty() {
        notes.push(child.recv().await.unwrap());
    }
    child
        .send(&json!({ "jsonrpc": "2.0", "id": 4, "method": "ping" }))
        .await;
    let (late, _) = child.until_response(&json!(4)).await;
    notes.extend(late);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["params"].get("_meta").is_none());
}

#[tokio::test]
async fn exits_when_stdin_closes() {
    let mut child = StdioChild::spawn();
    child.request(json!(1), "ping", json!({})).await;
    child.close_stdin();
    assert!(child.recv().await.is_none());
    let status = tokio::time::timeout(PATIENCE, child.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
