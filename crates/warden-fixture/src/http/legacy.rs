//! The legacy (2024-11-05 … 2025-11-25) era over HTTP: `initialize` mints a session, every
//! later message names it, GET opens the session's stream of server-initiated messages and
//! DELETE ends it. The fixture's own requests to the client travel on the stream of the
//! call that needs them, and the client's replies arrive as POSTs.

use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use tokio::sync::mpsc;
use warden_mcp::era::{Era, is_legacy_version};
use warden_mcp::{Id, Kind, Message, RpcError, codes, headers};

use super::{accepted, accepts, bare, error, header_str, json, stream};
use crate::conversation::Conversation;
use crate::dispatch;
use crate::exchange::Exchange;
use crate::session::Sessions;
use crate::state::{Change, Fixture};

pub(super) async fn post(fx: Arc<Fixture>, headers: &HeaderMap, msg: Message) -> Response {
    let id = msg.id();
    if let Some(v) = header_str(headers, headers::PROTOCOL_VERSION)
        && !is_legacy_version(v)
    {
        // Only a bare `initialize` gets here with a non-legacy header.
        let e = RpcError::new(
            codes::HEADER_MISMATCH,
            format!("Header mismatch: MCP-Protocol-Version {v} does not belong to initialize"),
        );
        return error(StatusCode::BAD_REQUEST, id.as_ref(), &e);
    }
    if msg.method() == Some("initialize") {
        return initialize(fx, msg).await;
    }
    let Some(session_id) = header_str(headers, headers::SESSION_ID) else {
        let e = RpcError::new(
            codes::INVALID_REQUEST,
            "the Mcp-Session-Id header is required",
        );
        return error(StatusCode::BAD_REQUEST, id.as_ref(), &e);
    };
    let Some(session) = fx.sessions.get(session_id) else {
        let e = RpcError::new(codes::INVALID_REQUEST, "Session not found");
        return error(StatusCode::NOT_FOUND, id.as_ref(), &e);
    };
    let conversation = session.conversation.clone();
    match msg.kind() {
        Kind::Response | Kind::Error => {
            conversation.deliver(msg);
            accepted()
        }
        Kind::Notification => {
            if msg.method() == Some("notifications/cancelled") {
                conversation.cancel(msg.params());
            }
            accepted()
        }
        Kind::Request => call(fx, conversation, msg).await,
    }
}

async fn initialize(fx: Arc<Fixture>, msg: Message) -> Response {
    if !msg.is_request() {
        let e = RpcError::new(codes::INVALID_REQUEST, "initialize must be a request");
        return error(StatusCode::BAD_REQUEST, None, &e);
    }
    let conversation = Arc::new(Conversation::default());
    let (outbox, _nothing_is_sent) = mpsc::unbounded_channel();
    let ex = Exchange::legacy(&msg, conversation.clone(), outbox);
    let response = dispatch::respond(&fx, &msg, &ex).await;
    let mut http = if fx.options.sse_always {
        stream::one_event(&response)
    } else {
        json(StatusCode::OK, &response)
    };
    if response.result().is_some() {
        let session_id = Sessions::new_id();
        // Hex digits are always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            http.headers_mut().insert(headers::SESSION_ID, value);
            fx.sessions.insert(session_id, conversation);
        }
    }
    http
}

async fn call(fx: Arc<Fixture>, conversation: Arc<Conversation>, msg: Message) -> Response {
    let (outbox, rx) = mpsc::unbounded_channel();
    let ex = Exchange::legacy(&msg, conversation.clone(), outbox);
    let sse_always = fx.options.sse_always;
    if msg.method() != Some("tools/call") {
        let call = async move { Some(dispatch::respond(&fx, &msg, &ex).await) };
        return answer(sse_always, rx, call).await;
    }
    // In the legacy era a disconnect is not a cancellation: the call runs on its own task,
    // and only `notifications/cancelled` or the end of the session stops it.
    let task = tokio::spawn(async move {
        // Requests reach here only after `Message::parse` saw an id.
        let (_running, cancelled) = conversation.start_call(msg.id().unwrap_or(Id::Int(0)));
        tokio::select! {
            biased;
            _ = cancelled.cancelled() => None,
            response = dispatch::respond(&fx, &msg, &ex) => Some(response),
        }
    });
    answer(sse_always, rx, async move { task.await.ok().flatten() }).await
}

/// A legacy request's answer: always an SSE stream when so configured, otherwise JSON unless
/// the call sends something before its reply.
async fn answer(
    sse_always: bool,
    outbox: mpsc::UnboundedReceiver<Message>,
    call: impl Future<Output = Option<Message>> + Send + 'static,
) -> Response {
    if sse_always {
        stream::streamed(outbox, call)
    } else {
        stream::answer(Era::Legacy, outbox, call).await
    }
}

/// GET: the session's stream of messages that belong to no request (here, list changes).
pub(super) fn get(fx: &Fixture, headers: &HeaderMap, session_id: &str) -> Response {
    if !accepts(headers, "text/event-stream") {
        return bare(StatusCode::NOT_ACCEPTABLE);
    }
    let Some(session) = fx.sessions.get(session_id) else {
        return bare(StatusCode::NOT_FOUND);
    };
    let Some(claim) = session.claim_get_stream() else {
        // One stream per session, so that no message goes out twice.
        return bare(StatusCode::CONFLICT);
    };
    let render = |change| match change {
        Change::ToolsListChanged => Some(Message::notification(
            "notifications/tools/list_changed",
            json!({}),
        )),
    };
    stream::changes(None, fx.subscribe(), render, session.ended.clone(), claim)
}

/// DELETE: ends the session.
pub(super) fn delete(fx: &Fixture, session_id: &str) -> Response {
    if fx.sessions.end(session_id) {
        bare(StatusCode::OK)
    } else {
        bare(StatusCode::NOT_FOUND)
    }
}
