//! Rate limits: per principal, per principal and tool, and per address at the edge; a refused
//! call says when to retry.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn calls_over_a_limit_are_refused_with_a_retry_hint() {
    let upstream = fixture_http(None).await;
    let rest = format!(
        "[rate_limits]\nper_principal = {{ rate = 1, per = \"1h\", burst = 6 }}\n[rate_limits.tools]\n\"fx__transfer_funds\" = {{ rate = 1, per = \"1h\", burst = 2 }}\n{}",
        http_upstream("fx", &upstream, "")
    );
    let w = warden_with("", "test_user = \"tester\"", &rest).await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let transfer = || client.tool("fx__transfer_funds", json!({ "to": "x", "amount": 1 }));
    assert!(transfer().await.text().contains("transferred"));
    assert!(transfer().await.text().contains("transferred"));
    let refused = transfer().await;
    assert_eq!(refused.error_code(), Some(-32052), "{refused:?}");
    assert_eq!(refused.reply()["id"], 3, "the refusal answers that request");
    assert!(
        refused.reply()["error"]["data"]["retryAfterMs"]
            .as_u64()
            .unwrap()
            > 1000
    );
    assert!(
        refused.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fx__transfer_funds")
    );
    // Other tools still work until the principal's own limit (6 requests) is spent.
    assert_eq!(
        client.tool("fx__echo", json!({ "text": "a" })).await.text(),
        "a"
    );
    assert_eq!(
        client.tool("fx__echo", json!({ "text": "b" })).await.text(),
        "b"
    );
    let spent = client.tool("fx__echo", json!({ "text": "c" })).await;
    assert_eq!(spent.error_code(), Some(-32052), "{spent:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_over_its_limit_gets_429_before_anything_else() {
    let upstream = fixture_http(None).await;
    let rest = format!(
        "[rate_limits]\nper_address = {{ rate = 1, per = \"1h\", burst = 3 }}\n{}",
        http_upstream("fx", &upstream, "")
    );
    let w = warden_with("", "test_user = \"tester\"", &rest).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http.post(w.mcp_url())
                .header("content-type", "text/plain")
                .body("x")
                .send()
                .await
                .unwrap(),
        );
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == 415));
    assert_eq!(last.status(), 429);
    assert!(
        last.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1
    );
}
