//! An HTTP upstream that restarts or dies: Warden's kept-alive connections to it go stale, and
//! calls must still get a clear answer quickly and work again once the upstream is back.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The fixture as its own process, so that killing it closes every connection Warden holds.
struct Upstream {
    child: Child,
    url: String,
}

impl Upstream {
    async fn start(addr: &str) -> Upstream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["fixture", "--http", addr])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let url = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("the fixture said {line:?}"))
            .to_string();
        Upstream { child, url }
    }

    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_string()
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

async fn echo_modern(url: &str, text: &str) -> Answer {
    modern(
        url,
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": text } }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_work_again_after_the_upstream_restarts() {
    let first = Upstream::start("127.0.0.1:0").await;
    let addr = first.addr();
    let w = warden("", &http_upstream("fx", &first.url, "")).await;
    let url = w.mcp_url();
    let legacy = Legacy::connect(&url).await;
    assert_eq!(echo_modern(&url, "one").await.text(), "one");
    assert_eq!(
        legacy
            .tool("fx__echo", json!({ "text": "one" }))
            .await
            .text(),
        "one"
    );

    first.kill().await;
    let _second = Upstream::start(&addr).await;

    // Modern calls are self-contained: the stale connection is replaced and the call goes through.
    assert_eq!(echo_modern(&url, "two").await.text(), "two");
    // The legacy link's upstream session died with the process: one clear error, then a new
    // session serves the next call.
    let lost = legacy.tool("fx__echo", json!({ "text": "two" })).await;
    let error = &lost.reply()["error"];
    assert_eq!(lost.error_code(), Some(-32050), "{lost:?}");
    assert!(
        error["message"].as_str().unwrap().contains("session"),
        "{error}"
    );
    assert_eq!(
        legacy
            .tool("fx__echo", json!({ "text": "three" }))
            .await
            .text(),
        "three"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_dies_mid_call_gives_an_error_at_once() {
    let upstream = Upstream::start("127.0.0.1:0").await;
    let w = warden("", &http_upstream("fx", &upstream.url, "")).await;
    let url = w.mcp_url();
    let slow = modern(
        &url,
        "tools/call",
        json!({ "name": "fx__slow", "arguments": { "ms": 60_000 } }),
    );
    let kill = async {
        // The fixture counts a slow call as soon as it starts.
        loop {
            let s = modern(&url, "resources/read", json!({ "uri": "fixture://stats" })).await;
            if fixture_stats(&s)["slowStarted"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        upstream.kill().await;
    };
    let (answer, ()) = within(Duration::from_secs(10), async { tokio::join!(slow, kill) }).await;
    assert_eq!(answer.error_code(), Some(-32050), "{answer:?}");
    let message = answer.reply()["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"fx\""), "{message}");

    // Nothing listens there now: the next call is refused with the same code, quickly.
    let refused = within(Duration::from_secs(10), echo_modern(&url, "x")).await;
    assert_eq!(refused.error_code(), Some(-32050), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_upstream_that_does_not_speak_tls_is_a_clear_error() {
    // The fixture speaks plain HTTP; asked for TLS, it cannot complete a handshake.
    let plain = fixture_http(None).await;
    let url = plain.replacen("http://", "https://", 1);
    let w = warden("", &http_upstream("fx", &url, "")).await;
    // (A tool would be unknown: the tool list cannot be read. The one upstream owns every URI.)
    let mcp = w.mcp_url();
    let read = modern(&mcp, "resources/read", json!({ "uri": "fixture://readme" }));
    let answer = within(Duration::from_secs(10), read).await;
    assert_eq!(answer.error_code(), Some(-32050), "{answer:?}");
    let message = answer.reply()["error"]["message"].as_str().unwrap();
    assert!(message.contains("TLS"), "{message}");
}
