//! The modern era (2026-07-28) on the endpoint: stateless requests, checked in the order the
//! specification's conformance suite pins.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, StatusCode};
use serde_json::json;
use warden_mcp::era::{self, Era, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION};
use warden_mcp::{Message, headers};

use super::respond;
use crate::call::{Call, CallCtx, Refusal};
use crate::gateway::Gateway;
use crate::header_names;
use crate::identity::Principal;

/// The headers the modern era reads, found in one pass over the request's headers: looked up
/// by name, each costs a hash and a probe, and they were looked up eight times per call.
#[derive(Default)]
struct Routing<'h> {
    /// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`: each one's first value, if text.
    version: Option<&'h str>,
    method: Option<&'h str>,
    name: Option<&'h str>,
    /// How many times each of the three was sent.
    sent: [usize; 3],
    /// The `Mcp-Param-*` headers whose values are text, in the order they came.
    params: Vec<(String, String)>,
}

impl<'h> Routing<'h> {
    const NAMES: [HeaderName; 3] = [
        header_names::PROTOCOL_VERSION,
        header_names::METHOD,
        header_names::NAME,
    ];

    fn read(h: &'h HeaderMap) -> Routing<'h> {
        let mut r = Routing::default();
        for (k, v) in h {
            let Some(i) = Self::NAMES.iter().position(|n| n == k) else {
                if k.as_str().starts_with(headers::PARAM_PREFIX)
                    && let Ok(v) = v.to_str()
                {
                    r.params.push((k.as_str().to_string(), v.to_string()));
                }
                continue;
            };
            r.sent[i] += 1;
            if r.sent[i] == 1 {
                let first = match i {
                    0 => &mut r.version,
                    1 => &mut r.method,
                    _ => &mut r.name,
                };
                *first = v.to_str().ok();
            }
        }
        r
    }
}

/// The modern era's checks, in the order the specification's conformance suite pins.
fn check_modern(h: &Routing<'_>, msg: &Message) -> Result<(), Refusal> {
    let mismatch = |text: String| Err(Refusal::HeaderMismatch(text));
    for (name, sent) in Routing::NAMES.iter().zip(h.sent) {
        if sent > 1 {
            return mismatch(format!("the {name} header appears more than once"));
        }
    }
    if !msg.has_meta() {
        return Err(Refusal::MissingMeta("params._meta is required in 2026-07-28, with the protocol version and client capabilities".into()));
    }
    let Some(version) = msg.meta_str(META_PROTOCOL_VERSION) else {
        return Err(Refusal::MissingMeta(format!(
            "params._meta[\"{META_PROTOCOL_VERSION}\"] is required"
        )));
    };
    if msg.is_request() && !msg.meta_is_object(META_CLIENT_CAPABILITIES) {
        return Err(Refusal::MissingMeta(format!(
            "params._meta[\"{META_CLIENT_CAPABILITIES}\"] is required"
        )));
    }
    let version_header = h.version.map(|v| v.trim());
    if let Some(v) = version_header
        && v != version
    {
        return mismatch(format!(
            "the MCP-Protocol-Version header ({v}) does not match params._meta ({version})"
        ));
    }
    let method = msg.method().unwrap_or_default();
    if let Some(m) = h.method.map(|m| m.trim())
        && m != method
    {
        return mismatch(format!(
            "the Mcp-Method header ({m}) does not match the body's method ({method})"
        ));
    }
    if !era::is_supported_version(version) || era::is_legacy_version(version) {
        return Err(Refusal::ModernVersion(version.to_string()));
    }
    if version_header.is_none() {
        return mismatch("the MCP-Protocol-Version header is required".into());
    }
    if msg.is_request() {
        headers::check_routing(h.method, h.name, msg).or_else(|e| mismatch(e.to_string()))?;
    }
    Ok(())
}

pub(super) async fn post_modern(
    gw: &Arc<Gateway>,
    h: &HeaderMap,
    msg: Message,
    principal: Arc<Principal>,
    peer: SocketAddr,
) -> Response {
    if msg.is_reply() {
        return Refusal::ResponseInModern.respond(gw, Era::Modern, None);
    }
    let routing = Routing::read(h);
    if let Err(r) = check_modern(&routing, &msg) {
        return r.respond(gw, Era::Modern, msg.id().as_ref());
    }
    if msg.is_notification() {
        return StatusCode::ACCEPTED.into_response();
    }
    let ctx = CallCtx {
        principal,
        era: Era::Modern,
        session: None,
        client_capabilities: msg
            .meta_value(META_CLIENT_CAPABILITIES)
            .unwrap_or_else(|| json!({})),
        log_level: msg
            .meta_str("io.modelcontextprotocol/logLevel")
            .map(str::to_string),
        param_headers: routing.params,
        peer: Some(peer.ip()),
    };
    // The body decides (its method was checked against Mcp-Method above).
    respond(gw.call(Call::new(gw, ctx, msg)).await)
}
