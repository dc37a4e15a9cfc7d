//! A Streamable HTTP upstream of either era.
//!
//! Legacy: Warden opens one upstream session with `initialize`, sends its `Mcp-Session-Id`
//! and `MCP-Protocol-Version` on every request, listens on the GET stream for messages outside
//! any call, cancels with `notifications/cancelled` and ends the session with DELETE.
//! Modern: every request is self-contained (`_meta` carries the version and the calling client's
//! capabilities, `Mcp-Method`/`Mcp-Name` repeat the body); cancelling closes the response stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;
use warden_mcp::era::{Era, LATEST_LEGACY, MODERN_VERSION};
use warden_mcp::{Id, Kind, Message, RpcError, codes, headers, sse};

use super::inflight::{Inflight, dispatch};
use super::{Exchange, Link, Notice, ServerInfo, ServerRequest, UpstreamError, UpstreamEvent};
use crate::config::{EraPreference, HttpConfig};

const MAX_SSE_LINE: usize = 64 << 20;

#[derive(Debug)]
pub struct HttpLink {
    name: Arc<str>,
    client: reqwest::Client,
    /// Parsed once: parsing it again for every call cost about 4% of Warden's CPU per call.
    url: reqwest::Url,
    base_headers: HeaderMap,
    pub(super) info: ServerInfo,
    session: Option<String>,
    inflight: Arc<Inflight>,
    streams: Mutex<HashMap<i64, AbortHandle>>,
    next_id: AtomicI64,
    alive: AtomicBool,
    me: OnceLock<std::sync::Weak<HttpLink>>,
}

impl HttpLink {
    pub async fn start(
        name: Arc<str>,
        user: Option<Arc<str>>,
        config: &HttpConfig,
        client: reqwest::Client,
        notices: broadcast::Sender<Notice>,
        want: Era,
    ) -> Result<Link, UpstreamError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| {
            UpstreamError::Handshake(name.to_string(), format!("the url is not valid: {e}"))
        })?;
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
            base_headers.insert(k, v);
        }
        base_headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        base_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let opener = Opener {
            name: &name,
            client: &client,
            url: &config.url,
            headers: &base_headers,
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
        let link = Arc::new(HttpLink {
            name: name.clone(),
            client,
            url,
            base_headers,
            info,
            session,
            inflight: Arc::new(Inflight::default()),
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            alive: AtomicBool::new(true),
            me: OnceLock::new(),
        });
        let _ = link.me.set(Arc::downgrade(&link));
        if link.info.era == Era::Legacy {
            link.post(
                &Message::notification("notifications/initialized", json!({})),
                None,
                HeaderMap::new(),
            )
            .await
            .ok();
            spawn_get_stream(Arc::downgrade(&link), notices, user);
        }
        Ok(Link::Http(link))
    }

    fn headers_for(&self, msg: &Message) -> HeaderMap {
        let mut h = self.base_headers.clone();
        let version = if self.info.era == Era::Modern {
            MODERN_VERSION
        } else {
            self.info.protocol_version.as_str()
        };
        if let Ok(v) = HeaderValue::from_str(version) {
            h.insert(headers::PROTOCOL_VERSION, v);
        }
        if let Some(s) = self
            .session
            .as_deref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            h.insert(headers::SESSION_ID, s);
        }
        if self.info.era == Era::Modern {
            if let Some(v) = msg.method().and_then(|m| HeaderValue::from_str(m).ok()) {
                h.insert(headers::METHOD, v);
            }
            if let Some(v) = headers::expected_name(msg).and_then(|n| HeaderValue::from_str(n).ok())
            {
                h.insert(headers::NAME, v);
            }
        }
        h
    }

    async fn post(
        &self,
        msg: &Message,
        timeout: Option<Duration>,
        extra: HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers_for(msg))
            .headers(extra)
            .body(msg.to_bytes());
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req.send().await.map_err(|e| {
            UpstreamError::Unreachable(self.name.to_string(), e.without_url().to_string())
        })
    }

    pub(super) async fn call(
        &self,
        link: Link,
        mut msg: Message,
        client_capabilities: &Value,
        param_headers: &[(String, String)],
    ) -> Result<Exchange, UpstreamError> {
        if !self.is_alive() {
            return Err(UpstreamError::Gone(self.name.to_string()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        super::prepare_request(&mut msg, id);
        super::shape_for(self.info.era, &mut msg, client_capabilities);
        let events = self.inflight.register(id);
        let tx = self
            .inflight
            .get(id)
            .ok_or_else(|| UpstreamError::Gone(self.name.to_string()))?;
        let mut extra = HeaderMap::new();
        if self.info.era == Era::Modern {
            for (k, v) in param_headers {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::try_from(k.as_str()),
                    HeaderValue::try_from(v.as_str()),
                ) {
                    extra.insert(k, v);
                }
            }
        }
        // The POST runs in the reader task, so cancelling the call aborts it at any point.
        let Link::Http(this) = &link else {
            return Err(UpstreamError::Gone(self.name.to_string()));
        };
        let this = this.clone();
        let reader_link = link.clone();
        let task = tokio::spawn(async move {
            match this.post(&msg, None, extra).await {
                Ok(response) => {
                    let (name, inflight) = (this.name.clone(), this.inflight.clone());
                    read_reply(reader_link, name, inflight, id, tx, response, this.info.era).await;
                }
                Err(e) => {
                    if this.inflight.remove(id).is_some() {
                        let error = Message::error(Some(&Id::Int(id)), &e.to_rpc());
                        let _ = tx.send(UpstreamEvent::Done(error)).await;
                    }
                    this.finished(id);
                }
            }
        });
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, task.abort_handle());
        Ok(Exchange {
            events,
            link,
            upstream_id: id,
            finished: false,
        })
    }

    pub(super) async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        let r = self
            .post(&msg, Some(Duration::from_secs(30)), HeaderMap::new())
            .await?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Status(
                self.name.to_string(),
                r.status().as_u16(),
            ))
        }
    }

    pub(super) fn cancel(&self, upstream_id: i64, reason: &str) {
        tracing::debug!(upstream = %self.name, upstream_id, reason, "cancelling upstream call");
        self.inflight.remove(upstream_id);
        if let Some(h) = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&upstream_id)
        {
            h.abort();
        }
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

    fn finished(&self, id: i64) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(super) async fn close(&self) {
        self.alive.store(false, Ordering::Release);
        if let Some(session) = &self.session {
            let _ = self
                .client
                .delete(self.url.clone())
                .headers(self.base_headers.clone())
                .header(headers::SESSION_ID, session)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
        }
    }
}

