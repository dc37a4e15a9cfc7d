//! The MCP Inspector CLI (`@modelcontextprotocol/inspector`, pinned here and in the banner of
//! `warden dev`), on Node 22 with the arguments the banner prints (`--cli URL --transport http
//! --method ...`), connects to Warden, lists the tools of both reference servers and calls them.
//! The banner's own text is run as printed, on the system's Node, by
//! `crates/warden/tests/dev_inspector.rs`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use warden_interop::*;

const NOTE: &str = "read by the MCP Inspector through Warden\n";

/// Runs `mcp-inspector --cli <url> --transport http <rest>` with a throwaway HOME (the Inspector
/// keeps a catalog and settings there) and returns the JSON it printed.
async fn inspector(home: &Path, url: &str, rest: &[&str]) -> anyhow::Result<Value> {
    let launcher = bin("mcp-inspector").display().to_string();
    let mut args = vec![launcher.as_str(), "--cli", url, "--transport", "http"];
    args.extend_from_slice(rest);
    let stdout = run_node(&args, &[("HOME", home)], Duration::from_secs(120)).await?;
    serde_json::from_str(&stdout).map_err(|e| {
        anyhow::anyhow!("the Inspector printed something other than JSON ({e}): {stdout}")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn inspector_cli_lists_and_calls_tools_through_warden() {
    let s = ReferenceGateway::start(NOTE).await;
    let home = tempfile::tempdir().expect("temp HOME");
    let url = s.gateway.mcp_url();
    let path_arg = format!("path={}", s.note.display());

    let listed = inspector(home.path(), &url, &["--method", "tools/list"]).await;
    let echoed = inspector(
        home.path(),
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "everything__echo",
            "--tool-arg",
            "message=hello from the Inspector",
        ],
    )
    .await;
    let read = inspector(
        home.path(),
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "files__read_text_file",
            "--tool-arg",
            &path_arg,
        ],
    )
    .await;
    s.gateway.stop().await.expect("warden stops");

    let listed = listed.expect("inspector tools/list");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("a tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in [
        "everything__echo",
        "everything__trigger-url-elicitation",
        "files__read_text_file",
        "files__list_allowed_directories",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not listed: {names:?}"
        );
    }

    let echoed = echoed.expect("inspector tools/call echo");
    assert_eq!(
        echoed["content"][0]["text"], "Echo: hello from the Inspector",
        "{echoed}"
    );
    let read = read.expect("inspector tools/call read_text_file");
    assert_eq!(read["content"][0]["text"], NOTE, "{read}");
}
