//! When the gateway cannot judge a credential (its store replaced under it, its identity
//! provider unreachable) it fails closed with 503 and `Retry-After`, counted and logged apart
//! from refused credentials.

mod common;

use common::logs::capture_logs;
use common::signed_in::setup;
use common::*;
use serde_json::{Value, json};
use warden_gateway::devidp::{DevIdp, claims};

/// A store file renamed over while the gateway runs (a backup restored in place) would leave
/// the gateway reading the old file, blind to revocations in the new one: requests are refused
/// with 503 instead, naming no file of the host, until Warden restarts. With nothing written
/// into the new file, the gateway notices within a second (its periodic check of the file's
/// name), so the calls are repeated until then. The 503 asks the client to come back later, is
/// counted apart from refused credentials, and the outage is logged once, not once per request.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_replaced_under_the_gateway_refuses_every_request() {
    let logs = capture_logs();
    let s = setup().await;
    let token = s.token("alice", json!({}));
    assert_eq!(s.call(&token).await.0, 200);
    let backup = s.data.path().join("backup.db");
    drop(
        warden_gateway::store::sqlite::SqliteStore::open(&backup)
            .await
            .unwrap(),
    );
    std::fs::rename(&backup, s.data.path().join("warden.db")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let (status, _, reply) = s.call(&token).await;
        if status != 200 {
            break (status, reply);
        }
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for (status, reply) in [refused.clone(), {
        let (st, _, r) = s.call(&token).await;
        (st, r)
    }] {
        assert_eq!(status, 503, "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("cannot read its keys and revocations"),
            "{reply}"
        );
        assert!(!reply.to_string().contains(".db"), "{reply}");
    }

    for _ in 0..20 {
        unavailable(&s.url, &token).await;
    }
    let metrics = metrics(&s.warden).await;
    let counted = |reason: &str| rejected(&metrics, reason);
    assert!(counted("unavailable") >= 22.0, "{metrics}");
    assert_eq!(counted("auth"), 0.0, "{metrics}");
    // 22 refusals or more, logged when the outage began (and again only after 10 s).
    let logged =
        logs.lines("cannot read keys and revocations; refusing requests until the store works");
    assert!(
        (1..=2).contains(&logged.len()),
        "{} lines for the outage: {logged:?}",
        logged.len()
    );
    assert_eq!(logged[0]["fields"]["refused"], 1, "{logged:?}");
}

/// A provider that cannot be reached, with no signing key known yet, leaves the gateway unable
/// to judge any token: it fails closed with 503 and `Retry-After`, not with a 401 that would
/// send the client to sign in again, and counts it apart from refused credentials.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_provider_is_a_503_to_retry_later() {
    let minter = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    // A port nothing listens on: every fetch of the discovery document is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let upstream = fixture_http(None).await;
    let warden = warden_with(
        "",
        &format!("issuer = {dead:?}\njwks_min_refresh = \"0s\"\n"),
        &http_upstream("fx", &upstream, ""),
    )
    .await;
    let url = warden.mcp_url();
    let token = minter.mint(claims("alice", "agent-1", &url, 300, json!({})));
    for _ in 0..2 {
        let reply = unavailable(&url, &token).await;
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("identity provider cannot be reached"),
            "{reply}"
        );
        assert!(!reply.to_string().contains(&token), "{reply}");
    }
    let text = metrics(&warden).await;
    let counted = |reason: &str| rejected(&text, reason);
    assert_eq!(counted("unavailable"), 2.0, "{text}");
    assert_eq!(counted("auth"), 0.0, "{text}");
}

/// A `tools/list` with `token` that must be refused with 503 and `Retry-After: 5`; its reply.
async fn unavailable(url: &str, token: &str) -> Value {
    let body = modern_body(1, "tools/list", json!({}));
    let r = modern_request(&reqwest::Client::new(), url, &body)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    r.json().await.unwrap()
}

/// How many requests `/metrics` text counts as rejected for `reason`.
fn rejected(metrics: &str, reason: &str) -> f64 {
    count(
        metrics,
        &format!("warden_rejected_total{{method=\"{reason}\"}} "),
    )
}
