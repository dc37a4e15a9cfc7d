//! The legacy eras (2025-11-25 and older) on the endpoint: sessions opened by `initialize`,
//! the GET stream, DELETE, and responses to requests Warden relayed to the client.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};
use warden_mcp::era::{self, Era, LATEST_LEGACY, SUPPORTED_VERSIONS};
use warden_mcp::{Id, Kind, Message, RpcError, codes, headers};

use super::{
    accepts, authenticate, error_response, header, json_response, respond, rpc_error,
    with_keepalive,
};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::notices::{for_legacy_session, next_for};
use crate::pipeline::{CallCtx, server_info};
use crate::session::{Session, SessionProblem};

pub(super) async fn post_legacy(
    gw: &Gateway,
    h: &HeaderMap,
    msg: Message,
    principal: Arc<Principal>,
    peer: SocketAddr,
) -> Response {
    if msg.method() == Some("initialize") && msg.is_request() {
        return initialize(gw, msg, principal);
    }
    let session = match gw.sessions.find(header(h, headers::SESSION_ID), &principal) {
        Ok(s) => s,
        Err(p) => return session_problem(gw, p, msg.id().as_ref()),
    };
    let mut versions = h
        .get_all(headers::PROTOCOL_VERSION)
        .iter()
        .map(|v| v.to_str().unwrap_or("?").trim());
    if let Some(v) = versions.find(|v| !era::is_legacy_version(v)) {
        gw.metrics.reject("protocol");
        let e = RpcError::new(
            codes::INVALID_REQUEST,
            format!("MCP-Protocol-Version {v} is not supported"),
        )
        .with_data(json!({ "supported": SUPPORTED_VERSIONS, "requested": v }));
        return rpc_error(StatusCode::BAD_REQUEST, msg.id().as_ref(), e);
    }
    match msg.kind() {
        Kind::Request => {
            let ctx = CallCtx {
                principal,
                era: Era::Legacy,
                client_capabilities: session.client_capabilities.clone(),
                log_level: session.log_level.lock().ok().and_then(|l| l.clone()),
                session: Some(session),
                param_headers: Vec::new(),
                peer: Some(peer.ip()),
            };
            respond(gw.handle(ctx, msg).await, Era::Legacy)
        }
        Kind::Notification => {
            if msg.method() == Some("notifications/cancelled")
                && let Some(id) = msg
                    .params()
                    .and_then(|p| p.get("requestId"))
                    .and_then(Id::from_value)
            {
                let found = session.cancel_call(&id);
                tracing::debug!(request = %id, found, "client cancelled a call");
            }
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Response | Kind::Error => {
            let Some(request) = msg.id().and_then(|id| session.take_server_request(&id)) else {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    None,
                    codes::INVALID_REQUEST,
                    "this response answers no request Warden relayed to this session",
                );
            };
            request.reply(msg).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

fn session_problem(gw: &Gateway, p: SessionProblem, id: Option<&Id>) -> Response {
    gw.metrics.reject("session");
    match p {
        SessionProblem::Missing => error_response(
            StatusCode::BAD_REQUEST,
            id,
            codes::INVALID_REQUEST,
            "the Mcp-Session-Id header is required; open a session with initialize first",
        ),
        SessionProblem::Unknown => error_response(
            StatusCode::NOT_FOUND,
            id,
            codes::INVALID_REQUEST,
            "session not found: it ended or never existed; send initialize again",
        ),
    }
}

fn initialize(gw: &Gateway, msg: Message, principal: Arc<Principal>) -> Response {
    let id = msg.id().unwrap_or(Id::Int(0));
    let params = msg.params().cloned().unwrap_or_default();
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = if era::is_legacy_version(requested) {
        requested
    } else {
        LATEST_LEGACY
    };
    let capabilities = params
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let client_info = params
        .get("clientInfo")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let session = gw
        .sessions
        .create(principal, version.to_string(), capabilities, client_info);
    let result = json!({
        "protocolVersion": version,
        "capabilities": gw.capabilities(),
        "serverInfo": server_info(),
        "instructions": "Warden gateway: tools, prompts and resources of several MCP servers behind one endpoint.",
    });
    let mut r = json_response(StatusCode::OK, &Message::response(&id, result));
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        r.headers_mut().insert(headers::SESSION_ID, v);
    }
    r
}

/// The legacy session a GET or DELETE names, for an authenticated principal; modern
/// requests get 405 (the era has neither).
async fn legacy_session(
    gw: &Gateway,
    peer: SocketAddr,
    uri: &Uri,
    h: &HeaderMap,
    verb: &str,
) -> Result<(Arc<Principal>, Arc<Session>), Response> {
    let principal = authenticate(gw, uri, h, peer).await?;
    if header(h, headers::PROTOCOL_VERSION).is_some_and(|v| !era::is_legacy_version(v.trim())) {
        let why = format!(
            "{verb} is not part of 2026-07-28, which has no sessions (use subscriptions/listen for notifications)"
        );
        return Err(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            codes::INVALID_REQUEST,
            &why,
        ));
    }
    match gw.sessions.find(header(h, headers::SESSION_ID), &principal) {
        Ok(s) => Ok((principal, s)),
        Err(p) => Err(session_problem(gw, p, None)),
    }
}

pub(super) async fn get_stream(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let (principal, session) = match legacy_session(&gw, peer, &uri, &h, "GET").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    if !accepts(&h, &["text/event-stream"]) {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            None,
            codes::INVALID_REQUEST,
            "Accept must list text/event-stream",
        );
    }
    let direct = tokio_stream::wrappers::ReceiverStream::new(session.open_stream());
    let rx = gw.notices.subscribe();
    let broadcast = stream::unfold(rx, move |mut rx| {
        let principal = principal.clone();
        async move {
            next_for(&mut rx, &principal, for_legacy_session)
                .await
                .map(|m| (m, rx))
        }
    });
    let merged =
        stream::select(direct, broadcast).take_until(session.ended.clone().cancelled_owned());
    with_keepalive(merged.boxed())
}

pub(super) async fn delete(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    match legacy_session(&gw, peer, &uri, &h, "DELETE").await {
        Ok((_, session)) => {
            gw.sessions.end(&session.id);
            StatusCode::OK.into_response()
        }
        Err(r) => r,
    }
}
