//! The load generator's virtual clients: one keep-alive HTTP/1.1 connection each (hyper's
//! connection-level client, no pool, no extra layers), or a share of one stdio pipe to a
//! fixture child, multiplexed by JSON-RPC id the way a gateway drives a stdio server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use warden_mcp::era::Era;
use warden_mcp::headers;

use crate::wire;

/// The MCP endpoint's path, on the fixture and on Warden alike.
const MCP_PATH: &str = "/mcp";

/// One virtual client.
pub enum Caller {
    Http(Box<HttpCaller>),
    Stdio(StdioCaller),
}

impl Caller {
    /// A virtual client on a new HTTP connection to `addr`, calling `tool`.
    pub async fn http(addr: SocketAddr, era: Era, tool: &str) -> anyhow::Result<Caller> {
        Ok(Caller::Http(Box::new(
            HttpCaller::connect(addr, era, tool).await?,
        )))
    }

    /// A virtual client on a new HTTP connection to `addr`, calling `tool` with `text` (which
    /// holds [`wire::ECHO_TEXT`]).
    pub async fn http_with_text(
        addr: SocketAddr,
        era: Era,
        tool: &str,
        text: Arc<str>,
    ) -> anyhow::Result<Caller> {
        let mut caller = HttpCaller::connect(addr, era, tool).await?;
        caller.text = text;
        Ok(Caller::Http(Box::new(caller)))
    }

    /// A virtual client calling `tool` with `text`, sending `token` as its bearer token.
    pub async fn http_full(
        addr: SocketAddr,
        era: Era,
        tool: &str,
        text: Arc<str>,
        token: Option<String>,
    ) -> anyhow::Result<Caller> {
        let mut caller = HttpCaller::connect_as(addr, era, tool, token.as_deref()).await?;
        caller.text = text;
        Ok(Caller::Http(Box::new(caller)))
    }

    /// One `tools/call` of the echo tool; an error if the reply is anything but the echo.
    pub async fn call(&mut self) -> anyhow::Result<()> {
        match self {
            Caller::Http(c) => c.call().await,
            Caller::Stdio(c) => c.call().await,
        }
    }
}

/// A virtual client on its own HTTP/1.1 connection.
pub struct HttpCaller {
    sender: SendRequest<Full<Bytes>>,
    /// Headers of every POST: Host, content negotiation, version, session.
    base: HeaderMap,
    /// `base` plus the headers of a `tools/call`.
    call: HeaderMap,
    era: Era,
    tool: String,
    /// The text echoed; [`wire::ECHO_TEXT`] unless the caller was made with another.
    text: Arc<str>,
    next_id: u64,
}

impl HttpCaller {
    /// Connects and, in the legacy era, opens a session of its own.
    pub async fn connect(addr: SocketAddr, era: Era, tool: &str) -> anyhow::Result<HttpCaller> {
        HttpCaller::connect_as(addr, era, tool, None).await
    }

