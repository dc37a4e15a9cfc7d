//! A Streamable HTTP upstream of either era.
//!
//! Legacy: Warden opens one upstream session with `initialize`, sends its `Mcp-Session-Id`
//! and `MCP-Protocol-Version` on every request, listens on the GET stream for messages outside
//! any call, cancels with `notifications/cancelled` and ends the session with DELETE.
//! Modern: every request is self-contained (`_meta` carries the version and the calling client's
//! capabilities, `Mcp-Method`/`Mcp-Name` repeat the body); cancelling closes the response stream.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use warden_mcp::era::{Era, LATEST_LEGACY, MODERN_VERSION};
use warden_mcp::{Id, Kind, Message, headers, sse};

use super::client::{Client, ClientError, Reply, next_chunk};
use super::inflight::{Inflight, dispatch};
use super::{Exchange, Link, Notice, ServerInfo, ServerRequest, UpstreamError, UpstreamEvent};
use crate::config::{EraPreference, HttpConfig};
use crate::header_names;

/// The largest reply (or SSE line) Warden reads from an upstream.
const MAX_REPLY: usize = 64 << 20;

#[derive(Debug)]
pub struct HttpLink {
    name: Arc<str>,
    client: Arc<Client>,
    /// What every request on the link carries, made once when it opens ([`call_headers`]).
    call_headers: HeaderMap,
    /// The user's own token at the service, for an upstream with `oauth`: read on every
    /// request, so a refreshed token is used at once.
    bearer: Option<Arc<crate::connections::Bearer>>,
    /// The account's epoch when the link opened (see `Bearer::epoch`).
    epoch: u64,
    pub(super) info: ServerInfo,
    session: Option<HeaderValue>,
    /// Legacy calls, so that what the GET stream says about one of them reaches it.
    inflight: Arc<Inflight>,
    next_id: AtomicI64,
    alive: AtomicBool,
    me: OnceLock<std::sync::Weak<HttpLink>>,
}

