//! What an operator sees: health endpoints and Prometheus metrics that count what happened.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_report_what_happened() {
    let upstream = fixture_http(None).await;
    let w = warden("", &http_upstream("fx", &upstream, "")).await;
    let base = format!("http://{}", w.addr);
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let client = Legacy::connect(&w.mcp_url()).await;
    for _ in 0..3 {
        assert_eq!(
            client.tool("fx__echo", json!({ "text": "x" })).await.text(),
            "x"
        );
    }
    client.tool("nosuch__tool", json!({})).await;
    let bad = http
        .post(w.mcp_url())
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 415);

    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |needle: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} missing from:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        value(r#"warden_requests_total{method="tools/call",server="fx",tool="echo",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        value(r#"warden_requests_total{method="tools/call",server="",tool="",outcome="unknown"}"#),
        1.0
    );
    assert_eq!(
        value(r#"warden_rejected_total{method="content-type"}"#),
        1.0
    );
    assert!(value(r#"warden_request_duration_seconds_count{method="tools/call"}"#) >= 4.0);
    assert_eq!(value("warden_sessions "), 1.0);
    assert_eq!(value("warden_calls_in_flight "), 0.0, "every call ended");
    assert_eq!(value(r#"warden_upstream_links{server="fx"}"#), 1.0);
    assert_eq!(value(r#"warden_upstream_up{server="fx"}"#), 1.0);
}