    /// Connects with `token` as the bearer token of every request.
    pub async fn connect_as(
        addr: SocketAddr,
        era: Era,
        tool: &str,
        token: Option<&str>,
    ) -> anyhow::Result<HttpCaller> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection task ends when `sender` is dropped or the peer closes.
        tokio::spawn(connection);
        let mut base = HeaderMap::new();
        base.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        if let Some(token) = token {
            base.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            );
        }
        base.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        base.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let mut caller = HttpCaller {
            sender,
            call: HeaderMap::new(),
            base,
            era,
            tool: tool.to_string(),
            text: Arc::from(wire::ECHO_TEXT),
            next_id: 1,
        };
        if era == Era::Legacy {
            caller.open_session().await?;
        }
        caller.base.insert(
            headers::PROTOCOL_VERSION,
            HeaderValue::from_static(wire::version(era)),
        );
        caller.call = caller.base.clone();
        for (k, v) in wire::call_headers(era, tool) {
            caller
                .call
                .insert(HeaderName::from_static(k), HeaderValue::from_str(&v)?);
        }
        Ok(caller)
    }

    async fn open_session(&mut self) -> anyhow::Result<()> {
        let base = self.base.clone();
        let (status, h, body) = self.post(base, wire::initialize_body(0)).await?;
        ensure!(
            status == StatusCode::OK,
            "initialize answered HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let session = h
            .get(headers::SESSION_ID)
            .context("initialize answered without an Mcp-Session-Id")?;
        self.base.insert(headers::SESSION_ID, session.clone());
        let mut h = self.base.clone();
        h.insert(
            headers::PROTOCOL_VERSION,
            HeaderValue::from_static(wire::version(Era::Legacy)),
        );
        let (status, _, _) = self.post(h, wire::initialized_body()).await?;
        ensure!(
            status == StatusCode::ACCEPTED,
            "notifications/initialized answered HTTP {status}"
        );
        Ok(())
    }

    async fn post(
        &mut self,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let mut request = Request::post(MCP_PATH).body(Full::new(Bytes::from(body)))?;
        *request.headers_mut() = headers;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    async fn call(&mut self) -> anyhow::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let headers = self.call.clone();
        let (status, _, body) = self
            .post(
                headers,
                wire::call_body_with(self.era, id, &self.tool, &self.text),
            )
            .await?;
        if status != StatusCode::OK || !wire::is_echo_reply(&body) {
            bail!(
                "tools/call answered HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

/// How many TCP connections the fixture at `addr` has accepted, counting the new one this
/// question is asked on (a modern `resources/read` of `fixture://stats`).
pub async fn fixture_connections(addr: SocketAddr) -> anyhow::Result<u64> {
    let mut caller = HttpCaller::connect(addr, Era::Modern, "echo").await?;
    let mut headers = caller.base.clone();
    headers.insert(headers::METHOD, HeaderValue::from_static("resources/read"));
    headers.insert(headers::NAME, HeaderValue::from_static(wire::STATS_URI));
    let (status, _, body) = caller.post(headers, wire::stats_body()).await?;
    ensure!(
        status == StatusCode::OK,
        "reading the fixture's counters: HTTP {status}"
    );
    wire::connections_in(&body).with_context(|| {
        format!(
            "the fixture's counters have no connections: {}",
            String::from_utf8_lossy(&body)
        )
    })
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>;

/// One `warden-fixture --stdio` child shared by many virtual clients.
pub struct StdioMux {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    pub pid: u32,
    /// Killed when the mux is dropped; closing stdin alone would also end it.
    _child: Child,
}

impl StdioMux {
    /// Starts the child and, for the legacy era, opens the connection with `initialize`.
    pub async fn spawn(fixture: &Path, era: Era) -> anyhow::Result<Arc<StdioMux>> {
        let mut child = Command::new(fixture)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", fixture.display()))?;
        let pid = child.id().context("the fixture exited at once")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("the fixture child has no pipes");
        };
        let (writer, mut lines) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            let mut stdin = BufWriter::new(stdin);
            while let Some(line) = lines.recv().await {
                if stdin.write_all(&line).await.is_err() || stdin.write_all(b"\n").await.is_err() {
                    return;
                }
                // Flush once nothing more is queued, so a burst costs one write.
                if lines.is_empty() && stdin.flush().await.is_err() {
                    return;
                }
            }
        });
        let pending: Pending = Arc::default();
        let replies = pending.clone();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::with_capacity(1024);
            // Ends at EOF, when the child exits.
            while stdout.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                if let Some(id) = wire::reply_id(&line) {
                    let waiter = replies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    if let Some(w) = waiter {
                        let _ = w.send(line.clone());
                    }
                }
                line.clear();
            }
        });
        let mux = Arc::new(StdioMux {
            writer,
            pending,
            next_id: AtomicU64::new(1),
            pid,
            _child: child,
        });
        if era == Era::Legacy {
            let reply = mux.request(wire::initialize_body).await?;
            ensure!(
                wire::reply_id(&reply).is_some() && reply.windows(8).any(|w| w == b"\"result\""),
                "initialize failed: {}",
                String::from_utf8_lossy(&reply)
            );
            mux.writer
                .send(wire::initialized_body())
                .context("the fixture closed its input")?;
        }
        Ok(mux)
    }

    /// Sends the request `body(id)` and waits for the reply line with that id.
    async fn request(&self, body: impl FnOnce(u64) -> Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if self.writer.send(body(id)).is_err() {
            self.forget(id);
            bail!("the fixture closed its input");
        }
        rx.await.context("the fixture exited before answering")
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// A virtual client's share of a stdio mux.
pub struct StdioCaller {
    pub mux: Arc<StdioMux>,
    pub era: Era,
}

impl StdioCaller {
    async fn call(&mut self) -> anyhow::Result<()> {
        let era = self.era;
        let reply = self
            .mux
            .request(|id| wire::call_body(era, id, "echo"))
            .await?;
        ensure!(
            wire::is_echo_reply(&reply),
            "tools/call failed: {}",
            String::from_utf8_lossy(&reply)
        );
        Ok(())
    }
}
