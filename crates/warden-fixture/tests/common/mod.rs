//! Test clients for the fixture: a modern and a legacy Streamable HTTP client, an SSE reader,
//! and a stdio client driving the built binary.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use warden_fixture::Options;
use warden_mcp::sse::Decoder;

pub const MODERN: &str = "2026-07-28";
/// Upper bound on any single wait, so a broken server fails a test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Starts an in-process fixture on a random loopback port; returns its `/mcp` URL.
pub async fn start() -> String {
    start_with(Options::default()).await
}

pub async fn start_with(options: Options) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    url
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

// ---- responses ---------------------------------------------------------------------------

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The messages of a response, read as they arrive (SSE) or all at once (JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub sse: bool,
    body: ByteStream,
    decoder: Decoder,
    queue: VecDeque<Value>,
    json_done: bool,
}

impl Reply {
    pub fn new(resp: reqwest::Response) -> Reply {
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            sse: content_type.starts_with("text/event-stream"),
            body: Box::pin(resp.bytes_stream()),
            decoder: Decoder::new(1 << 20),
            queue: VecDeque::new(),
            json_done: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next message, or `None` once the body ended.
    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(PATIENCE, self.next_inner())
            .await
            .expect("the server went quiet")
    }

    async fn next_inner(&mut self) -> Option<Value> {
        if !self.sse {
            if self.json_done {
                return None;
            }
            self.json_done = true;
            let mut bytes = Vec::new();
            while let Some(chunk) = self.body.next().await {
                bytes.extend_from_slice(&chunk.unwrap());
            }
            return (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap());
        }
        loop {
            if let Some(v) = self.queue.pop_front() {
                return Some(v);
            }
            let chunk = self.body.next().await?.ok()?;
            for event in self.decoder.push(&chunk).unwrap() {
                if !event.data.is_empty() {
                    self.queue
                        .push_back(serde_json::from_str(&event.data).unwrap());
                }
            }
        }
    }

    /// Every remaining message.
    pub async fn all(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next().await {
            out.push(v);
        }
        out
    }

    /// The last message (the response), after checking the body ended there.
    pub async fn last(&mut self) -> Value {
        self.all().await.pop().expect("an empty body")
    }
}

// ---- modern client --------------------------------------------------------------------------

/// A 2026-07-28 client: every request carries `_meta` and the mirrored headers.
pub struct Modern {
    pub http: reqwest::Client,
    pub url: String,
    pub caps: Value,
}

impl Modern {
    pub fn new(url: &str) -> Modern {
        Modern {
            http: client(),
            url: url.to_string(),
            caps: json!({}),
        }
    }

    pub fn with_caps(url: &str, caps: Value) -> Modern {
        Modern {
            caps,
            ..Modern::new(url)
        }
    }

    /// The request body with the `_meta` envelope merged into `params`.
    pub fn body(&self, id: Value, method: &str, params: Value) -> Value {
        let mut params = params;
        let meta = params
            .as_object_mut()
            .unwrap()
            .entry("_meta")
            .or_insert_with(|| json!({}));
        meta["io.modelcontextprotocol/protocolVersion"] = MODERN.into();
        meta["io.modelcontextprotocol/clientCapabilities"] = self.caps.clone();
        meta["io.modelcontextprotocol/clientInfo"] =
            json!({ "name": "fixture-tests", "version": "0" });
        json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
    }

