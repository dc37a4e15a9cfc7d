//! Upstream MCP servers: stdio child processes and Streamable HTTP servers of either era.
//!
//! A [`Link`] is one live conversation with one server (one child process, or one upstream
//! session). Calls on it become [`Exchange`]s. Messages a server sends outside any call
//! (list changes, resource updates) become [`Notice`]s for the gateway to fan out.

mod client;
mod events;
mod exchange;
mod http;
mod inflight;
mod pool;
mod stdio;

use std::sync::Arc;

use serde_json::{Value, json};
use warden_mcp::Message;
use warden_mcp::era::{
    Era, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION, MODERN_VERSION,
};
use warden_mcp::member::Members;

pub use client::Target;
pub use exchange::{Exchange, ServerRequest, UpstreamEvent};
pub use pool::{Pool, PoolStats};

static UNKNOWN: std::sync::LazyLock<ServerInfo> = std::sync::LazyLock::new(|| ServerInfo {
    era: Era::Legacy,
    protocol_version: String::new(),
    capabilities: json!({}),
    server_info: json!({}),
    instructions: None,
});

/// A message an upstream sent outside any call, for every session that uses it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub upstream: Arc<str>,
    /// The user whose private link sent it; `None` for a shared link.
    pub user: Option<Arc<str>>,
    pub msg: Message,
}

/// What the upstream said about itself when the link was opened.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub era: Era,
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
}

/// Why an upstream could not serve a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {0:?} could not be started: {1}")]
    Spawn(String, String),
    #[error("upstream {0:?} did not complete the opening handshake: {1}")]
    Handshake(String, String),
    #[error("upstream {0:?} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("upstream {0:?} answered with HTTP {1}")]
    Status(String, u16),
    #[error("upstream {0:?} went away")]
    Gone(String),
    #[error("upstream {0:?} ended during the call: {1}")]
    Ended(String, String),
    #[error("upstream {0:?} closed the stream before answering")]
    ClosedStream(String),
    #[error("upstream {0:?} no longer knows Warden's session; the next call opens a new one")]
    SessionLost(String),
    #[error("upstream {0:?} answered HTTP {1} without a JSON-RPC reply")]
    NoReply(String, u16),
    #[error("the upstream link closed during the call")]
    LinkClosed,
}

/// One live conversation with an upstream server.
#[derive(Clone, Debug)]
pub enum Link {
    Stdio(Arc<stdio::StdioLink>),
    Http(Arc<http::HttpLink>),
}

impl Link {
    /// Starts a call. `client_capabilities` is what the calling client declared; modern
    /// upstreams receive it with every request.
    pub async fn call(
        &self,
        msg: Message,
        client_capabilities: &Value,
    ) -> Result<Exchange, UpstreamError> {
        self.call_with(msg, client_capabilities, &[]).await
    }

    /// A call that also carries `Mcp-Param-*` headers to a modern HTTP upstream.
    pub async fn call_with(
        &self,
        msg: Message,
        client_capabilities: &Value,
        param_headers: &[(String, String)],
    ) -> Result<Exchange, UpstreamError> {
        match self {
            Link::Stdio(l) => l.call(self.clone(), msg, client_capabilities).await,
            Link::Http(l) => {
                l.call(self.clone(), msg, client_capabilities, param_headers)
                    .await
            }
        }
    }

    /// Sends a notification or an answer to a server request.
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        match self {
            Link::Stdio(l) => l.send(msg).await,
            Link::Http(l) => l.send(msg).await,
        }
    }

    pub(crate) fn cancel(&self, upstream_id: i64, reason: &str) {
        match self {
            Link::Stdio(l) => l.cancel(upstream_id, reason),
            Link::Http(l) => l.cancel(upstream_id, reason),
        }
    }

    /// A call ended with its reply.
    fn finished(&self, upstream_id: i64) {
        if let Link::Http(l) = self {
            l.finished(upstream_id);
        }
    }

    pub fn is_alive(&self) -> bool {
        match self {
            Link::Stdio(l) => l.is_alive(),
            Link::Http(l) => l.is_alive(),
        }
    }

    /// Opened under a user's account that has since been disconnected or replaced.
    pub fn superseded(&self) -> bool {
        match self {
            Link::Stdio(_) => false,
            Link::Http(l) => l.superseded(),
        }
    }

    pub fn info(&self) -> &ServerInfo {
        match self {
            // A stdio link is handed out only after its handshake filled this in.
            Link::Stdio(l) => l.info.get().unwrap_or(&UNKNOWN),
            Link::Http(l) => &l.info,
        }
    }

    /// Ends the link: kills the child or ends the upstream session.
    pub async fn close(&self) {
        match self {
            Link::Stdio(l) => l.close().await,
            Link::Http(l) => l.close().await,
        }
    }
}

