//! The client-facing Streamable HTTP endpoint: both eras on one URL. This module turns HTTP
//! into calls of the pipeline and their answers back into HTTP; what it refuses itself is
//! rendered by the one renderer of [`crate::call::refusal`]. The modern era's checks are in
//! `modern`, the legacy era's sessions (initialize, GET stream, DELETE) in `legacy`.

mod legacy;
mod modern;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, BoxStream, StreamExt};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use warden_mcp::era::{self, Era};
use warden_mcp::{Message, sse};

use crate::call::Refusal;
use crate::call::refusal::json_response;
use crate::gateway::Gateway;
use crate::header_names;
use crate::identity::{AuthError, Principal};
use crate::pipeline::Answer;

const KEEPALIVE: Duration = Duration::from_secs(15);

pub fn router(gw: Arc<Gateway>) -> Router {
    let path = gw.config.server.path.clone();
    let mut router = Router::new();
    if let Some(issuer) = gw.identity.issuer() {
        let metadata = gw.identity.challenge.metadata(issuer);
        for at in gw.identity.challenge.metadata_paths() {
            let doc = metadata.clone();
            router = router.route(at, get(move || async move { axum::Json(doc) }));
        }
    }
    router
        .route(
            &path,
            get(legacy::get_stream).post(post).delete(legacy::delete),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes())
        .merge(crate::consent::page::routes())
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::edge::guard,
        ))
        .with_state(gw)
}

/// What serves the requests of one connection from `peer`. A POST to the MCP endpoint, which is
/// how every call comes, goes to its handler through the edge's checks alone; everything else
/// (the GET stream, DELETE, the consent page, metrics, health) through the router, whose layer
/// runs the same checks. The router's matching, its middleware's boxed service and future, and
/// the handler's extractors cost about 5,000 instructions a call (callgrind, the bench's echo),
/// which a call does not need.
#[derive(Clone)]
pub struct Entry {
    gw: Arc<Gateway>,
    router: Router,
    peer: SocketAddr,
}

impl Entry {
    pub fn new(gw: Arc<Gateway>, router: Router, peer: SocketAddr) -> Entry {
        Entry { gw, router, peer }
    }
}

impl Entry {
    /// Answers one request: a POST to the MCP endpoint through the edge's checks and [`post`],
    /// anything else through the router.
    fn answer(&self, mut request: axum::extract::Request) -> EntryFuture {
        let (gw, peer) = (self.gw.clone(), self.peer);
        if request.method() == http::Method::POST && request.uri().path() == gw.config.server.path {
            return Box::pin(async move {
                Ok(match crate::edge::refusal(&gw, &request, Some(peer.ip())) {
                    Some(refused) => refused,
                    None => post(State(gw), ConnectInfo(peer), request).await,
                })
            });
        }
        request.extensions_mut().insert(ConnectInfo(peer));
        Box::pin(tower::ServiceExt::oneshot(self.router.clone(), request))
    }
}

type EntryFuture = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

/// How the serving threads call it, for each request of a connection.
impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Entry {
    type Response = Response;
    type Error = Infallible;
    type Future = EntryFuture;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> EntryFuture {
        self.answer(request.map(axum::body::Body::new))
    }
}

/// Ready unless a part the calls need says otherwise: now, the audit trail.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.audit.readiness() {
        Ok(None) => "ready".into_response(),
        Ok(Some(warning)) => warning.into_response(),
        Err(why) => (http::StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let text = gw.metrics.render(gw.sessions.len(), &gw.pool.stats());
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn header(h: &HeaderMap, name: HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A call's answer as an HTTP response.
fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Json {
            status,
            message,
            headers,
        } => {
            let mut r = json_response(status, &message);
            r.headers_mut().extend(headers);
            r
        }
        Answer::Stream {
            messages,
            keepalive,
        } => sse_response(messages, keepalive),
    }
}

/// Messages as an SSE body. With `keepalive`, a comment goes out whenever the stream is quiet
/// for a while, so that a client that vanished is noticed.
fn sse_response(messages: BoxStream<'static, Message>, keepalive: bool) -> Response {
    let event = |m: Message| Ok::<_, Infallible>(sse::encode(None, &m.to_bytes()));
    let body = if keepalive {
        Body::from_stream(stream::unfold(messages, move |mut m| async move {
            tokio::select! {
                next = m.next() => next.map(|msg| (event(msg), m)),
                () = tokio::time::sleep(KEEPALIVE) => Some((Ok(sse::comment("keep-alive")), m)),
            }
        }))
    } else {
        Body::from_stream(messages.map(event))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// Whether the `Accept` headers name every one of `kinds` (media types compare without regard
/// to case; parameters such as `q=` are ignored). Read in place: this runs on every POST.
fn accepts(h: &HeaderMap, kinds: &[&str]) -> bool {
    debug_assert!(kinds.len() < 32);
    // Bit `i` set once `kinds[i]` is named; the header is read once, as bytes.
    let mut named = 0u32;
    for value in h.get_all(ACCEPT) {
        if is_exactly(value.as_bytes(), kinds) {
            return true;
        }
        for range in value.as_bytes().split(|&b| b == b',') {
            let media = range.split(|&b| b == b';').next().unwrap_or_default();
            let media = media.trim_ascii();
            for (i, kind) in kinds.iter().enumerate() {
                if media.eq_ignore_ascii_case(kind.as_bytes()) {
                    named |= 1 << i;
                }
            }
        }
    }
    named == (1 << kinds.len()) - 1
}

/// Whether `value` is `kinds` joined by `", "`, as most clients write it: then it names each
/// one, and taking it apart (three quarters of what `accepts` cost) can be skipped.
fn is_exactly(value: &[u8], kinds: &[&str]) -> bool {
    let mut rest = value;
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            let Some(after) = rest.strip_prefix(b", ") else {
                return false;
            };
            rest = after;
        }
        let Some(after) = rest.strip_prefix(kind.as_bytes()) else {
            return false;
        };
        rest = after;
    }
    rest.is_empty()
}

