//! The client-facing Streamable HTTP endpoint: both eras on one URL. This module turns HTTP
//! into calls of the pipeline and replies back into HTTP, and is the one place where errors
//! become HTTP statuses and JSON-RPC error bodies. The modern era's checks are in `modern`, the
//! legacy era's sessions (initialize, GET stream, DELETE) in `legacy`.

mod legacy;
mod modern;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, BoxStream, StreamExt};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use http_body_util::BodyExt;
use serde_json::json;
use warden_mcp::era::{self, Era};
use warden_mcp::{Id, Message, RpcError, codes, headers, sse};

use crate::gateway::Gateway;
use crate::identity::{AuthError, Principal};
use crate::pipeline::Reply;

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
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes())
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            crate::edge::guard,
        ))
        .with_state(gw)
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

/// A JSON-RPC error as an HTTP response.
pub fn error_response(status: StatusCode, id: Option<&Id>, code: i64, message: &str) -> Response {
    rpc_error(status, id, RpcError::new(code, message))
}

fn rpc_error(status: StatusCode, id: Option<&Id>, error: RpcError) -> Response {
    json_response(status, &Message::error(id, &error))
}

fn json_response(status: StatusCode, msg: &Message) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], msg.to_bytes()).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The HTTP status of a JSON-RPC reply: in the modern era an unknown method is 404 and a missing
/// client capability 400; everything else travels in a 200.
fn status_of(msg: &Message, era: Era) -> StatusCode {
    match (era, msg.rpc_error().map(|e| e.code)) {
        (Era::Modern, Some(codes::METHOD_NOT_FOUND)) => StatusCode::NOT_FOUND,
        (
            Era::Modern,
            Some(codes::MISSING_CAPABILITY | codes::HEADER_MISMATCH | codes::UNSUPPORTED_VERSION),
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

fn respond(reply: Reply, era: Era) -> Response {
    match reply {
        Reply::Json(msg) => json_response(status_of(&msg, era), &msg),
        Reply::Stream(messages) => sse_response(messages),
    }
}

fn sse_response(messages: BoxStream<'static, Message>) -> Response {
    let body = messages.map(|m| Ok::<_, Infallible>(sse::encode(None, &m.to_bytes())));
    let mut r = Response::new(Body::from_stream(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// A never-ending stream with a comment every so often, so a vanished client is noticed.
fn with_keepalive(messages: BoxStream<'static, Message>) -> Response {
    let body = stream::unfold(messages, |mut m| async move {
        tokio::select! {
            next = m.next() => next.map(|msg| (Ok::<_, Infallible>(sse::encode(None, &msg.to_bytes())), m)),
            () = tokio::time::sleep(KEEPALIVE) => Some((Ok(sse::comment("keep-alive")), m)),
        }
    });
    let mut r = sse_response(Box::pin(stream::empty()));
    *r.body_mut() = Body::from_stream(body);
    r
}

fn accepts(h: &HeaderMap, kinds: &[&str]) -> bool {
    let accept: Vec<&str> = h
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .collect();
    kinds.iter().all(|k| accept.contains(k))
}

/// The error of a rate-limited request, carrying when to retry (`data.retryAfterMs`).
fn limited_error(wait: Duration, who: &str) -> RpcError {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    RpcError::new(
        codes::LIMITED,
        format!("rate limit for {who} reached; retry in {ms} ms"),
    )
    .with_data(json!({ "retryAfterMs": ms }))
}

/// A request refused at the edge by the per-address limit: 429 with `Retry-After`.
pub fn limited(wait: Duration) -> Response {
    let mut r = rpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        None,
        limited_error(wait, "this address"),
    );
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
}

/// The identity stage: a principal, or the answer that refuses the request.
async fn authenticate(
    gw: &Gateway,
    uri: &Uri,
    h: &HeaderMap,
    peer: SocketAddr,
) -> Result<Arc<Principal>, Response> {
    gw.identity.authenticate(uri.query(), h).await.map_err(|e| {
        if e == AuthError::Missing {
            tracing::debug!(client = %peer, "no credentials");
        } else {
            tracing::warn!(reason = %e, client = %peer, "authentication refused");
        }
        gw.metrics.reject("auth");
        auth_response(gw, &e)
    })
}

/// 401/403 with the `WWW-Authenticate` challenge that leads a client to the identity provider.
fn auth_response(gw: &Gateway, e: &AuthError) -> Response {
    let (status, challenge) = gw.identity.challenge.answer(e);
    let mut r = error_response(status, None, codes::INVALID_REQUEST, &e.to_string());
    r.headers_mut()
        .insert(http::header::WWW_AUTHENTICATE, challenge);
    r
}

async fn post(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    // Taken apart rather than extracted piece by piece, which would copy the headers.
    let (parts, body) = request.into_parts();
    let (uri, h) = (parts.uri, parts.headers);
    // Boxed, like the era's handling below, so that the handler's own future stays small.
    let principal = match Box::pin(authenticate(&gw, &uri, &h, peer)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let is_json = header(&h, CONTENT_TYPE.as_str()).is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        gw.metrics.reject("content-type");
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            codes::INVALID_REQUEST,
            "Content-Type must be application/json",
        );
    }
    if !accepts(&h, &["application/json", "text/event-stream"]) {
        gw.metrics.reject("accept");
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            None,
            codes::INVALID_REQUEST,
            "Accept must list both application/json and text/event-stream",
        );
    }
    let bytes = match read_body(&gw, &h, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let msg = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            gw.metrics.reject("malformed");
            return error_response(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string());
        }
    };
    let era = era::detect(header(&h, headers::PROTOCOL_VERSION), &msg);
    let method = msg.method().unwrap_or_default().to_string();
    let name = msg.param_str("name").map(str::to_string);
    if msg.is_request()
        && let Err(e) = gw
            .identity
            .check_scopes(&principal, &method, name.as_deref())
    {
        tracing::info!(user = %principal.user, %method, reason = %e, "step-up needed");
        return auth_response(&gw, &e);
    }
    if msg.is_request() {
        let tool = if method == "tools/call" {
            name.as_deref()
        } else {
            None
        };
        let agent = principal.agent.as_deref().unwrap_or_default();
        if let Err(wait) = gw
            .limiter
            .check_call(&principal.user, agent, tool, Instant::now())
        {
            gw.metrics.reject("rate-principal");
            let who = tool.map_or_else(
                || "this principal".to_string(),
                |t| format!("{t} for this principal"),
            );
            return rpc_error(StatusCode::OK, msg.id().as_ref(), limited_error(wait, &who));
        }
    }
    let response = match era {
        Era::Modern => Box::pin(modern::post_modern(&gw, &h, msg, principal, peer)).await,
        Era::Legacy => Box::pin(legacy::post_legacy(&gw, &h, msg, principal, peer)).await,
    };
    gw.record(
        &method,
        name.as_deref(),
        response.status(),
        started.elapsed(),
    );
    response
}

async fn read_body(gw: &Gateway, h: &HeaderMap, body: Body) -> Result<bytes::Bytes, Response> {
    let max = gw.config.server.max_body_bytes;
    let too_big = || {
        gw.metrics.reject("too-large");
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            codes::INVALID_REQUEST,
            &format!("the body is over the limit of {max} bytes (server.max_body_bytes)"),
        )
    };
    if header(h, CONTENT_LENGTH.as_str())
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > max)
    {
        return Err(too_big());
    }
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_big())
        }
        Err(_) => Err(error_response(
            StatusCode::BAD_REQUEST,
            None,
            codes::INVALID_REQUEST,
            "the request body could not be read",
        )),
    }
}
