//! One call in flight to an upstream: the events it produces and how it is cancelled.

use tokio::sync::mpsc;
use warden_mcp::{Id, Message, RpcError, codes};

use super::Link;

/// Something an upstream said while a call was in flight.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A notification tied to the call (progress, a log message).
    Notification(Message),
    /// A server→client request made during the call (elicitation, sampling, roots).
    Request(ServerRequest),
    /// The final response or error of the call. Its id is the upstream's; the caller restores its own.
    Done(Message),
}

/// A request from the upstream server to the client, with the way to answer it.
#[derive(Debug)]
pub struct ServerRequest {
    pub msg: Message,
    pub(super) link: Link,
    pub(super) upstream_id: Id,
}

impl ServerRequest {
    pub fn upstream_id(&self) -> &Id {
        &self.upstream_id
    }

    /// Sends the client's answer back to the upstream under the upstream's own request id.
    pub async fn reply(self, mut answer: Message) {
        answer.set_id(&self.upstream_id);
        if let Err(e) = self.link.send(answer).await {
            tracing::warn!(error = %e, "could not deliver an answer to the upstream");
        }
    }

    /// Answers the upstream with an error: the request cannot reach a client that can answer it.
    pub async fn refuse(self, message: &str) {
        let error = RpcError::new(codes::METHOD_NOT_FOUND, message);
        let answer = Message::error(Some(&self.upstream_id), &error);
        self.reply(answer).await;
    }
}

/// A call in flight. Dropping it before its `Done` event cancels the call upstream.
#[derive(Debug)]
pub struct Exchange {
    pub events: mpsc::Receiver<UpstreamEvent>,
    pub(super) link: Link,
    pub(super) upstream_id: i64,
    pub(super) finished: bool,
}

impl Exchange {
    pub async fn next(&mut self) -> Option<UpstreamEvent> {
        let event = self.events.recv().await;
        if matches!(event, Some(UpstreamEvent::Done(_)) | None) {
            self.finished = true;
        }
        event
    }

    /// Cancels the call upstream now (legacy `notifications/cancelled`, or closing the stream).
    pub fn cancel(&mut self, reason: &str) {
        if !self.finished {
            self.finished = true;
            self.link.cancel(self.upstream_id, reason);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.cancel("the client went away");
    }
}
