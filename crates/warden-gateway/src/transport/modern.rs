//! The modern era (2026-07-28) on the endpoint: stateless requests, checked in the order the
//! specification's conformance suite pins.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use warden_mcp::era::{self, Era, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION};
use warden_mcp::{Message, RpcError, codes, headers};

use super::{error_response, header, respond, rpc_error, with_keepalive};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::pipeline::{CallCtx, Reply};

/// The modern era's checks, in the order the specification's conformance suite pins.
fn check_modern(h: &HeaderMap, msg: &Message) -> Result<(), (StatusCode, RpcError)> {
    let bad = |code, text: String| Err((StatusCode::BAD_REQUEST, RpcError::new(code, text)));
    for name in [headers::PROTOCOL_VERSION, headers::METHOD, headers::NAME] {
        if h.get_all(name).iter().count() > 1 {
            return bad(
                codes::HEADER_MISMATCH,
                format!("the {name} header appears more than once"),
            );
        }
    }
    let Some(meta) = msg.meta() else {
        return bad(codes::INVALID_PARAMS, "params._meta is required in 2026-07-28, with the protocol version and client capabilities".into());
    };
    let Some(version) = meta.get(META_PROTOCOL_VERSION).and_then(Value::as_str) else {
        return bad(
            codes::INVALID_PARAMS,
            format!("params._meta[\"{META_PROTOCOL_VERSION}\"] is required"),
        );
    };
    if msg.is_request()
        && !meta
            .get(META_CLIENT_CAPABILITIES)
            .is_some_and(Value::is_object)
    {
        return bad(
            codes::INVALID_PARAMS,
            format!("params._meta[\"{META_CLIENT_CAPABILITIES}\"] is required"),
        );
    }
    let version_header = header(h, headers::PROTOCOL_VERSION).map(|v| v.trim());
    if let Some(v) = version_header
        && v != version
    {
        return bad(
            codes::HEADER_MISMATCH,
            format!(
                "the MCP-Protocol-Version header ({v}) does not match params._meta ({version})"
            ),
        );
    }
    let method = msg.method().unwrap_or_default();
    if let Some(m) = header(h, headers::METHOD).map(|m| m.trim())
        && m != method
    {
        return bad(
            codes::HEADER_MISMATCH,
            format!("the Mcp-Method header ({m}) does not match the body's method ({method})"),
        );
    }
    if !era::is_supported_version(version) || era::is_legacy_version(version) {
        let e = RpcError::new(
            codes::UNSUPPORTED_VERSION,
            format!("protocol version {version} is not supported"),
        )
        .with_data(json!({ "supported": [era::MODERN_VERSION], "requested": version }));
        return Err((StatusCode::BAD_REQUEST, e));
    }
    if version_header.is_none() {
        return bad(
            codes::HEADER_MISMATCH,
            "the MCP-Protocol-Version header is required".into(),
        );
    }
    if msg.is_request() {
        headers::check_routing(header(h, headers::METHOD), header(h, headers::NAME), msg)
            .or_else(|e| bad(codes::HEADER_MISMATCH, e.to_string()))?;
    }
    Ok(())
}

pub(super) async fn post_modern(
    gw: &Gateway,
    h: &HeaderMap,
    msg: Message,
    principal: Arc<Principal>,
    peer: SocketAddr,
) -> Response {
    if msg.is_reply() {
        return error_response(
            StatusCode::BAD_REQUEST,
            None,
            codes::INVALID_REQUEST,
            "in 2026-07-28 clients do not send responses",
        );
    }
    if let Err((status, e)) = check_modern(h, &msg) {
        gw.metrics.reject("protocol");
        return rpc_error(status, msg.id().as_ref(), e);
    }
    if msg.is_notification() {
        return StatusCode::ACCEPTED.into_response();
    }
    let meta = msg.meta();
    let ctx = CallCtx {
        principal,
        era: Era::Modern,
        session: None,
        client_capabilities: meta
            .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
            .cloned()
            .unwrap_or_else(|| json!({})),
        log_level: meta
            .and_then(|m| m.get("io.modelcontextprotocol/logLevel"))
            .and_then(Value::as_str)
            .map(str::to_string),
        param_headers: h
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(headers::PARAM_PREFIX))
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        peer: Some(peer.ip()),
    };
    // The body decides (its method was checked against Mcp-Method above).
    let listen = msg.method() == Some("subscriptions/listen");
    let reply = gw.handle(ctx, msg).await;
    match reply {
        Reply::Stream(s) if listen => with_keepalive(s),
        other => respond(other, Era::Modern),
    }
}
