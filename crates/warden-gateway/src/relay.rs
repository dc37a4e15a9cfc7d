//! Carries one upstream call back to the client: its notifications, the server's requests to
//! the client (remapped to ids Warden owns), and the final reply under the client's own id.

use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warden_mcp::era::Era;
use warden_mcp::{Id, Message, RpcError, codes};

use crate::adapt;
use crate::pipeline::CallCtx;
use crate::upstream::{Exchange, ServerRequest, UpstreamEvent};

pub struct Relay {
    pub exchange: Exchange,
    pub ctx: CallCtx,
    pub method: String,
    pub client_id: Id,
    pub client_token: Option<Value>,
    pub cancel: CancellationToken,
    pub deadline: Instant,
    pub timeout: Duration,
    pub upstream_era: Era,
}

/// What the next step of a relay produced.
pub enum Step {
    /// A message for the client before the reply.
    Interim(Message),
    /// The final reply; the relay is over.
    Reply(Message),
    /// The call was cancelled or the client is gone; nothing more is sent.
    Stop,
}

impl Relay {
    pub async fn step(&mut self) -> Step {
        loop {
            let event = tokio::select! {
                e = self.exchange.next() => e,
                () = self.cancel.cancelled() => {
                    self.exchange.cancel("cancelled by the client");
                    return Step::Stop;
                }
                () = tokio::time::sleep_until(self.deadline) => {
                    self.exchange.cancel("Warden's upstream timeout passed");
                    let e = RpcError::new(codes::UPSTREAM_TIMEOUT, format!("the upstream did not answer within {:?}", self.timeout));
                    return Step::Reply(Message::error(Some(&self.client_id), &e));
                }
            };
            let Some(event) = event else {
                let e = RpcError::new(
                    codes::UPSTREAM_UNAVAILABLE,
                    "the upstream link closed during the call",
                );
                return Step::Reply(Message::error(Some(&self.client_id), &e));
            };
            match event {
                UpstreamEvent::Done(mut reply) => {
                    reply.set_id(&self.client_id);
                    adapt::reply_for_client(&self.method, &self.ctx, self.upstream_era, &mut reply);
                    return Step::Reply(reply);
                }
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

    fn notification(&self, mut msg: Message) -> Option<Message> {
        match msg.method()? {
            "notifications/progress" => {
                let token = self.client_token.clone()?;
                msg.params_mut().insert("progressToken".into(), token);
                Some(msg)
            }
            // A modern client hears log messages only when it asked for them in `_meta`.
            "notifications/message"
                if self.ctx.era == Era::Modern && self.ctx.log_level.is_none() =>
            {
                None
            }
            // The upstream withdrew a request it relayed; the client knows it by Warden's id.
            "notifications/cancelled" => {
                let session = self.ctx.session.as_ref()?;
                let upstream_id = msg.params()?.get("requestId").and_then(Id::from_value)?;
                let ours = session.forget_server_request(&upstream_id)?;
                msg.params_mut().insert("requestId".into(), ours.to_value());
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
        let session = match (&self.ctx.session, self.ctx.era) {
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

    /// The relay as a stream of messages for an SSE body, starting with `first`.
    pub fn into_stream(self, first: Message) -> BoxStream<'static, Message> {
        let rest = stream::unfold(Some(self), |relay| async move {
            let mut relay = relay?;
            match relay.step().await {
                Step::Interim(m) => Some((m, Some(relay))),
                Step::Reply(m) => {
                    relay.finish();
                    Some((m, None))
                }
                Step::Stop => {
                    relay.finish();
                    None
                }
            }
        });
        stream::once(async move { first }).chain(rest).boxed()
    }

    pub fn finish(&self) {
        if let Some(s) = &self.ctx.session {
            s.end_call(&self.client_id);
        }
    }
}
