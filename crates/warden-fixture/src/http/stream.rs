//! Turning a running request into an HTTP response, and the long-lived change streams.
//!
//! A request answers with plain JSON when it produced nothing before its response, and
//! otherwise with an SSE stream: the messages it produced, in order, then its response.
//! The call runs inside the response body, so when a client closes the stream the call is
//! dropped — the modern era's cancellation. (Legacy calls that must survive a disconnect
//! are spawned by the caller, and only their outcome is awaited here.) With
//! [`Options::sse_always`](crate::Options::sse_always), legacy requests skip the choice and
//! always stream ([`streamed`], [`one_event`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use warden_mcp::era::Era;
use warden_mcp::{Message, codes, sse};

use super::{json, sse as sse_response};
use crate::state::Change;

/// How often an idle change stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

type Call = Pin<Box<dyn Future<Output = Option<Message>> + Send>>;

fn event(msg: &Message) -> Result<Bytes, Infallible> {
    Ok(sse::encode(None, &msg.to_bytes()))
}

/// The HTTP status of a request's JSON answer. The modern era puts an unknown method on
/// 404 and a missing client capability on 400; every other answer is 200.
fn status_of(era: Era, msg: &Message) -> StatusCode {
    match (era, msg.rpc_error().map(|e| e.code)) {
        (Era::Modern, Some(codes::METHOD_NOT_FOUND)) => StatusCode::NOT_FOUND,
        (Era::Modern, Some(codes::MISSING_CAPABILITY)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// Runs `call` until it either finishes or produces its first message, then answers with
/// JSON or SSE. `call` yields the response, or `None` if the request was cancelled.
pub(crate) async fn answer(
    era: Era,
    mut outbox: mpsc::UnboundedReceiver<Message>,
    call: impl Future<Output = Option<Message>> + Send + 'static,
) -> Response {
    let mut call: Call = Box::pin(call);
    let first = tokio::select! {
        biased;
        Some(first) = outbox.recv() => first,
        last = &mut call => match outbox.try_recv() {
            Ok(first) => {
                let rest = CallStream { first: Some(first), outbox, call: None, last };
                return sse_response(rest.into_body());
            }
            Err(_) => match last {
                Some(msg) => return json(status_of(era, &msg), &msg),
                // Cancelled before anything was said: an SSE stream that ends empty.
                None => return sse_response(Body::empty()),
            },
        },
    };
    let rest = CallStream {
        first: Some(first),
        outbox,
        call: Some(call),
        last: None,
    };
    sse_response(rest.into_body())
}

/// An SSE stream from the start: whatever `call` sends, then its response, then the end.
/// The body is chunked, so the reply goes out as one event followed by the last chunk.
pub(crate) fn streamed(
    outbox: mpsc::UnboundedReceiver<Message>,
    call: impl Future<Output = Option<Message>> + Send + 'static,
) -> Response {
    let stream = CallStream {
        first: None,
        outbox,
        call: Some(Box::pin(call)),
        last: None,
    };
    sse_response(stream.into_body())
}

/// A reply already at hand as a chunked SSE stream of one event.
pub(crate) fn one_event(msg: &Message) -> Response {
    let event = event(msg);
    sse_response(Body::from_stream(futures::stream::once(
        async move { event },
    )))
}

/// The rest of a streamed call: a first message already taken, the call's outbox, the call
/// itself while it runs, and its response once it finished.
struct CallStream {
    first: Option<Message>,
    outbox: mpsc::UnboundedReceiver<Message>,
    call: Option<Call>,
    last: Option<Message>,
}

impl CallStream {
    async fn next(&mut self) -> Option<Message> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if let Some(call) = self.call.as_mut() {
            tokio::select! {
                biased;
                Some(msg) = self.outbox.recv() => return Some(msg),
                last = call => {
                    self.call = None;
                    self.last = last;
                }
            }
        }
        // The call is over: what it sent before finishing, then its response.
        match self.outbox.try_recv() {
            Ok(msg) => Some(msg),
            Err(_) => self.last.take(),
        }
    }

    fn into_body(self) -> Body {
        let events = futures::stream::unfold(self, |mut s| async move {
            let msg = s.next().await?;
            Some((event(&msg), s))
        });
        Body::from_stream(events)
    }
}

/// A long-lived stream of change notifications: an optional opening message, then one
/// event per change that `render` turns into a message, with keep-alive comments between.
/// It ends when `ended` is cancelled or the client goes away; `keep` lives as long as it.
pub(crate) fn changes<K: Send + 'static>(
    opening: Option<Message>,
    changes: broadcast::Receiver<Change>,
    render: impl Fn(Change) -> Option<Message> + Send + 'static,
    ended: CancellationToken,
    keep: K,
) -> Response {
    struct Feed<R, K> {
        opening: Option<Message>,
        changes: broadcast::Receiver<Change>,
        render: R,
        ended: CancellationToken,
        tick: tokio::time::Interval,
        _keep: K,
    }
    let start = tokio::time::Instant::now() + KEEP_ALIVE;
    let feed = Feed {
        opening,
        changes,
        render,
        ended,
        tick: tokio::time::interval_at(start, KEEP_ALIVE),
        _keep: keep,
    };
    let events = futures::stream::unfold(feed, |mut f| async move {
        if let Some(opening) = f.opening.take() {
            return Some((event(&opening), f));
        }
        loop {
            tokio::select! {
                _ = f.ended.cancelled() => return None,
                _ = f.tick.tick() => return Some((Ok(sse::comment("keep-alive")), f)),
                change = f.changes.recv() => match change {
                    Ok(change) => {
                        if let Some(msg) = (f.render)(change) {
                            return Some((event(&msg), f));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    sse_response(Body::from_stream(events))
}