/// The identity stage: a principal, or the answer that refuses the request.
async fn authenticate(
    gw: &Gateway,
    uri: &Uri,
    h: &HeaderMap,
    peer: SocketAddr,
) -> Result<Arc<Principal>, Response> {
    let principal = gw.identity.authenticate(uri.query(), h).await;
    if let Ok(p) = &principal {
        // Kept only when an upstream exchanges the caller's token (RFC 8693).
        gw.connections.remember(p, h);
    }
    principal.map_err(|e| {
        if e == AuthError::Missing {
            tracing::debug!(client = %peer, "no credentials");
        } else {
            tracing::warn!(reason = %e, client = %peer, "authentication refused");
        }
        Refusal::Auth(e).respond_to(gw, Era::Legacy, None, Some(peer.ip()))
    })
}

async fn post(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    // Taken apart rather than extracted piece by piece, which would copy the headers.
    let (parts, body) = request.into_parts();
    let (uri, h) = (parts.uri, parts.headers);
    // Boxed, like the era's handling below, so that the handler's own future stays small.
    let principal = match Box::pin(authenticate(&gw, &uri, &h, peer)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let refuse = |r: Refusal| r.respond_to(&gw, Era::Legacy, None, Some(peer.ip()));
    let is_json = header(&h, CONTENT_TYPE).is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return refuse(Refusal::ContentType);
    }
    if !accepts(&h, &["application/json", "text/event-stream"]) {
        return refuse(Refusal::NotAcceptable(
            "both application/json and text/event-stream",
        ));
    }
    let bytes = match read_body(&gw, &h, body).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let msg = match Message::parse_with(&bytes, gw.params_as()) {
        Ok(m) => m,
        Err(e) => return refuse(Refusal::Malformed(e)),
    };
    match era::detect(header(&h, header_names::PROTOCOL_VERSION), &msg) {
        Era::Modern => Box::pin(modern::post_modern(&gw, &h, msg, principal, peer)).await,
        Era::Legacy => Box::pin(legacy::post_legacy(&gw, &h, msg, principal, peer)).await,
    }
}

async fn read_body(gw: &Gateway, h: &HeaderMap, body: Body) -> Result<bytes::Bytes, Refusal> {
    let max = gw.config.server.max_body_bytes;
    if header(h, CONTENT_LENGTH)
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > max)
    {
        return Err(Refusal::TooLarge(max));
    }
    crate::body::read_whole(body, max)
        .await
        .map_err(|e| match e {
            crate::body::Unread::TooLarge => Refusal::TooLarge(max),
            crate::body::Unread::Failed(_) => Refusal::Unreadable,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_names_every_kind_in_any_header_with_any_case_and_parameters() {
        let both = ["application/json", "text/event-stream"];
        assert!(accepts(
            &accept(&["application/json, text/event-stream"]),
            &both
        ));
        assert!(accepts(
            &accept(&["Application/JSON;q=0.9", " text/event-stream ; q=1"]),
            &both
        ));
        assert!(!accepts(&accept(&["application/json"]), &both));
        assert!(!accepts(&accept(&["*/*"]), &both));
        // Written exactly as listed: the short way, with the same answers as the long one.
        assert!(accepts(
            &accept(&["application/json, text/event-stream"]),
            &both
        ));
        assert!(accepts(
            &accept(&["text/event-stream"]),
            &["text/event-stream"]
        ));
        assert!(!accepts(&accept(&["application/json, "]), &both));
        // Not written exactly as listed: read the long way.
        assert!(accepts(
            &accept(&["application/json, text/event-stream, "]),
            &["application/json"]
        ));
        assert!(accepts(
            &accept(&["text/event-stream,application/json"]),
            &both
        ));
        assert!(!accepts(
            &accept(&["application/json,text/event-stream;"]),
            &["text/html"]
        ));
        assert!(!accepts(&accept(&[]), &["text/event-stream"]));
        assert!(!accepts(
            &accept(&["application/jsonx, text/event-streams"]),
            &both
        ));
    }
}
