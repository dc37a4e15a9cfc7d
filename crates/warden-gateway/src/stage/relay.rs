//! Carries one upstream call back to the client: its notifications, the server's requests to
//! the client (remapped to ids Warden owns), and the final reply under the client's own id.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use warden_mcp::era::Era;
use warden_mcp::{Id, Message};

use super::adapt;
use crate::call::life::cancelled;
use crate::call::{Cancel, Frame, Refusal};
use crate::gateway::Gateway;
use crate::session::Session;
use crate::upstream::{Exchange, ServerRequest, UpstreamError, UpstreamEvent};

pub struct Relay {
    pub exchange: Exchange,
    pub era: Era,
    pub session: Option<Arc<Session>>,
    /// A modern client hears log messages only when it asked for them in `_meta`.
    pub quiet_logs: bool,
    pub client_id: Id,
    pub client_token: Option<Value>,
    /// `None` when nothing can cancel the call.
    pub cancel: Option<Cancel>,
    pub deadline: Instant,
    pub timeout: Duration,
    /// Whether an upstream event has been taken: from then on the cancel and the deadline are
    /// looked at before each wait (see [`Relay::step`]).
    pub(in crate::stage) stepped: bool,
}

/// What the next step of a relay produced.
pub enum Step {
    /// A message for the client before the reply.
    Interim(Message),
    /// The final reply; the relay is over.
    Reply(Message),
    /// The call ends without the upstream's reply.
    Failed(Refusal),
    /// The call was cancelled or the client is gone; nothing more is sent.
    Stop,
}

impl Relay {
    pub async fn step(&mut self) -> Step {
        loop {
            // The upstream's events are waited on first (`biased`): a wake-up with the reply
            // ready then takes it without polling the cancel and the deadline (the timer)
            // again. So that events that never stop coming cannot hide a cancel or the
            // deadline, both are looked at before each wait once an event has been taken.
            if std::mem::replace(&mut self.stepped, true) {
                if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                    self.exchange.cancel("cancelled by the client");
                    return Step::Stop;
                }
                if Instant::now() >= self.deadline {
                    return self.timed_out();
                }
            }
            let event = tokio::select! {
                biased;
                e = self.exchange.next() => e,
                () = cancelled(self.cancel.as_ref()) => {
                    self.exchange.cancel("cancelled by the client");
                    return Step::Stop;
                }
                () = tokio::time::sleep_until(self.deadline) => return self.timed_out(),
            };
            let Some(event) = event else {
                return Step::Failed(Refusal::Upstream(UpstreamError::LinkClosed));
            };
            match event {
                UpstreamEvent::Done(mut reply) => {
                    reply.set_id(&self.client_id);
                    return Step::Reply(reply);
                }
                UpstreamEvent::Failed(e) => return Step::Failed(Refusal::Upstream(e)),
                UpstreamEvent::Notification(msg) => {
                    if let Some(msg) = self.notification(msg) {
                        return Step::Interim(msg);
                    }
                }
                UpstreamEvent::Request(request) => {
                    // Rare, and boxed so that every call's future stays small.
                    if let Some(msg) = Box::pin(self.server_request(request)).await {
                        return Step::Interim(msg);
                    }
                }
            }
        }
    }

    fn timed_out(&mut self) -> Step {
        self.exchange.cancel("Warden's upstream timeout passed");
        Step::Failed(Refusal::UpstreamTimeout(self.timeout))
    }

    fn notification(&self, mut msg: Message) -> Option<Message> {
        match msg.method()? {
            "notifications/progress" => {
                let token = self.client_token.clone()?;
                msg.data_params_mut().insert("progressToken".into(), token);
                Some(msg)
            }
            "notifications/message" if self.quiet_logs => None,
            // The upstream withdrew a request it relayed; the client knows it by Warden's id.
            "notifications/cancelled" => {
                let session = self.session.as_ref()?;
                let upstream_id = msg.params()?.get("requestId").and_then(Id::from_value)?;
                let ours = session.forget_server_request(&upstream_id)?;
                msg.data_params_mut()
                    .insert("requestId".into(), ours.to_value());
                Some(msg)
            }
            _ => Some(msg),
        }
    }

    /// Relays a server→client request to a legacy client that declared the capability; any
    /// other client cannot receive one, and the upstream is told so.
    async fn server_request(&self, request: ServerRequest) -> Option<Message> {
        let method = request.msg.method().unwrap_or_default().to_string();
        tracing::debug!(%method, "server request during a call");
        let session = match (&self.session, self.era) {
            (Some(s), Era::Legacy) => s,
            _ => {
                request.refuse(&format!("{method} cannot be relayed: the client speaks 2026-07-28, where servers ask through InputRequiredResult")).await;
                return None;
            }
        };
        if let Some(missing) = adapt::missing_capability(&request.msg, &session.client_capabilities)
        {
            request
                .refuse(&format!(
                    "the client did not declare the {missing} capability"
                ))
                .await;
            return None;
        }
        let mut msg = request.msg.clone();
        let id = session.relay_request(request);
        msg.set_id(&id);
        Some(msg)
    }

    /// The relay as frames of a streamed reply, starting with `first`. A failure is rendered in
    /// the era of the call.
    pub fn into_frames(self, gw: Arc<Gateway>, first: Message) -> BoxStream<'static, Frame> {
        let rest = stream::unfold(Some((self, gw)), |state| async move {
            let (mut relay, gw) = state?;
            match relay.step().await {
                Step::Interim(m) => Some((Frame::Interim(m), Some((relay, gw)))),
                Step::Reply(m) => Some((Frame::Final(m), None)),
                Step::Failed(r) => {
                    let rendered = r.render(&gw, relay.era, Some(&relay.client_id));
                    Some((Frame::Final(rendered.message), None))
                }
                Step::Stop => None,
            }
        });
        stream::once(async move { Frame::Interim(first) })
            .chain(rest)
            .boxed()
    }
}
