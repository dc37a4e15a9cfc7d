//! A small MCP client over reqwest for Warden's end-to-end tests, and starters for Warden and
//! the fixture upstream (in this process on random loopback ports, or as a stdio child).

#![allow(dead_code)]

pub mod logs;
pub mod signed_in;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_gateway::{Config, Running};

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
pub const MODERN: &str = "2026-07-28";

/// The Prometheus text of Warden's `/metrics`.
pub async fn metrics(w: &Running) -> String {
    reqwest::get(format!("http://{}/metrics", w.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first series in `text` that starts with `needle` (a metric's name and
/// labels), or 0 when there is none.
pub fn count(text: &str, needle: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The fixture's counters, from the answer to a `resources/read` of `fixture://stats`.
pub fn fixture_stats(answer: &Answer) -> Value {
    let text = answer.reply()["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or("{}");
    serde_json::from_str(text).unwrap_or_default()
}

/// Starts the Rust fixture over HTTP in this process; returns its MCP URL.
pub async fn fixture_http(page_size: Option<usize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = warden_fixture::Options {
        page_size: page_size.and_then(std::num::NonZeroUsize::new),
        ..Default::default()
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    format!("http://{addr}/mcp")
}

/// The TOML of a stdio upstream running the fixture through this package's `warden` binary.
pub fn stdio_upstream(name: &str, extra: &str) -> String {
    format!(
        "[upstreams.{name}]\ncommand = {:?}\nargs = [\"fixture\", \"--stdio\"]\n{extra}\n",
        env!("CARGO_BIN_EXE_warden")
    )
}

pub fn http_upstream(name: &str, url: &str, extra: &str) -> String {
    format!("[upstreams.{name}]\nurl = {url:?}\n{extra}\n")
}

/// Starts Warden with `[server]` extras and upstream tables. Set RUST_LOG to see its logs.
pub async fn warden(server: &str, upstreams: &str) -> Running {
    warden_with(server, "test_user = \"tester\"", upstreams).await
}

/// Starts Warden with `[server]` extras, `[identity]` lines and the rest of the config.
pub async fn warden_with(server: &str, identity: &str, rest: &str) -> Running {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let policies = if rest.contains("[policy]") {
        String::new()
    } else {
        format!("[policy]\ndir = {:?}\n", allow_all_policies())
    };
    // Each gateway keeps its files (the audit log among them) in a directory of its own.
    let storage = if rest.contains("[storage]") {
        String::new()
    } else {
        format!("[storage]\npath = {:?}\n", data_dir())
    };
    // Test identity providers live on loopback.
    let outbound = if rest.contains("[outbound]") {
        ""
    } else {
        "[outbound]\nallow = [\"127.0.0.1\"]\n"
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[identity]\n{identity}\n\n{policies}{storage}{outbound}{rest}"
    );
    let config = Config::from_toml(std::path::Path::new("test.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    warden_gateway::start_on(listener, config).await.unwrap()
}

/// A new directory for one gateway's files. It is kept: the gateway (and its audit log's
/// writer) may outlive the test function that started it.
pub fn data_dir() -> String {
    tempfile::tempdir().unwrap().keep().display().to_string()
}

/// A policy directory that allows everything, for tests about other things.
pub fn allow_all_policies() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/policies/allow-all").to_string()
}

/// The `warden` binary of this build, as a command to run.
pub fn warden_cmd() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
}

/// Runs `warden check` on `text` (with the allow-all policies when it names none): whether it
/// passed, and what it printed with the file's path written `warden.toml`.
pub fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, with_policies(text)).unwrap();
    let out = warden_cmd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        all.replace(&path.display().to_string(), "warden.toml"),
    )
}

/// The config with the allow-all policies when it names none.
pub fn with_policies(text: &str) -> String {
    if text.contains("[policy]") {
        text.to_string()
    } else {
        format!("{text}\n[policy]\ndir = {:?}\n", allow_all_policies())
    }
}

/// What one POST came back with.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// Every JSON-RPC message received (one for JSON, each event for SSE).
    pub messages: Vec<Value>,
}

impl Answer {
    /// The last message: the reply.
    pub fn reply(&self) -> &Value {
        self.messages
            .last()
            .unwrap_or_else(|| panic!("no message in {self:?}"))
    }

    pub fn error_code(&self) -> Option<i64> {
        self.reply()["error"]["code"].as_i64()
    }

    pub fn text(&self) -> String {
        self.reply()["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub async fn read_answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let is_sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = r.bytes().await.unwrap();
    let messages = if is_sse {
        let mut d = warden_mcp_sse_decoder();
        d.push(&body)
            .unwrap()
            .into_iter()
            .filter_map(|e| serde_json::from_str(&e.data).ok())
            .collect()
    } else if body.is_empty() {
        Vec::new()
    } else {
        vec![
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&body) })),
        ]
    };
    Answer {
        status,
        headers,
        messages,
    }
}

fn warden_mcp_sse_decoder() -> warden_mcp::sse::Decoder {
    warden_mcp::sse::Decoder::new(1 << 24)
}

/// A legacy-era client with a session.
pub struct Legacy {
    pub http: reqwest::Client,
    pub url: String,
    pub session: String,
    /// A bearer token sent with every request.
    pub token: Option<String>,
    next: std::sync::atomic::AtomicI64,
}

impl Legacy {
    pub async fn connect(url: &str) -> Legacy {
        Legacy::connect_with(
            url,
            json!({ "elicitation": { "form": {}, "url": {} }, "sampling": {}, "roots": {} }),
        )
        .await
    }

    pub async fn connect_with(url: &str, capabilities: Value) -> Legacy {
        Legacy::open(url, capabilities, None).await
    }

    /// Connects with a bearer token.
    pub async fn connect_as(url: &str, token: &str) -> Legacy {
        let capabilities =
            json!({ "elicitation": { "form": {}, "url": {} }, "sampling": {}, "roots": {} });
        Legacy::open(url, capabilities, Some(token.to_string())).await
    }

    /// Connects with a bearer token, declaring `capabilities`.
    pub async fn connect_as_with(url: &str, token: &str, capabilities: Value) -> Legacy {
        Legacy::open(url, capabilities, Some(token.to_string())).await
    }

    async fn open(url: &str, capabilities: Value, token: Option<String>) -> Legacy {
        let http = reqwest::Client::new();
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": { "name": "test", "version": "1" } } });
        let mut r = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH);
        if let Some(t) = &token {
            r = r.bearer_auth(t);
        }
        let r = r.body(init.to_string()).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "initialize: {:?}",
            r.headers().get("www-authenticate")
        );
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let legacy = Legacy {
            http,
            url: url.to_string(),
            session,
            token,
            next: 1.into(),
        };
        let answer = legacy
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        assert_eq!(answer.status, 202);
        legacy
    }

    pub fn request(&self) -> reqwest::RequestBuilder {
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-11-25");
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn post(&self, body: &Value) -> Answer {
        read_answer(self.request().body(body.to_string()).send().await.unwrap()).await
    }

    pub async fn call(&self, method: &str, params: Value) -> Answer {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await
    }

    pub async fn tool(&self, name: &str, arguments: Value) -> Answer {
        self.call(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }
}

/// A modern-era request with the `_meta` envelope and matching headers.
pub fn modern_body(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = MODERN.into();
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

pub fn modern_request(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    modern_request_with(http, url, body, &[])
}

/// A modern request whose headers are derived from the body, except those in `overrides`
/// (a `None` value leaves the header out).
pub fn modern_request_with(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    overrides: &[(&str, Option<&str>)],
) -> reqwest::RequestBuilder {
    let mut headers = vec![
        ("content-type", Some("application/json".to_string())),
        ("accept", Some(ACCEPT_BOTH.to_string())),
        ("mcp-protocol-version", Some(MODERN.to_string())),
        ("mcp-method", body["method"].as_str().map(str::to_string)),
        (
            "mcp-name",
            body["params"]["name"]
                .as_str()
                .or(body["params"]["uri"].as_str())
                .map(str::to_string),
        ),
    ];
    for (k, v) in overrides {
        match headers.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.map(str::to_string),
            None => headers.push((k, v.map(str::to_string))),
        }
    }
    let mut r = http.post(url);
    for (k, v) in headers {
        if let Some(v) = v {
            r = r.header(k, v);
        }
    }
    r.body(body.to_string())
}

pub async fn modern(url: &str, method: &str, params: Value) -> Answer {
    let http = reqwest::Client::new();
    read_answer(
        modern_request(&http, url, &modern_body(1, method, params))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Fails the test if `f` takes longer than `limit` (a guard against hangs, not a timing test).
pub async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("the gateway did not answer in time")
}

/// The SSE events of a streaming response, as they arrive.
pub fn events(r: reqwest::Response) -> impl futures::Stream<Item = Value> {
    let mut decoder = warden_mcp_sse_decoder();
    r.bytes_stream().flat_map(move |chunk| {
        let events = chunk
            .ok()
            .and_then(|c| decoder.push(&c).ok())
            .unwrap_or_default();
        futures::stream::iter(
            events
                .into_iter()
                .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok()),
        )
    })
}
