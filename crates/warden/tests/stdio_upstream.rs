//! Stdio children: a child killed mid-call fails that call at once, and the next call gets a
//! fresh child; each user gets their own child.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn pid_of(a: &Answer) -> u32 {
    a.text()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid tool answered {a:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_child_fails_the_call_at_once_and_the_next_call_gets_a_fresh_one() {
    let w = warden("", &stdio_upstream("fx", "")).await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let first = pid_of(&client.tool("fx__pid", json!({})).await);

    let slow = client.tool("fx__slow", json!({ "ms": 30_000 }));
    let kill = async {
        // Wait until the child has the call (its counters say so), then kill it.
        let stats = || client.call("resources/read", json!({ "uri": "fixture://stats" }));
        loop {
            if fixture_stats(&stats().await)["slowStarted"]
                .as_u64()
                .unwrap_or(0)
                > 0
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        let killed_at = Instant::now();
        std::process::Command::new("kill")
            .args(["-9", &first.to_string()])
            .status()
            .unwrap();
        killed_at
    };
    let (answer, killed_at) =
        within(Duration::from_secs(20), async { tokio::join!(slow, kill) }).await;
    let waited = killed_at.elapsed();
    assert_eq!(answer.error_code(), Some(-32050), "{answer:?}");
    assert!(
        answer.reply()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fx"),
        "names the upstream: {answer:?}"
    );
    assert!(
        waited < Duration::from_secs(1),
        "the caller waited {waited:?} after the kill"
    );

    let second = client.tool("fx__pid", json!({})).await;
    assert_ne!(pid_of(&second), first, "a fresh child serves the next call");
    assert_eq!(
        client
            .tool("fx__echo", json!({ "text": "still here" }))
            .await
            .text(),
        "still here"
    );
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_the_gateway_ends_its_children() {
    let w = warden("", &stdio_upstream("fx", "")).await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let pid = pid_of(&client.tool("fx__pid", json!({})).await);
    w.stop().await.unwrap();
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "child {pid} outlived the gateway");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_child_is_stopped_and_the_next_call_starts_another() {
    let w = warden("", &stdio_upstream("fx", "idle_timeout = \"200ms\"")).await;
    let client = Legacy::connect(&w.mcp_url()).await;
    let pid = pid_of(&client.tool("fx__pid", json!({})).await);
    within(Duration::from_secs(10), async {
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_ne!(pid_of(&client.tool("fx__pid", json!({})).await), pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_of_one_user_share_that_users_child() {
    let per_user = warden("", &stdio_upstream("fx", "")).await;
    let client = Legacy::connect(&per_user.mcp_url()).await;
    let a = pid_of(&client.tool("fx__pid", json!({})).await);
    let b = pid_of(
        &Legacy::connect(&per_user.mcp_url())
            .await
            .tool("fx__pid", json!({}))
            .await,
    );
    assert_eq!(a, b, "two sessions of one user share that user's child");
    let stats = per_user.gateway.pool.stats();
    assert_eq!(stats.upstreams[0].1, 1, "one live child");
}
