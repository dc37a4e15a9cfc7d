//! A stdio upstream: one child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! The child is started on first use, opened with `initialize`, and ended when it exits, when
//! its link is idle too long, or when the gateway stops. If it dies mid-call, every call in
//! flight gets an error at once (EOF on stdout or the exit, whichever is first).

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, broadcast, mpsc};
use warden_mcp::era::{Era, LATEST_LEGACY};
use warden_mcp::{Id, Message};

use super::inflight::{Inflight, dispatch};
use super::{Exchange, Link, Notice, ServerInfo, UpstreamError, UpstreamEvent};
use crate::config::StdioConfig;

/// Longest line accepted from a child before the link is ended (protects the gateway's memory).
const MAX_LINE: usize = 64 << 20;
/// How long a child may take to answer the modern-era probe before it is taken for legacy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct StdioLink {
    name: Arc<str>,
    pub(super) info: OnceLock<ServerInfo>,
    pub pid: Option<u32>,
    writer: mpsc::Sender<Vec<u8>>,
    inflight: Arc<Inflight>,
    next_id: AtomicI64,
    alive: Arc<AtomicBool>,
    child: Mutex<Option<Child>>,
}

impl StdioLink {
    /// Starts the child and completes the `initialize` handshake.
    pub async fn start(
        name: Arc<str>,
        user: Option<Arc<str>>,
        config: &StdioConfig,
        notices: broadcast::Sender<Notice>,
        handshake_timeout: Duration,
        want: Era,
    ) -> Result<Link, UpstreamError> {
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .envs(&config.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = &config.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().map_err(|e| {
            UpstreamError::Spawn(name.to_string(), format!("{}: {e}", config.command))
        })?;
        let pid = child.id();
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    return Err(UpstreamError::Spawn(
                        name.to_string(),
                        "no stdio pipes".into(),
                    ));
                }
            };
        let (writer, mut lines) = mpsc::channel::<Vec<u8>>(256);
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(mut line) = lines.recv().await {
                line.push(b'\n');
                if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let log_name = name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(upstream = %log_name, pid, stderr = %line, "upstream stderr");
            }
        });
        let link = Arc::new(StdioLink {
            name: name.clone(),
            info: OnceLock::new(),
            pid,
            writer,
            inflight: Arc::new(Inflight::default()),
            next_id: AtomicI64::new(1),
            alive: Arc::new(AtomicBool::new(true)),
            child: Mutex::new(Some(child)),
        });
        spawn_reader(Link::Stdio(link.clone()), stdout, notices, user);
        let opened = match want {
            Era::Modern => match link.discover(handshake_timeout).await {
                Ok(info) => Ok(info),
                Err(_) if link.is_alive() => link.handshake(handshake_timeout).await,
                Err(e) => Err(e),
            },
            Era::Legacy => link.handshake(handshake_timeout).await,
        };
        match opened {
            Ok(info) => {
                let _ = link.info.set(info);
            }
            Err(e) => {
                link.close().await;
                return Err(e);
            }
        }
        Ok(Link::Stdio(link))
    }

    /// Sends one request during the opening and waits for its reply.
    async fn ask(
        &self,
        method: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<Message, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rx = self.inflight.register(id);
        if let Err(e) = self
            .write(&Message::request(Id::Int(id), method, params))
            .await
        {
            // Not left behind as a call in flight: it would count as one, and `latest` could
            // pick it for the server's requests.
            self.inflight.remove(id);
            return Err(e);
        }
        let fail = |why: String| UpstreamError::Handshake(self.name.to_string(), why);
        loop {
            match tokio::time::timeout(timeout, rx.recv()).await {
                Err(_) => {
                    self.inflight.remove(id);
                    return Err(fail(format!("no answer to {method} within {timeout:?}")));
                }
                Ok(None) => return Err(fail("the process ended".into())),
                Ok(Some(UpstreamEvent::Done(m))) => return Ok(m),
                Ok(Some(_)) => continue,
            }
        }
    }

    /// Asks whether the child speaks the modern era. A legacy server answers with an error
    /// (or not at all, hence the short wait), and the same child is then opened as legacy.
    async fn discover(&self, timeout: Duration) -> Result<ServerInfo, UpstreamError> {
        let reply = self
            .ask(
                "server/discover",
                super::discover_params(),
                timeout.min(PROBE_TIMEOUT),
            )
            .await?;
        super::server_info_from_discover(&self.name, &reply)
    }

    async fn handshake(&self, timeout: Duration) -> Result<ServerInfo, UpstreamError> {
        let params = json!({
            "protocolVersion": LATEST_LEGACY,
            "capabilities": super::gateway_client_capabilities(),
            "clientInfo": super::gateway_client_info(),
        });
        let reply = self.ask("initialize", params, timeout).await?;
        let fail = |why: String| UpstreamError::Handshake(self.name.to_string(), why);
        let Some(result) = reply.result() else {
            let why = reply
                .rpc_error()
                .map_or_else(|| "no result".to_string(), |e| e.to_string());
            return Err(fail(why));
        };
        let info = super::server_info_from_initialize(result);
        self.write(&Message::notification(
            "notifications/initialized",
            json!({}),
        ))
        .await?;
        Ok(info)
    }

    async fn write(&self, msg: &Message) -> Result<(), UpstreamError> {
        tracing::debug!(upstream = %self.name, kind = ?msg.kind(), method = msg.method(), "to upstream");
        self.writer
            .send(msg.to_bytes())
            .await
            .map_err(|_| UpstreamError::Gone(self.name.to_string()))
    }

    pub(super) async fn call(
        &self,
        link: Link,
        mut msg: Message,
        client_capabilities: &serde_json::Value,
    ) -> Result<Exchange, UpstreamError> {
        if !self.is_alive() {
            return Err(UpstreamError::Gone(self.name.to_string()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        super::prepare_request(&mut msg, id);
        let era = self.info.get().map_or(Era::Legacy, |i| i.era);
        super::shape_for(era, &mut msg, client_capabilities);
        let events = self.inflight.register(id);
        if let Err(e) = self.write(&msg).await {
            self.inflight.remove(id);
            return Err(e);
        }
        Ok(Exchange::routed(link, id, events))
    }

    pub(super) async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        self.write(&msg).await
    }

    pub(super) fn cancel(&self, upstream_id: i64, reason: &str) {
        if self.inflight.remove(upstream_id).is_some() {
            let note = Message::notification(
                "notifications/cancelled",
                json!({ "requestId": upstream_id, "reason": reason }),
            );
            let _ = self.writer.try_send(note.to_bytes());
        }
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn calls_in_flight(&self) -> usize {
        self.inflight.len()
    }

    pub(super) async fn close(&self) {
        self.alive.store(false, Ordering::Release);
        if let Some(mut child) = self.child.lock().await.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

fn spawn_reader(
    link: Link,
    stdout: tokio::process::ChildStdout,
    notices: broadcast::Sender<Notice>,
    user: Option<Arc<str>>,
) {
    let Link::Stdio(this) = &link else { return };
    let (inflight, name) = (this.inflight.clone(), this.name.clone());
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(64 << 10, stdout);
        let mut line = Vec::with_capacity(4096);
        let why = loop {
            line.clear();
            match (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) => break "the process closed its output".to_string(),
                Ok(_) if line.len() > MAX_LINE => {
                    break format!("the process wrote a line over {MAX_LINE} bytes");
                }
                Ok(_) => {}
                Err(e) => break format!("reading its output failed: {e}"),
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match Message::parse(text) {
                Ok(msg) => dispatch(&link, &inflight, &notices, &name, &user, msg).await,
                Err(e) => {
                    tracing::warn!(upstream = %name, error = %e, "upstream wrote a line that is not JSON-RPC")
                }
            }
        };
        tracing::warn!(upstream = %name, reason = %why, "stdio upstream ended");
        let error = UpstreamError::Ended(name.to_string(), why.to_string());
        if let Link::Stdio(l) = &link {
            l.alive.store(false, Ordering::Release);
            inflight.fail_all(&error).await;
            l.close().await;
        }
    });
}