    /// A POST with the headers a conforming client derives from the body.
    pub fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", MODERN);
        if let Some(method) = body["method"].as_str() {
            req = req.header("mcp-method", method);
            let name = match method {
                "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
                "resources/read" => body["params"]["uri"].as_str(),
                _ => None,
            };
            if let Some(name) = name {
                req = req.header("mcp-name", name);
            }
            if let Some(id) = body["params"]["arguments"]["customer_id"].as_str() {
                req = req.header("mcp-param-customerid", id);
            }
        }
        req.body(body.to_string())
    }

    pub async fn send(&self, body: &Value) -> Reply {
        Reply::new(self.post(body).send().await.unwrap())
    }

    /// Sends a request and returns its status and final message.
    pub async fn request(&self, method: &str, params: Value) -> (StatusCode, Value) {
        let mut reply = self.send(&self.body(json!(1), method, params)).await;
        (reply.status, reply.last().await)
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        let (status, msg) = self
            .request(
                "tools/call",
                json!({ "name": tool, "arguments": arguments }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{msg}");
        msg
    }
}

// ---- legacy client --------------------------------------------------------------------------

/// A 2025-era client with a session.
pub struct Legacy {
    pub http: reqwest::Client,
    pub url: String,
    pub session: String,
    pub version: String,
    next_id: std::sync::atomic::AtomicI64,
}

impl Legacy {
    pub async fn connect(url: &str, caps: Value) -> Legacy {
        Legacy::connect_version(url, caps, "2025-11-25").await
    }

    pub async fn connect_version(url: &str, caps: Value, version: &str) -> Legacy {
        let http = client();
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": caps,
            "clientInfo": { "name": "fixture-tests", "version": "0" } } });
        let resp = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        let mut reply = Reply::new(resp);
        let session = reply
            .header("mcp-session-id")
            .expect("a session id")
            .to_string();
        let result = reply.last().await;
        let version = result["result"]["protocolVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let legacy = Legacy {
            http,
            url: url.into(),
            session,
            version,
            next_id: 1.into(),
        };
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        assert_eq!(
            legacy.post(&initialized).send().await.unwrap().status(),
            StatusCode::ACCEPTED
        );
        legacy
    }

    pub fn next_id(&self) -> i64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", &self.version)
            .body(body.to_string())
    }

    pub async fn send(&self, body: &Value) -> Reply {
        Reply::new(self.post(body).send().await.unwrap())
    }

    pub fn body(&self, method: &str, params: Value) -> Value {
        json!({ "jsonrpc": "2.0", "id": self.next_id(), "method": method, "params": params })
    }

    pub async fn request(&self, method: &str, params: Value) -> Value {
        let mut reply = self.send(&self.body(method, params)).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.last().await
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.request(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        )
        .await
    }

    /// Opens the session's GET stream.
    pub async fn listen(&self) -> Reply {
        let resp = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", &self.version)
            .send()
            .await
            .unwrap();
        Reply::new(resp)
    }
}

/// The text of a tool result's first content item.
pub fn text(msg: &Value) -> &str {
    msg["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {msg}"))
}

/// Reads `fixture://stats` until `done` holds for it, or fails after a while.
pub async fn wait_for_stats(read: impl AsyncFn() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = read().await;
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never got there: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- stdio client ---------------------------------------------------------------------------

/// The fixture binary in `--stdio` mode.
pub struct StdioChild {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl StdioChild {
    pub fn spawn() -> StdioChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden-fixture"))
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        StdioChild {
            child,
            stdin,
            stdout,
        }
    }

    pub async fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next line the server wrote, as JSON; `None` at end of output.
    pub async fn recv(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("the server went quiet")
            .unwrap()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
    }

    /// Reads messages until the response to `id`, returning it and everything before it.
    pub async fn until_response(&mut self, id: &Value) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let msg = self.recv().await.expect("output ended");
            if &msg["id"] == id && msg.get("method").is_none() {
                return (before, msg);
            }
            before.push(msg);
        }
    }

    /// Sends a request and returns what came before its reply, and the reply.
    pub async fn request_collecting(
        &mut self,
        id: Value,
        method: &str,
        params: Value,
    ) -> (Vec<Value>, Value) {
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        self.until_response(&id).await
    }

    pub async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.request_collecting(id, method, params).await.1
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }
}

/// Modern `_meta` for stdio requests.
pub fn modern_meta(caps: Value) -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": caps })
}
