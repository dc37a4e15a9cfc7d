//! Streamable HTTP on `/mcp`, both eras on one endpoint.
//!
//! Every POST is parsed once and sorted by [`warden_mcp::era::detect`]: a request whose
//! `_meta` names a version (or whose version header is not a legacy one) is served by
//! [`modern`], everything else by [`legacy`]. GET and DELETE belong to legacy sessions;
//! without one they are 405, as a modern server answers them.

mod legacy;
mod modern;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use warden_mcp::era::{self, Era, is_legacy_version};
use warden_mcp::{Id, Message, RpcError, codes, headers};

use crate::state::Fixture;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";

pub(crate) fn router(fx: Arc<Fixture>) -> Router {
    Router::new()
        .route(MCP_PATH, post(post_mcp).get(get_mcp).delete(delete_mcp))
        .with_state(fx)
}

async fn post_mcp(State(fx): State<Arc<Fixture>>, headers: HeaderMap, body: Bytes) -> Response {
    if fx.options.record_headers {
        let mut seen = fx.stats.headers.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in &headers {
            seen.insert(format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
    }
    if let Some(refusal) = check_origin(&headers) {
        return refusal;
    }
    if let Some(content_type) = header_str(&headers, header::CONTENT_TYPE.as_str())
        && !media_type_is(content_type, "application/json")
    {
        return bare(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if !accepts(&headers, "application/json") || !accepts(&headers, "text/event-stream") {
        return bare(StatusCode::NOT_ACCEPTABLE);
    }
    let msg = match Message::parse(&body) {
        Ok(msg) => msg,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                &RpcError::new(e.code(), e.to_string()),
            );
        }
    };
    match era::detect(header_str(&headers, headers::PROTOCOL_VERSION), &msg) {
        Era::Modern => modern::post(fx, &headers, msg).await,
        Era::Legacy => legacy::post(fx, &headers, msg).await,
    }
}

async fn get_mcp(State(fx): State<Arc<Fixture>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = check_origin(&headers) {
        return refusal;
    }
    match legacy_session_id(&headers) {
        Some(id) => legacy::get(&fx, &headers, id),
        None => method_not_allowed(),
    }
}

async fn delete_mcp(State(fx): State<Arc<Fixture>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = check_origin(&headers) {
        return refusal;
    }
    match legacy_session_id(&headers) {
        Some(id) => legacy::delete(&fx, id),
        None => method_not_allowed(),
    }
}

/// The session a GET or DELETE names, unless its version header says it is modern (modern
/// clients have no sessions: the header is ignored and the method is 405).
fn legacy_session_id(headers: &HeaderMap) -> Option<&str> {
    let version = header_str(headers, headers::PROTOCOL_VERSION);
    if version.is_some_and(|v| !is_legacy_version(v)) {
        return None;
    }
    header_str(headers, headers::SESSION_ID)
}

/// A header's value as text, trimmed; `None` if absent or not visible ASCII.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn media_type_is(value: &str, wanted: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(wanted))
}

/// Whether `Accept` admits a media type. A missing `Accept` admits everything.
pub(crate) fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    let (wanted_type, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let range = range.split(';').next().unwrap_or_default().trim();
            range == "*/*"
                || range.eq_ignore_ascii_case(wanted)
                || range
                    .strip_suffix("/*")
                    .is_some_and(|t| t.eq_ignore_ascii_case(wanted_type))
        })
}

/// Refuses a present `Origin` that is not loopback (DNS-rebinding protection): 403.
fn check_origin(headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?;
    let allowed = origin.to_str().ok().is_some_and(origin_is_loopback);
    (!allowed).then(|| {
        let e = RpcError::new(codes::INVALID_REQUEST, "Origin not allowed");
        error(StatusCode::FORBIDDEN, None, &e)
    })
}

fn origin_is_loopback(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

// ---- responses -----------------------------------------------------------------------------

/// A status with an empty body.
pub(crate) fn bare(status: StatusCode) -> Response {
    status.into_response()
}

pub(crate) fn accepted() -> Response {
    bare(StatusCode::ACCEPTED)
}

fn method_not_allowed() -> Response {
    let mut response = bare(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// One JSON-RPC message as an `application/json` body.
pub(crate) fn json(status: StatusCode, msg: &Message) -> Response {
    let mut response = Response::new(Body::from(msg.to_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON-RPC error response with an HTTP status.
pub(crate) fn error(status: StatusCode, id: Option<&Id>, e: &RpcError) -> Response {
    json(status, &Message::error(id, e))
}

/// An SSE response around a body stream.
pub(crate) fn sse(body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_origins_pass() {
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8",
            "http://[::1]:80",
        ] {
            assert!(origin_is_loopback(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example.com",
            "http://localhost.evil.com",
            "http://127.0.0.2",
        ] {
            assert!(!origin_is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn accept_understands_wildcards() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            h
        };
        assert!(accepts(&HeaderMap::new(), "application/json"));
        let both = with("application/json, text/event-stream");
        assert!(accepts(&both, "application/json") && accepts(&both, "text/event-stream"));
        assert!(accepts(&with("*/*"), "text/event-stream"));
        assert!(accepts(&with("text/*;q=0.5"), "text/event-stream"));
        assert!(!accepts(&with("application/json"), "text/event-stream"));
    }
}
