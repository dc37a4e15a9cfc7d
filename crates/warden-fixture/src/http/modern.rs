//! The modern (2026-07-28) era over HTTP: stateless, every request checked against its
//! headers, `subscriptions/listen` as the one long-lived stream.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_mcp::era::Era;
use warden_mcp::{Kind, Message, RpcError, codes};

use super::{accepted, error, header_str, stream};
use crate::dispatch;
use crate::envelope;
use crate::exchange::Exchange;
use crate::listen::subscription;
use crate::state::Fixture;

pub(super) async fn post(fx: Arc<Fixture>, headers: &HeaderMap, msg: Message) -> Response {
    match msg.kind() {
        // The core protocol defines no client notifications over HTTP; accept and ignore.
        Kind::Notification => return accepted(),
        Kind::Response | Kind::Error => {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "clients send no responses in the 2026-07-28 era",
            );
            return error(StatusCode::BAD_REQUEST, None, &e);
        }
        Kind::Request => {}
    }
    let id = msg.id();
    if let Err(e) = envelope::check_http(|name| header_str(headers, name), &msg) {
        return error(StatusCode::BAD_REQUEST, id.as_ref(), &e);
    }
    let method = msg.method().unwrap_or_default();
    if !dispatch::modern_method_exists(method) {
        let e = RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        );
        return error(StatusCode::NOT_FOUND, id.as_ref(), &e);
    }
    let (outbox, rx) = mpsc::unbounded_channel();
    let ex = match Exchange::modern(&msg, outbox) {
        Ok(ex) => ex,
        Err(e) => return error(StatusCode::BAD_REQUEST, id.as_ref(), &e),
    };
    if method == "subscriptions/listen" {
        return listen(&fx, &msg);
    }
    let call = async move { Some(dispatch::respond(&fx, &msg, &ex).await) };
    stream::answer(Era::Modern, rx, call).await
}

fn listen(fx: &Fixture, msg: &Message) -> Response {
    // Subscribe before answering, so no change after the acknowledgement is missed.
    let changes = fx.subscribe();
    match subscription(msg) {
        Ok((opening, render)) => {
            stream::changes(Some(opening), changes, render, CancellationToken::new(), ())
        }
        Err(e) => error(StatusCode::OK, msg.id().as_ref(), &e),
    }
}
