//! Several upstreams behind one endpoint: prefixed names, merged and paged lists, resources
//! routed by owner, progress and cancellation carried both ways, server→client requests
//! relayed with Warden's own ids, list changes forwarded.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::{Value, json};

/// Upstream `a` over HTTP (tool lists in pages of 3), upstream `b` as a stdio child.
async fn two_upstreams() -> warden_gateway::Running {
    let a = fixture_http(Some(3)).await;
    warden(
        "",
        &format!("{}{}", http_upstream("a", &a, ""), stdio_upstream("b", "")),
    )
    .await
}

async fn all_tools(client: &Legacy) -> (Vec<String>, usize) {
    let (mut names, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let params = cursor
            .as_ref()
            .map_or(json!({}), |c| json!({ "cursor": c }));
        let page = client.call("tools/list", params).await;
        pages += 1;
        let result = &page.reply()["result"];
        names.extend(
            result["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match result["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (names, pages),
        }
        assert!(pages < 50, "paging never ends");
    }
}

/// The counters of the only upstream behind `client`'s gateway.
async fn stats(client: &Legacy) -> Value {
    let s = client
        .call("resources/read", json!({ "uri": "fixture://stats" }))
        .await;
    fixture_stats(&s)
}

/// A gateway with one upstream named `fx`, over HTTP or as a stdio child.
async fn one_upstream(stdio: bool) -> warden_gateway::Running {
    let upstream = if stdio {
        stdio_upstream("fx", "")
    } else {
        http_upstream("fx", &fixture_http(None).await, "")
    };
    warden("", &upstream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_merge_across_upstreams_page_by_page() {
    let w = two_upstreams().await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let (names, pages) = all_tools(&client).await;
    for tool in [
        "echo",
        "transfer_funds",
        "delete_records",
        "lookup_customer",
        "slow",
    ] {
        assert!(
            names.contains(&format!("a__{tool}")),
            "a__{tool} in {names:?}"
        );
        assert!(
            names.contains(&format!("b__{tool}")),
            "b__{tool} in {names:?}"
        );
    }
    assert!(
        pages > 2,
        "upstream a pages by 3, so the merged list has several pages ({pages})"
    );
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no tool is listed twice");

    assert_eq!(
        client
            .tool("a__echo", json!({ "text": "via http" }))
            .await
            .text(),
        "via http"
    );
    assert_eq!(
        client
            .tool("b__echo", json!({ "text": "via stdio" }))
            .await
            .text(),
        "via stdio"
    );
    let prompt = client
        .call(
            "prompts/get",
            json!({ "name": "b__greeting", "arguments": { "name": "Ada" } }),
        )
        .await;
    assert!(
        prompt.reply()["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Ada")
    );
    let completion = client.call("completion/complete", json!({ "ref": { "type": "ref/prompt", "name": "a__greeting" }, "argument": { "name": "name", "value": "" } })).await;
    assert!(
        completion.reply()["result"]["completion"]["values"].is_array(),
        "{completion:?}"
    );
    let item = client
        .call("resources/read", json!({ "uri": "fixture://items/42" }))
        .await;
    assert!(
        item.reply()["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{item:?}"
    );
    let missing = client
        .call("resources/read", json!({ "uri": "nowhere://x" }))
        .await;
    assert_eq!(missing.error_code(), Some(-32002));
    let modern_missing = modern(
        &w.mcp_url(),
        "resources/read",
        json!({ "uri": "nowhere://x" }),
    )
    .await;
    assert_eq!(modern_missing.error_code(), Some(-32602));
    assert_eq!(
        modern_missing.reply()["error"]["data"]["uri"],
        "nowhere://x"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_lists_are_private_and_complete() {
    let w = two_upstreams().await;
    let page = modern(&w.mcp_url(), "tools/list", json!({})).await;
    let result = &page.reply()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");
    assert!(result["ttlMs"].is_u64());
    let discover = modern(&w.mcp_url(), "server/discover", json!({})).await;
    assert_eq!(
        discover.reply()["result"]["supportedVersions"],
        json!([MODERN])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reaches_the_client_under_its_own_token() {
    let w = two_upstreams().await;
    let client = Legacy::connect(&w.mcp_url()).await;
    for tool in ["a__slow", "b__slow"] {
        let a = client.call("tools/call", json!({ "name": tool, "arguments": { "ms": 150, "steps": 3 }, "_meta": { "progressToken": "tok-7" } })).await;
        let progress: Vec<&Value> = a
            .messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{tool}: {a:?}");
        assert!(
            progress
                .iter()
                .all(|p| p["params"]["progressToken"] == "tok-7")
        );
        assert_eq!(a.text(), "done");
    }
    let modern_progress = {
        let http = reqwest::Client::new();
        let mut body = modern_body(
            5,
            "tools/call",
            json!({ "name": "a__slow", "arguments": { "ms": 150, "steps": 2 } }),
        );
        body["params"]["_meta"]["progressToken"] = 99.into();
        read_answer(
            modern_request(&http, &w.mcp_url(), &body)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let tokens: Vec<&Value> = modern_progress
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| &m["params"]["progressToken"])
        .collect();
    assert_eq!(tokens, vec![&json!(99), &json!(99)]);
    assert_eq!(modern_progress.reply()["result"]["resultType"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_cancel_reaches_the_upstream() {
    for stdio in [false, true] {
        let w = one_upstream(stdio).await;
        let client = Legacy::connect(&w.mcp_url()).await;
        let body = json!({ "jsonrpc": "2.0", "id": "c-1", "method": "tools/call", "params": { "name": "fx__slow", "arguments": { "ms": 60_000 } } });
        let call = client.post(&body);
        let cancel = async {
            while stats(&client).await["slowStarted"].as_u64().unwrap_or(0) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let a = client.post(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "c-1", "reason": "test" } })).await;
            assert_eq!(a.status, 202);
            while stats(&client).await["slowCancelled"].as_u64().unwrap_or(0) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let (answer, ()) = within(Duration::from_secs(20), async {
            tokio::join!(call, cancel)
        })
        .await;
        assert!(
            answer.messages.iter().all(|m| m.get("result").is_none()),
            "stdio={stdio}: a cancelled call gets no result: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_a_modern_stream_cancels_the_upstream_call() {
    // Observed in the modern era too: a stdio upstream gets one child per user and era.
    async fn modern_stats(url: &str) -> Value {
        fixture_stats(&modern(url, "resources/read", json!({ "uri": "fixture://stats" })).await)
    }
    for stdio in [false, true] {
        let w = one_upstream(stdio).await;
        let url = w.mcp_url();
        let http = reqwest::Client::new();
        let body = modern_body(
            1,
            "tools/call",
            json!({ "name": "fx__slow", "arguments": { "ms": 60_000 } }),
        );
        let call = tokio::spawn(modern_request(&http, &url, &body).send());
        within(Duration::from_secs(20), async {
            while modern_stats(&url).await["slowStarted"]
                .as_u64()
                .unwrap_or(0)
                == 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        call.abort();
        drop(http);
        within(Duration::from_secs(20), async {
            while modern_stats(&url).await["slowCancelled"]
                .as_u64()
                .unwrap_or(0)
                == 0
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_requests_reach_a_legacy_client_and_its_answer_returns() {
    let w = two_upstreams().await;
    let client = Legacy::connect(&w.mcp_url()).await;
    for tool in ["a__ask", "b__ask"] {
        let r = client.request().body(json!({ "jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": { "name": tool, "arguments": { "message": "Your name?" } } }).to_string()).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let mut events = Box::pin(events(r));
        let request = within(Duration::from_secs(10), events.next())
            .await
            .expect("an elicitation arrives");
        assert_eq!(request["method"], "elicitation/create", "{request}");
        let id = request["id"].clone();
        assert!(
            id.as_str().is_some_and(|s| s.starts_with("warden-")),
            "Warden's own id: {id}"
        );
        let answer = client.post(&json!({ "jsonrpc": "2.0", "id": id, "result": { "action": "accept", "content": { "name": "Ada" } } })).await;
        assert_eq!(answer.status, 202);
        let reply = within(Duration::from_secs(10), events.next())
            .await
            .expect("the reply arrives");
        assert_eq!(reply["id"], 41);
        assert!(
            reply["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("Ada"),
            "{reply}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_the_capability_is_not_asked() {
    let w = two_upstreams().await;
    let client = Legacy::connect_with(&w.mcp_url(), json!({})).await;
    let a = within(
        Duration::from_secs(10),
        client.tool("b__ask", json!({ "message": "?" })),
    )
    .await;
    assert!(
        a.messages.iter().all(|m| m.get("method").is_none()),
        "no request was relayed: {a:?}"
    );
    let text = serde_json::to_string(a.reply()).unwrap();
    assert!(
        text.contains("elicitation"),
        "the upstream was told why: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_clients_get_input_required_results_intact() {
    let w = two_upstreams().await;
    let http = reqwest::Client::new();
    let mut body = modern_body(
        1,
        "tools/call",
        json!({ "name": "a__ask", "arguments": { "message": "Name?" } }),
    );
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({ "elicitation": {} });
    let first = read_answer(
        modern_request(&http, &w.mcp_url(), &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let result = &first.reply()["result"];
    assert_eq!(result["resultType"], "input_required", "{first:?}");
    let (key, _) = result["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let mut retry = body.clone();
    retry["id"] = 2.into();
    retry["params"]["inputResponses"] =
        json!({ key.clone(): { "action": "accept", "content": { "name": "Grace" } } });
    if let Some(state) = result.get("requestState") {
        retry["params"]["requestState"] = state.clone();
    }
    let second = read_answer(
        modern_request(&http, &w.mcp_url(), &retry)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        second.reply()["result"]["resultType"],
        "complete",
        "{second:?}"
    );
    assert!(second.text().contains("Grace"), "{second:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_changes_reach_listening_clients_of_both_eras() {
    let w = two_upstreams().await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let get = client
        .http
        .get(w.mcp_url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &client.session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let mut legacy_events = Box::pin(events(get));

    let http = reqwest::Client::new();
    let listen = modern_body(
        77,
        "subscriptions/listen",
        json!({ "notifications": { "toolsListChanged": true } }),
    );
    let r = modern_request(&http, &w.mcp_url(), &listen)
        .send()
        .await
        .unwrap();
    let mut modern_events = Box::pin(events(r));
    let ack = within(Duration::from_secs(10), modern_events.next())
        .await
        .unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");

    // Both upstream links must be open for the change to be heard: use each era once.
    assert_eq!(
        client.tool("a__echo", json!({ "text": "x" })).await.text(),
        "x"
    );
    assert_eq!(
        modern(
            &w.mcp_url(),
            "tools/call",
            json!({ "name": "a__echo", "arguments": { "text": "y" } })
        )
        .await
        .text(),
        "y"
    );
    client.tool("a__toggle_extra", json!({})).await;

    let changed = within(Duration::from_secs(10), legacy_events.next())
        .await
        .unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    let changed = within(Duration::from_secs(10), modern_events.next())
        .await
        .unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        77
    );
}

/// A client of one era using an upstream pinned to the other: tools, resources, prompts and
/// completions all work, with the answers shaped for the client's era.
#[tokio::test(flavor = "multi_thread")]
async fn clients_use_upstreams_of_the_other_era() {
    let upstream = fixture_http(None).await;
    let config = format!(
        "{}{}",
        http_upstream("m", &upstream, "era = \"modern\""),
        http_upstream("l", &upstream, "era = \"legacy\"")
    );
    let w = warden("", &config).await;
    let url = w.mcp_url();

    // Legacy client, modern-only link.
    let client = Legacy::connect(&url).await;
    assert_eq!(
        client
            .tool("m__echo", json!({ "text": "old to new" }))
            .await
            .text(),
        "old to new"
    );
    let read = client
        .call("resources/read", json!({ "uri": "fixture://readme" }))
        .await;
    assert!(
        read.reply()["result"]["contents"][0]["text"].is_string(),
        "{read:?}"
    );
    let prompt = client
        .call(
            "prompts/get",
            json!({ "name": "m__greeting", "arguments": { "name": "Ada" } }),
        )
        .await;
    assert!(
        prompt.reply()["result"]["messages"].is_array(),
        "{prompt:?}"
    );
    let done = client.call("completion/complete", json!({ "ref": { "type": "ref/prompt", "name": "m__greeting" }, "argument": { "name": "name", "value": "a" } })).await;
    assert!(
        done.reply()["result"]["completion"]["values"].is_array(),
        "{done:?}"
    );
    let progress = client.call("tools/call", json!({ "name": "m__slow", "arguments": { "ms": 100, "steps": 2 }, "_meta": { "progressToken": "p" } })).await;
    assert_eq!(
        progress
            .messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .count(),
        2,
        "{progress:?}"
    );
    // A modern upstream's InputRequiredResult cannot be put to a legacy client: a clear error.
    let ask = client.tool("m__ask", json!({ "message": "?" })).await;
    assert!(
        ask.reply()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2026-07-28"),
        "{ask:?}"
    );

    // Modern client, legacy-only link.
    let echo = modern(
        &url,
        "tools/call",
        json!({ "name": "l__echo", "arguments": { "text": "new to old" } }),
    )
    .await;
    assert_eq!(echo.text(), "new to old", "{echo:?}");
    assert_eq!(echo.reply()["result"]["resultType"], "complete");
    let prompt = modern(
        &url,
        "prompts/get",
        json!({ "name": "l__greeting", "arguments": { "name": "Ada" } }),
    )
    .await;
    assert_eq!(prompt.reply()["result"]["resultType"], "complete");
    let done = modern(&url, "completion/complete", json!({ "ref": { "type": "ref/prompt", "name": "l__greeting" }, "argument": { "name": "name", "value": "a" } })).await;
    assert_eq!(done.reply()["result"]["resultType"], "complete", "{done:?}");
    // A legacy upstream's elicitation cannot be put to a modern client: the upstream is told.
    let ask = modern(
        &url,
        "tools/call",
        json!({ "name": "l__ask", "arguments": { "message": "?" } }),
    )
    .await;
    assert!(
        serde_json::to_string(ask.reply())
            .unwrap()
            .contains("cannot be relayed"),
        "{ask:?}"
    );
}