impl HttpLink {
    pub async fn start(
        name: Arc<str>,
        user: Option<Arc<str>>,
        config: &HttpConfig,
        client: Arc<Client>,
        notices: broadcast::Sender<Notice>,
        want: Era,
        bearer: Option<Arc<crate::connections::Bearer>>,
    ) -> Result<Link, UpstreamError> {
        let mut base_headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) else {
                return Err(UpstreamError::Handshake(
                    name.to_string(),
                    format!("header {k:?} is not a valid HTTP header"),
                ));
            };
            let mut v = v;
            // Kept out of debug output and HPACK tables: it may hold a vault secret.
            v.set_sensitive(true);
            base_headers.insert(k, v);
        }
        base_headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        base_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut opening = base_headers.clone();
        if let Some(token) = bearer.as_ref().and_then(|b| b.header()) {
            opening.insert(http::header::AUTHORIZATION, token);
        }
        let opener = Opener {
            name: &name,
            client: &client,
            headers: &opening,
        };
        let modern = match (config.era, want) {
            (EraPreference::Legacy, _) => None,
            (EraPreference::Modern, _) => Some(opener.discover().await?),
            (EraPreference::Auto, Era::Modern) => opener.discover().await.ok(),
            (EraPreference::Auto, Era::Legacy) => None,
        };
        let (info, session) = match modern {
            Some(info) => (info, None),
            None => opener.initialize().await?,
        };
        let call_headers = call_headers(&base_headers, &client, &info, session.as_ref());
        let link = Arc::new(HttpLink {
            name: name.clone(),
            client,
            call_headers,
            epoch: bearer.as_ref().map_or(0, |b| b.epoch()),
            bearer,
            info,
            session,
            inflight: Arc::new(Inflight::default()),
            next_id: AtomicI64::new(1),
            alive: AtomicBool::new(true),
            me: OnceLock::new(),
        });
        let _ = link.me.set(Arc::downgrade(&link));
        if link.info.era == Era::Legacy {
            let note = Message::notification("notifications/initialized", json!({}));
            link.send(note).await.ok();
            spawn_get_stream(Arc::downgrade(&link), notices, user);
        }
        Ok(Link::Http(link))
    }

    /// The headers of a request on this link: what every call carries, the user's current token
    /// when the upstream needs one, and the routing headers of `msg`. The map is a clone of one
    /// made when the link opened, whose routing headers are placeholders set here: setting a
    /// header that is there costs what adding it costs, without the map growing (a clone has
    /// room for what it holds and no more).
    fn headers_for(&self, msg: &Message) -> HeaderMap {
        let mut h = self.call_headers.clone();
        if let Some(token) = self.bearer.as_ref().and_then(|b| b.header()) {
            h.insert(http::header::AUTHORIZATION, token);
        }
        if self.info.era == Era::Modern {
            let method = msg.method().and_then(|m| HeaderValue::from_str(m).ok());
            let name = headers::expected_name(msg).and_then(|n| HeaderValue::from_str(n).ok());
            for (header, value) in [(header_names::METHOD, method), (header_names::NAME, name)] {
                match value {
                    Some(v) => _ = h.insert(header, v),
                    None => _ = h.remove(header),
                }
            }
        }
        h
    }

    /// A request with headers from [`HttpLink::headers_for`] (they hold `Host`), its body's
    /// length set in their placeholder for it. Set here, hyper does not add it to a map that
    /// has no room left.
    fn request(
        &self,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> http::Request<Full<Bytes>> {
        if body.is_empty() {
            headers.remove(CONTENT_LENGTH);
        } else {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        self.client.target().request_as(method, headers, body)
    }

    fn unreachable(&self, e: &ClientError) -> UpstreamError {
        UpstreamError::Unreachable(self.name.to_string(), e.to_string())
    }

    pub(super) async fn call(
        &self,
        link: Link,
        mut msg: Message,
        client_capabilities: &Value,
        param_headers: &[(String, String)],
    ) -> Result<Exchange, UpstreamError> {
        let Link::Http(this) = &link else {
            return Err(UpstreamError::Gone(self.name.to_string()));
        };
        if !self.is_alive() {
            return Err(UpstreamError::Gone(self.name.to_string()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        super::prepare_request(&mut msg, id);
        super::shape_for(self.info.era, &mut msg, client_capabilities);
        let mut headers = self.headers_for(&msg);
        if self.info.era == Era::Modern {
            for (k, v) in param_headers {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::try_from(k.as_str()),
                    HeaderValue::try_from(v.as_str()),
                ) {
                    headers.insert(k, v);
                }
            }
        }
        let side = (self.info.era == Era::Legacy).then(|| self.inflight.register(id));
        let request = self.request(Method::POST, headers, msg.to_bytes().into());
        // Boxed: the stream moves its state into each step's future and back out of it.
        let reader = Box::new(Reader {
            link: this.clone(),
            id,
            stage: Stage::Send(request),
            queued: std::collections::VecDeque::new(),
        });
        let events = stream::unfold(reader, Reader::next).boxed();
        Ok(Exchange::http(link, id, events, side))
    }

    /// Sends a notification or an answer to a server request.
    pub(super) async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        let headers = self.headers_for(&msg);
        let request = self.request(Method::POST, headers, msg.to_bytes().into());
        let r = self.exchange(request, Duration::from_secs(30)).await?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Status(
                self.name.to_string(),
                r.status().as_u16(),
            ))
        }
    }

    /// One request whose reply is read whole (and discarded), within `limit`.
    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
        limit: Duration,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let response = self.client.fetch(request, MAX_REPLY, limit).await;
        let response = response.map_err(|e| self.unreachable(&e))?;
        Ok(response.map(Result::unwrap_or_default))
    }

    pub(super) fn cancel(&self, upstream_id: i64, reason: &str) {
        tracing::debug!(upstream = %self.name, upstream_id, reason, "cancelling upstream call");
        // The call's reply is dropped with its exchange, which closes its connection: that
        // is how a modern upstream learns of it.
        self.inflight.remove(upstream_id);
        if self.info.era == Era::Legacy {
            let note = Message::notification(
                "notifications/cancelled",
                json!({ "requestId": upstream_id, "reason": reason }),
            );
            if let Some(me) = self.me.get().and_then(std::sync::Weak::upgrade) {
                tokio::spawn(async move {
                    let _ = me.send(note).await;
                });
            }
        }
    }

    /// A call ended with its reply.
    pub(super) fn finished(&self, upstream_id: i64) {
        if self.info.era == Era::Legacy {
            self.inflight.remove(upstream_id);
        }
    }

    /// Alive, and — for a user's own account — still under the account it opened with.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) && !self.superseded()
    }

    pub fn superseded(&self) -> bool {
        self.bearer
            .as_ref()
            .is_some_and(|b| b.epoch() != self.epoch)
    }

    pub(super) async fn close(&self) {
        self.alive.store(false, Ordering::Release);
        if self.session.is_some() {
            // A legacy link's headers: the session's among them, and no routing headers.
            let mut headers = self.headers_for(&Message::notification("", json!({})));
            headers.remove(CONTENT_TYPE);
            let request = self.request(Method::DELETE, headers, Bytes::new());
            let _ = self.exchange(request, Duration::from_secs(5)).await;
        }
    }
}

