//! The legacy eras (2025-11-25 and older) on the endpoint: sessions opened by `initialize`,
//! the GET stream, DELETE, and responses to requests Warden relayed to the client.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};
use warden_mcp::era::{self, Era, LATEST_LEGACY};
use warden_mcp::{Id, Kind, Message, Method};

use super::{accepts, authenticate, header, respond, sse_response};
use crate::call::refusal::json_response;
use crate::call::{Call, CallCtx, End, Lifetime, Refusal};
use crate::gateway::Gateway;
use crate::header_names;
use crate::identity::Principal;
use crate::notices::{for_legacy_session, next_for};
use crate::session::Session;

pub(super) async fn post_legacy(
    gw: &Arc<Gateway>,
    h: &HeaderMap,
    msg: Message,
    principal: Arc<Principal>,
    peer: SocketAddr,
) -> Response {
    if msg.method() == Some("initialize") && msg.is_request() {
        if let Err(r) = crate::stage::admit::admit(gw, &principal, &msg) {
            // Counted by the admission itself.
            return r.render(gw, Era::Legacy, msg.id().as_ref()).into_response();
        }
        return initialize(gw, msg, principal);
    }
    let refuse = |r: Refusal| r.respond(gw, Era::Legacy, msg.id().as_ref());
    let session = match gw
        .sessions
        .find(header(h, header_names::SESSION_ID), &principal)
    {
        Ok(s) => s,
        Err(p) => return refuse(Refusal::Session(p)),
    };
    let mut versions = h
        .get_all(header_names::PROTOCOL_VERSION)
        .iter()
        .map(|v| v.to_str().unwrap_or("?").trim());
    if let Some(v) = versions.find(|v| !era::is_legacy_version(v)) {
        return refuse(Refusal::LegacyVersion(v.to_string()));
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
            respond(gw.call(Call::new(gw, ctx, msg)).await)
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
            let Some(pending) = msg.id().and_then(|id| session.take_server_request(&id)) else {
                return Refusal::StrayResponse.respond(gw, Era::Legacy, None);
            };
            pending.answer(msg).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

fn initialize(gw: &Arc<Gateway>, msg: Message, principal: Arc<Principal>) -> Response {
    let id = msg.id().unwrap_or(Id::Int(0));
    // Not a call of the pipeline, but counted like one.
    let mut life = Lifetime::begin(gw, Method::Initialize, None, &id);
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
    let result = gw.initialize_result(version);
    life.end(End::Answered { outcome: "ok" });
    if gw.audit.is_on() {
        let mut record =
            crate::audit::records::about(warden_audit::Kind::Response, &session.principal);
        record.session = Some(session.id.to_string());
        record.method = Some("initialize".into());
        record.outcome = Some("ok".into());
        record.detail = json!({ "protocolVersion": version, "clientInfo": session.client_info });
        gw.audit.write_later(record);
    }
    let mut r = json_response(StatusCode::OK, &Message::response(&id, result));
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        r.headers_mut().insert(header_names::SESSION_ID, v);
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
    verb: &'static str,
) -> Result<(Arc<Principal>, Arc<Session>), Response> {
    let principal = authenticate(gw, uri, h, peer).await?;
    if header(h, header_names::PROTOCOL_VERSION).is_some_and(|v| !era::is_legacy_version(v.trim()))
    {
        return Err(Refusal::NoSessionsInModern(verb).respond(gw, Era::Modern, None));
    }
    match gw
        .sessions
        .find(header(h, header_names::SESSION_ID), &principal)
    {
        Ok(s) => Ok((principal, s)),
        Err(p) => Err(Refusal::Session(p).respond(gw, Era::Legacy, None)),
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
        return Refusal::NotAcceptable("text/event-stream").respond(&gw, Era::Legacy, None);
    }
    let rx = gw.notices.subscribe();
    let broadcast = stream::unfold(rx, move |mut rx| {
        let principal = principal.clone();
        async move {
            next_for(&mut rx, &principal, for_legacy_session)
                .await
                .map(|m| (m, rx))
        }
    });
    let notices = broadcast.take_until(session.ended.clone().cancelled_owned());
    sse_response(notices.boxed(), true)
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
