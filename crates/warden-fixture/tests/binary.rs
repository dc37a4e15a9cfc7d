//! The binary in HTTP mode: one `LISTENING` line on stdout, then it serves that URL.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn announces_where_it_listens_then_serves_there() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden-fixture"))
        .args(["--http", "127.0.0.1:0", "--page-size", "4"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("LISTENING ").expect("a LISTENING line");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    assert!(!url.ends_with(":0/mcp"));

    let client = Modern::new(url);
    let (_, discover) = client.request("server/discover", json!({})).await;
    assert_eq!(discover["result"]["resultType"], "complete");
    let (_, page) = client.request("tools/list", json!({})).await;
    assert_eq!(page["result"]["tools"].as_array().unwrap().len(), 4);
    assert!(page["result"]["nextCursor"].is_string());

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        lines.next_line().await.unwrap().is_none(),
        "nothing but the LISTENING line on stdout"
    );
}