/// Reads the reply to one call: a JSON body, or an event stream whose messages before the reply
/// are the call's notifications and server requests.
struct Reader {
    link: Arc<HttpLink>,
    id: i64,
    stage: Stage,
    queued: std::collections::VecDeque<UpstreamEvent>,
}

enum Stage {
    Send(http::Request<Full<Bytes>>),
    Json(StatusCode, Reply),
    Events(Reply, sse::Decoder),
    Over,
}

impl Reader {
    async fn next(mut self: Box<Self>) -> Option<(UpstreamEvent, Box<Reader>)> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some((event, self));
            }
            match std::mem::replace(&mut self.stage, Stage::Over) {
                Stage::Send(request) => match self.link.client.send(request).await {
                    Ok(response) => self.stage = self.reading(response),
                    Err(e) => {
                        let e = self.link.unreachable(&e);
                        return Some((self.fail(e), self));
                    }
                },
                Stage::Json(status, reply) => {
                    let body = reply.bytes(MAX_REPLY).await.unwrap_or_default();
                    let session_lost =
                        self.link.info.era == Era::Legacy && status == StatusCode::NOT_FOUND;
                    let event = match Message::parse(&body) {
                        Ok(m) if m.is_reply() && !session_lost => self.done(m),
                        _ => {
                            let e = self.not_a_reply(status, session_lost);
                            self.fail(e)
                        }
                    };
                    return Some((event, self));
                }
                Stage::Events(mut reply, mut decoder) => {
                    let Some(Ok(chunk)) = next_chunk(&mut reply).await else {
                        let e = UpstreamError::ClosedStream(self.link.name.to_string());
                        return Some((self.fail(e), self));
                    };
                    let Ok(events) = decoder.push(&chunk) else {
                        continue;
                    };
                    for event in events {
                        if let Some(e) = self.event(event.data.as_bytes()) {
                            self.queued.push_back(e);
                        }
                    }
                    if matches!(self.queued.back(), Some(UpstreamEvent::Done(_))) {
                        finish_body(reply);
                    } else {
                        self.stage = Stage::Events(reply, decoder);
                    }
                }
                Stage::Over => return None,
            }
        }
    }

    fn reading(&self, response: Response<Reply>) -> Stage {
        let (parts, reply) = response.into_parts();
        if is_event_stream(&parts.headers) && parts.status.is_success() {
            Stage::Events(reply, sse::Decoder::new(MAX_REPLY))
        } else {
            Stage::Json(parts.status, reply)
        }
    }

    /// What one SSE event of the call's stream means for the call.
    fn event(&self, data: &[u8]) -> Option<UpstreamEvent> {
        let msg = Message::parse(data).ok()?;
        match msg.kind() {
            Kind::Response | Kind::Error if msg.id() == Some(Id::Int(self.id)) => {
                Some(UpstreamEvent::Done(msg))
            }
            Kind::Response | Kind::Error => None,
            Kind::Notification => Some(UpstreamEvent::Notification(msg)),
            Kind::Request => {
                let upstream_id = msg.id()?;
                Some(UpstreamEvent::Request(ServerRequest {
                    msg,
                    link: Link::Http(self.link.clone()),
                    upstream_id,
                }))
            }
        }
    }

    fn not_a_reply(&self, status: StatusCode, session_lost: bool) -> UpstreamError {
        let name = self.link.name.to_string();
        if session_lost {
            // The upstream forgot Warden's session: this link is over.
            self.link.alive.store(false, Ordering::Release);
            UpstreamError::SessionLost(name)
        } else {
            UpstreamError::NoReply(name, status.as_u16())
        }
    }

    fn done(&mut self, msg: Message) -> UpstreamEvent {
        self.stage = Stage::Over;
        UpstreamEvent::Done(msg)
    }

    /// The call ends with `error` instead of the upstream's reply.
    fn fail(&mut self, error: UpstreamError) -> UpstreamEvent {
        self.stage = Stage::Over;
        UpstreamEvent::Failed(error)
    }
}