/// The capabilities Warden declares to upstreams of the legacy era: it can relay elicitation
/// (both modes), sampling and roots to clients that support them.
pub fn gateway_client_capabilities() -> Value {
    json!({
        "elicitation": { "form": {}, "url": {} },
        "sampling": {},
        "roots": { "listChanged": true }
    })
}

pub fn gateway_client_info() -> Value {
    json!({ "name": "warden", "version": env!("CARGO_PKG_VERSION") })
}

/// The params of a `server/discover` probe.
fn discover_params() -> Value {
    json!({ "_meta": {
        META_PROTOCOL_VERSION: MODERN_VERSION,
        META_CLIENT_CAPABILITIES: gateway_client_capabilities(),
        META_CLIENT_INFO: gateway_client_info(),
    }})
}

/// Reads a `server/discover` reply; anything but a result offering the modern version means
/// the server is not modern.
fn server_info_from_discover(name: &str, reply: &Message) -> Result<ServerInfo, UpstreamError> {
    let not_modern = |why: &str| UpstreamError::Handshake(name.to_string(), why.to_string());
    let result = reply
        .result()
        .ok_or_else(|| not_modern("server/discover was refused"))?;
    let offers_modern = result["supportedVersions"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(MODERN_VERSION)));
    if !offers_modern {
        return Err(not_modern("the server does not offer 2026-07-28"));
    }
    let server_info = result
        .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
        .or_else(|| result.get("serverInfo"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    Ok(ServerInfo {
        era: Era::Modern,
        protocol_version: MODERN_VERSION.into(),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        server_info,
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Gives a request the link's own id, and its progress token (if the client asked for progress)
/// the same value, so progress from a shared link finds its call.
fn prepare_request(msg: &mut Message, id: i64) {
    msg.set_id(&warden_mcp::Id::Int(id));
    if msg.meta_has("progressToken")
        && let Some(meta) = msg
            .params_mut()
            .member_mut("_meta")
            .and_then(Value::as_object_mut)
        && let Some(token) = meta.member_mut("progressToken")
    {
        *token = id.into();
    }
}

/// Makes a request self-contained for a modern upstream: version and capabilities in `_meta`.
/// A modern client's own `_meta` is kept; a legacy client's session capabilities are added.
fn modernize(msg: &mut Message, client_capabilities: &Value) {
    // A modern client's request, the usual case, is left as it is (its `_meta` as text).
    if msg.meta_str(META_PROTOCOL_VERSION) == Some(MODERN_VERSION)
        && msg.meta_has(META_CLIENT_CAPABILITIES)
        && msg.meta_has(META_CLIENT_INFO)
    {
        return;
    }
    let params = msg.params_mut();
    if !params.has_member("_meta") {
        params.insert("_meta".into(), json!({}));
    }
    // Keys are only made (a `String` each) for what is missing: a modern client's request
    // usually carries all three already.
    if let Some(meta) = params.member_mut("_meta").and_then(Value::as_object_mut) {
        if meta.member(META_PROTOCOL_VERSION).and_then(Value::as_str) != Some(MODERN_VERSION) {
            meta.insert(META_PROTOCOL_VERSION.into(), MODERN_VERSION.into());
        }
        if !meta.has_member(META_CLIENT_CAPABILITIES) {
            meta.insert(META_CLIENT_CAPABILITIES.into(), client_capabilities.clone());
        }
        if !meta.has_member(META_CLIENT_INFO) {
            meta.insert(META_CLIENT_INFO.into(), gateway_client_info());
        }
    }
}

/// Makes a request fit a legacy link: the modern era's envelope keys are removed from `_meta`
/// (a server that speaks both eras would otherwise take the request for a modern one).
fn legacyize(msg: &mut Message) {
    if !msg.meta_has_key(|k| k.starts_with("io.modelcontextprotocol/")) {
        return;
    }
    let params = msg.params_mut();
    let Some(meta) = params.member_mut("_meta").and_then(Value::as_object_mut) else {
        return;
    };
    meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
    if meta.is_empty() {
        params.remove("_meta");
    }
}

/// Shapes a request for the era of the link that carries it.
fn shape_for(era: Era, msg: &mut Message, client_capabilities: &Value) {
    match era {
        Era::Modern => modernize(msg, client_capabilities),
        Era::Legacy => legacyize(msg),
    }
}

/// Reads what an `initialize` result says about the server.
fn server_info_from_initialize(result: &Value) -> ServerInfo {
    ServerInfo {
        era: Era::Legacy,
        protocol_version: result["protocolVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        server_info: result
            .get("serverInfo")
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}
