//! One call in flight to an upstream: the events it produces and how it is cancelled.

use futures::StreamExt;
use futures::stream::BoxStream;
use sync_wrapper::SyncWrapper;
use warden_mcp::{Id, Message, RpcError, codes};

use super::Link;
use super::events::EventRx;

/// Something an upstream said while a call was in flight.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A notification tied to the call (progress, a log message).
    Notification(Message),
    /// A server→client request made during the call (elicitation, sampling, roots).
    Request(ServerRequest),
    /// The final response or error of the call. Its id is the upstream's; the caller restores its own.
    Done(Message),
    /// The call ended without the upstream's answer.
    Failed(super::UpstreamError),
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
    source: Source,
    pub(super) link: Link,
    pub(super) upstream_id: i64,
    pub(super) finished: bool,
}

/// Where a call's events come from.
enum Source {
    /// Routed to the call by the link's reader (a child's stdout).
    Routed(EventRx),
    /// Read from the call's own HTTP reply, in the task that awaits the call; `side` carries
    /// what a legacy upstream says about the call on its session's GET stream.
    Reply {
        // Only ever used through `&mut`; the wrapper lets a relay be shared while it waits.
        events: SyncWrapper<BoxStream<'static, UpstreamEvent>>,
        side: Option<EventRx>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Routed(_) => "Routed",
            Source::Reply { .. } => "Reply",
        })
    }
}

impl Exchange {
    pub(super) fn routed(link: Link, upstream_id: i64, events: EventRx) -> Exchange {
        Exchange {
            source: Source::Routed(events),
            link,
            upstream_id,
            finished: false,
        }
    }

    pub(super) fn http(
        link: Link,
        upstream_id: i64,
        events: BoxStream<'static, UpstreamEvent>,
        side: Option<EventRx>,
    ) -> Exchange {
        Exchange {
            source: Source::Reply {
                events: SyncWrapper::new(events),
                side,
            },
            link,
            upstream_id,
            finished: false,
        }
    }

    pub async fn next(&mut self) -> Option<UpstreamEvent> {
        let event = match &mut self.source {
            Source::Routed(rx) => rx.recv().await,
            Source::Reply { events, side: None } => events.get_mut().next().await,
            Source::Reply {
                events,
                side: Some(side),
            } => {
                tokio::select! {
                    biased;
                    e = events.get_mut().next() => e,
                    Some(e) = side.recv() => Some(e),
                }
            }
        };
        if matches!(
            event,
            Some(UpstreamEvent::Done(_) | UpstreamEvent::Failed(_)) | None
        ) {
            self.finished = true;
            self.stop_listening_aside();
            self.link.finished(self.upstream_id);
        }
        event
    }

    /// Lets go of the legacy side channel once the call is over, before its sender is dropped
    /// (by `finished`): a receiver dropped first forgets this task, which the sender's going
    /// would otherwise wake while it runs (requeued, and another worker woken to take it).
    fn stop_listening_aside(&mut self) {
        if let Source::Reply { side, .. } = &mut self.source {
            side.take();
        }
    }

    /// Reads the call to its reply on Warden's own behalf: notifications are dropped, and a
    /// server request is refused with `refusal` (there is no client to ask).
    pub async fn reply(&mut self, refusal: &str) -> Result<Message, super::UpstreamError> {
        loop {
            match self.next().await {
                Some(UpstreamEvent::Done(m)) => return Ok(m),
                Some(UpstreamEvent::Failed(e)) => return Err(e),
                Some(UpstreamEvent::Request(r)) => r.refuse(refusal).await,
                Some(UpstreamEvent::Notification(_)) => {}
                None => return Err(super::UpstreamError::LinkClosed),
            }
        }
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