/// How long the rest of an event stream is read after the call's reply came in.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Reads what is left of an event stream whose reply has been read, so that its connection goes
/// back to the pool instead of being closed: servers built on the official SDKs (and `rmcp`)
/// answer legacy calls with a stream that ends right after the reply, and closing it would cost
/// a new connection per call. Most of the time the end is already here; otherwise a task waits a
/// little for it.
fn finish_body(mut reply: Reply) {
    use futures::FutureExt as _;
    loop {
        match next_chunk(&mut reply).now_or_never() {
            Some(Some(Ok(_))) => {}
            Some(Some(Err(_)) | None) => return,
            None => break,
        }
    }
    tokio::spawn(async move {
        let rest = async { while let Some(Ok(_)) = next_chunk(&mut reply).await {} };
        let _ = tokio::time::timeout(DRAIN_LIMIT, rest).await;
    });
}

/// Whether a reply's body is an event stream rather than one JSON message.
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// What every call's request on a link carries, in the order it is sent: the configured
/// headers, `Accept` and `Content-Type`, the protocol version, the session (legacy), `Host`,
/// and placeholders: for `Content-Length`, which [`HttpLink::request`] sets or removes, and
/// (modern) for `Mcp-Method` and `Mcp-Name`, which [`HttpLink::headers_for`] sets or removes.
fn call_headers(
    base: &HeaderMap,
    client: &Client,
    info: &ServerInfo,
    session: Option<&HeaderValue>,
) -> HeaderMap {
    let modern = info.era == Era::Modern;
    let mut h = HeaderMap::with_capacity(base.len() + 5);
    h.extend(base.iter().map(|(k, v)| (k.clone(), v.clone())));
    let version = if modern {
        HeaderValue::from_static(MODERN_VERSION)
    } else {
        HeaderValue::from_str(&info.protocol_version)
            .unwrap_or(HeaderValue::from_static(LATEST_LEGACY))
    };
    h.insert(header_names::PROTOCOL_VERSION, version);
    if let Some(s) = session {
        h.insert(header_names::SESSION_ID, s.clone());
    }
    h.insert(http::header::HOST, client.target().host_header());
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    if modern {
        h.insert(header_names::METHOD, HeaderValue::from_static(""));
        h.insert(header_names::NAME, HeaderValue::from_static(""));
    }
    h
}