/// Reads the reply to one POST (JSON or an event stream) into the call's events.
async fn read_reply(
    link: Link,
    name: Arc<str>,
    inflight: Arc<Inflight>,
    id: i64,
    tx: mpsc::Sender<UpstreamEvent>,
    response: reqwest::Response,
    era: Era,
) {
    let status = response.status();
    let is_sse = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let done = if is_sse {
        read_events(&link, &tx, response, id).await
    } else {
        let body = response.bytes().await.unwrap_or_default();
        match Message::parse(&body) {
            Ok(m) if m.is_reply() => Some(m),
            _ => {
                let why = if era == Era::Legacy && status == reqwest::StatusCode::NOT_FOUND {
                    format!(
                        "upstream {name:?} no longer knows Warden's session; the next call opens a new one"
                    )
                } else {
                    format!(
                        "upstream {name:?} answered HTTP {} without a JSON-RPC reply",
                        status.as_u16()
                    )
                };
                if status == reqwest::StatusCode::NOT_FOUND
                    && era == Era::Legacy
                    && let Link::Http(l) = &link
                {
                    l.alive.store(false, Ordering::Release);
                }
                Some(Message::error(
                    Some(&Id::Int(id)),
                    &RpcError::new(codes::UPSTREAM_UNAVAILABLE, why),
                ))
            }
        }
    };
    let done = done.unwrap_or_else(|| {
        Message::error(
            Some(&Id::Int(id)),
            &RpcError::new(
                codes::UPSTREAM_UNAVAILABLE,
                format!("upstream {name:?} closed the stream before answering"),
            ),
        )
    });
    if inflight.remove(id).is_some() {
        let _ = tx.send(UpstreamEvent::Done(done)).await;
    }
    if let Link::Http(l) = &link {
        l.finished(id);
    }
}

async fn read_events(
    link: &Link,
    tx: &mpsc::Sender<UpstreamEvent>,
    response: reqwest::Response,
    id: i64,
) -> Option<Message> {
    let mut decoder = sse::Decoder::new(MAX_SSE_LINE);
    let mut body = response.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let Ok(events) = decoder.push(&chunk) else {
            return None;
        };
        for event in events {
            let Ok(msg) = Message::parse(event.data.as_bytes()) else {
                continue;
            };
            match msg.kind() {
                Kind::Response | Kind::Error if msg.id() == Some(Id::Int(id)) => return Some(msg),
                Kind::Response | Kind::Error => {}
                Kind::Notification => {
                    let _ = tx.send(UpstreamEvent::Notification(msg)).await;
                }
                Kind::Request => {
                    let Some(upstream_id) = msg.id() else {
                        continue;
                    };
                    let request = ServerRequest {
                        msg,
                        link: link.clone(),
                        upstream_id,
                    };
                    let _ = tx.send(UpstreamEvent::Request(request)).await;
                }
            }
        }
    }
    None
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
            let response = this
                .client
                .get(this.url.clone())
                .headers(headers)
                .send()
                .await;
            let (name, wrapped) = (this.name.clone(), Link::Http(this.clone()));
            let inflight = this.inflight.clone();
            drop(this);
            match response {
                Ok(r) if r.status().is_success() => {
                    backoff = Duration::from_millis(250);
                    let mut decoder = sse::Decoder::new(MAX_SSE_LINE);
                    let mut body = r.bytes_stream();
                    while let Some(Ok(chunk)) = body.next().await {
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
                Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
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
    client: &'a reqwest::Client,
    url: &'a str,
    headers: &'a HeaderMap,
}

impl Opener<'_> {
    async fn exchange(
        &self,
        msg: &Message,
        extra: HeaderMap,
    ) -> Result<(Message, HeaderMap), UpstreamError> {
        let fail = |why: String| UpstreamError::Handshake(self.name.to_string(), why);
        let response = self
            .client
            .post(self.url)
            .headers(self.headers.clone())
            .headers(extra)
            .body(msg.to_bytes())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                UpstreamError::Unreachable(self.name.to_string(), e.without_url().to_string())
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let is_sse = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        let reply = if is_sse {
            let mut decoder = sse::Decoder::new(MAX_SSE_LINE);
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
            headers::PROTOCOL_VERSION,
            HeaderValue::from_static(MODERN_VERSION),
        );
        extra.insert(headers::METHOD, HeaderValue::from_static("server/discover"));
        let (reply, _) = self.exchange(&msg, extra).await?;
        super::server_info_from_discover(self.name, &reply)
    }

    async fn initialize(&self) -> Result<(ServerInfo, Option<String>), UpstreamError> {
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
        let session = headers
            .get(headers::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((super::server_info_from_initialize(result), session))
    }
}