/// Listens on a legacy session's GET stream while the link lives, reconnecting with backoff.
fn spawn_get_stream(
    link: std::sync::Weak<HttpLink>,
    notices: broadcast::Sender<Notice>,
    user: Option<Arc<str>>,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            let Some(this) = link.upgrade().filter(|l| l.is_alive()) else {
                return;
            };
            let mut headers = this.headers_for(&Message::notification("", json!({})));
            headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
            headers.remove(CONTENT_TYPE);
            let request = this.request(Method::GET, headers, Bytes::new());
            let response = this.client.send(request).await;
            let (name, wrapped) = (this.name.clone(), Link::Http(this.clone()));
            let inflight = this.inflight.clone();
            drop(this);
            match response {
                Ok(r) if r.status().is_success() => {
                    backoff = Duration::from_millis(250);
                    let mut decoder = sse::Decoder::new(MAX_REPLY);
                    let mut body = r.into_body();
                    while let Some(Ok(chunk)) = next_chunk(&mut body).await {
                        let Ok(events) = decoder.push(&chunk) else {
                            break;
                        };
                        for event in events {
                            if let Ok(msg) = Message::parse(event.data.as_bytes()) {
                                dispatch(&wrapped, &inflight, &notices, &name, &user, msg).await;
                            }
                        }
                    }
                }
                // The server offers no GET stream; nothing to listen to.
                Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                _ => {}
            }
            drop(wrapped);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
}

/// The opening handshake, before a link exists.
struct Opener<'a> {
    name: &'a Arc<str>,
    client: &'a Arc<Client>,
    headers: &'a HeaderMap,
}

impl Opener<'_> {
    async fn exchange(
        &self,
        msg: &Message,
        extra: HeaderMap,
    ) -> Result<(Message, HeaderMap), UpstreamError> {
        let fail = |why: String| UpstreamError::Handshake(self.name.to_string(), why);
        let mut headers = self.headers.clone();
        headers.extend(extra);
        let request =
            self.client
                .target()
                .request(Method::POST, headers, Bytes::from(msg.to_bytes()));
        let limit = Duration::from_secs(30);
        let (parts, body) = match self.client.fetch(request, MAX_REPLY, limit).await {
            Ok(response) => response.into_parts(),
            Err(ClientError::Timeout(_)) => return Err(fail("no answer within 30s".into())),
            Err(e) => {
                return Err(UpstreamError::Unreachable(
                    self.name.to_string(),
                    e.to_string(),
                ));
            }
        };
        let body = body.map_err(fail)?;
        let (status, headers) = (parts.status, parts.headers);
        let reply = if is_event_stream(&headers) {
            let mut decoder = sse::Decoder::new(MAX_REPLY);
            let events = decoder.push(&body).map_err(|e| fail(e.to_string()))?;
            events
                .into_iter()
                .filter_map(|e| Message::parse(e.data.as_bytes()).ok())
                .find(Message::is_reply)
        } else {
            Message::parse(&body).ok()
        };
        match reply {
            Some(m) if status.is_success() => Ok((m, headers)),
            Some(m) => Err(fail(format!(
                "HTTP {}: {}",
                status.as_u16(),
                m.rpc_error().map(|e| e.to_string()).unwrap_or_default()
            ))),
            None => Err(fail(format!(
                "HTTP {} without a JSON-RPC reply",
                status.as_u16()
            ))),
        }
    }

    async fn discover(&self) -> Result<ServerInfo, UpstreamError> {
        let msg = Message::request(Id::Int(0), "server/discover", super::discover_params());
        let mut extra = HeaderMap::new();
        extra.insert(
            header_names::PROTOCOL_VERSION,
            HeaderValue::from_static(MODERN_VERSION),
        );
        extra.insert(
            header_names::METHOD,
            HeaderValue::from_static("server/discover"),
        );
        let (reply, _) = self.exchange(&msg, extra).await?;
        super::server_info_from_discover(self.name, &reply)
    }

    async fn initialize(&self) -> Result<(ServerInfo, Option<HeaderValue>), UpstreamError> {
        let params = json!({
            "protocolVersion": LATEST_LEGACY,
            "capabilities": super::gateway_client_capabilities(),
            "clientInfo": super::gateway_client_info(),
        });
        let msg = Message::request(Id::Int(0), "initialize", params);
        let (reply, headers) = self.exchange(&msg, HeaderMap::new()).await?;
        let result = reply.result().ok_or_else(|| {
            UpstreamError::Handshake(
                self.name.to_string(),
                reply.rpc_error().map(|e| e.to_string()).unwrap_or_default(),
            )
        })?;
        let session = headers.get(header_names::SESSION_ID).cloned();
        Ok((super::server_info_from_initialize(result), session))
    }
}
