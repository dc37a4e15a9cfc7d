//! The pipeline of one call, top to bottom. The request was authenticated by the identity layer
//! before its body was read (the principal is in the call); from there a call meets the request
//! stages of [`request_stages`] in order, then every message of its reply meets the reply stages
//! of [`REPLY_STAGES`], and the call's lifetime ends with the final message.
//!
//! A stage that holds a call (consent waits for a person) answers with a stream at once: the
//! held messages go out on it, kept alive, and the call goes on from the next stage when the
//! hold ends — the same call, answered on the same stream.

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderName, HeaderValue, StatusCode};
use warden_mcp::Message;

use crate::call::life::{cancelled, outcome_of};
use crate::call::refusal::status_of;
use crate::call::{
    Call, End, Frame, Held, Next, Refusal, Reply, ReplyStage, RequestStage, Staged, Verdict,
};
use crate::gateway::Gateway;
use crate::stage::adapt::AdaptEra;
use crate::stage::admit::Admit;
use crate::stage::audit::{AuditRequest, AuditResponse};
use crate::stage::connect::Connect;
use crate::stage::consent::AskConsent;
use crate::stage::decide::Decide;
use crate::stage::dlp::{DlpArguments, DlpReply};
use crate::stage::forward::Forward;
use crate::stage::params::RoutingParams;
use crate::stage::route::Route;

/// The request stages, in the order a call meets them. Where the next issues plug in is marked.
fn request_stages(gw: &Gateway) -> [Option<&dyn RequestStage>; 10] {
    [
        Some(&Admit),          // scopes (step-up) and rate limits of the principal
        Some(&Route),          // upstream and name; Warden's own methods and lists answered here
        Some(&Decide),         // Cedar: allow, deny (answered as unknown), consent
        Some(&Connect),        // the caller's own account at the upstream: connect, refresh
        Some(&AskConsent),     // consent: pause, approve in the browser, resume (issue 9)
        gw.waiting.as_deref(), // a waiting stage that tests install
        Some(&DlpArguments),   // DLP of the arguments: before the record, so it keeps no secret
        Some(&AuditRequest),   // the request record, durable before the call goes on
        // credentials: the upstream link attaches them (vault secrets in its headers, the
        // user's token that the connect stage keeps fresh); the agent's never go upstream
        Some(&RoutingParams), // modern `Mcp-Param-*` headers against the body
        Some(&Forward),       // to the upstream; what it sends back is the reply
    ]
}

/// The reply stages, in the order every message of a reply meets them: era adaptation, then DLP,
/// then the response record (last, so it records what the client is sent).
const REPLY_STAGES: &[&dyn ReplyStage] = &[&AdaptEra, &DlpReply, &AuditResponse];

/// A call's answer as the transport sends it.
// Made once per call and moved once into the response; boxing would cost more than the move.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    /// One message as a JSON body.
    Json {
        status: StatusCode,
        message: Message,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// Messages as an SSE stream, every one of them already through the reply stages.
    Stream {
        messages: BoxStream<'static, Message>,
        keepalive: bool,
    },
}

/// Where the request stages left a call.
enum Walk {
    Reply(Reply),
    /// Held by a stage; the call goes on from stage `next` when the hold ends.
    Hold(BoxStream<'static, Held>, usize),
}

impl Gateway {
    /// Carries one call through the pipeline.
    pub async fn call(self: &Arc<Self>, mut call: Box<Call>) -> Answer {
        match walk(self, &mut call, 0).await {
            Walk::Reply(reply) => answer(self.clone(), call, reply).await,
            Walk::Hold(held, next) => Answer::Stream {
                messages: hold(self.clone(), call, held, next),
                keepalive: true,
            },
        }
    }
}

/// Runs the request stages from `from` until one answers, refuses or holds the call.
async fn walk(gw: &Arc<Gateway>, call: &mut Call, from: usize) -> Walk {
    for (i, stage) in request_stages(gw).into_iter().enumerate().skip(from) {
        let Some(stage) = stage else { continue };
        // A decision made at once is looked at where it was returned: `Next` is as large as a
        // message, and moving it out first costs a copy per stage.
        let next = match stage.run(gw, call) {
            Staged::Now(Next::Continue) => continue,
            Staged::Now(next) => next,
            Staged::Later(later) => later.await,
        };
        match next {
            Next::Continue => {}
            Next::Answer(reply) => return Walk::Reply(reply),
            Next::Refuse(r) => return Walk::Reply(Reply::Refused(r)),
            Next::Hold(held) => return Walk::Hold(held, i + 1),
        }
    }
    // The forward stage answers every call that reaches it.
    let method = call.method.as_str().to_string();
    Walk::Reply(Reply::Refused(Refusal::MethodNotFound(method)))
}

/// A reply on its way out: its final message through the reply stages, and the call ended.
async fn answer(gw: Arc<Gateway>, mut call: Box<Call>, reply: Reply) -> Answer {
    match reply {
        Reply::Json(message) => {
            let message = finish(&gw, &mut call, message, None).await;
            let status = status_of(&message, call.ctx.era);
            Answer::Json {
                status,
                message,
                headers: Vec::new(),
            }
        }
        Reply::Refused(refusal) => {
            let rendered = refusal.render(&gw, call.ctx.era, Some(&call.id));
            let outcome = Some(rendered.outcome);
            let message = finish(&gw, &mut call, rendered.message, outcome).await;
            Answer::Json {
                status: rendered.status,
                message,
                headers: rendered.headers,
            }
        }
        Reply::Stream(s) => Answer::Stream {
            messages: outgoing(gw, call, s.frames),
            keepalive: s.keepalive,
        },
    }
}

/// Sends a final message through the reply stages and ends the call. A stage that refuses
/// replaces the message with the refusal, and the later stages see that instead.
async fn finish(
    gw: &Gateway,
    call: &mut Call,
    message: Message,
    mut outcome: Option<&'static str>,
) -> Message {
    let mut frame = Frame::Final(message);
    call.refused_as = outcome;
    for stage in REPLY_STAGES {
        let verdict = match stage.see(gw, call, &mut frame) {
            Staged::Now(Verdict::Pass) => continue,
            Staged::Now(verdict) => verdict,
            Staged::Later(later) => later.await,
        };
        if let Verdict::Refuse(r) = verdict {
            tracing::info!(stage = stage.name(), reason = %r, "reply refused");
            let rendered = r.render(gw, call.ctx.era, Some(&call.id));
            outcome = Some(rendered.outcome);
            call.refused_as = outcome;
            frame = Frame::Final(rendered.message);
        }
    }
    let message = frame.into_message();
    let outcome = outcome.unwrap_or_else(|| outcome_of(&message));
    call.life.end(End::Answered { outcome });
    message
}

/// An interim message through the reply stages: `None` when a stage withholds it. A refusal of
/// an interim message ends the call with that refusal.
async fn interim(
    gw: &Gateway,
    call: &mut Call,
    message: Message,
) -> Option<Result<Message, Message>> {
    let mut frame = Frame::Interim(message);
    for stage in REPLY_STAGES {
        let verdict = match stage.see(gw, call, &mut frame) {
            Staged::Now(Verdict::Pass) => continue,
            Staged::Now(verdict) => verdict,
            Staged::Later(later) => later.await,
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Withhold => return None,
            Verdict::Refuse(r) => {
                let rendered = r.render(gw, call.ctx.era, Some(&call.id));
                let outcome = Some(rendered.outcome);
                return Some(Err(finish(gw, call, rendered.message, outcome).await));
            }
        }
    }
    Some(Ok(frame.into_message()))
}

/// The frames of a streamed reply through the reply stages; the call ends with the final one.
/// The stream ends without a final message when the call was cancelled, and dropping it (the
/// client went away) ends the call too.
fn outgoing(
    gw: Arc<Gateway>,
    call: Box<Call>,
    frames: BoxStream<'static, Frame>,
) -> BoxStream<'static, Message> {
    stream::unfold(Some((gw, call, frames)), |state| async move {
        let (gw, mut call, mut frames) = state?;
        loop {
            match frames.next().await? {
                Frame::Interim(m) => match interim(&gw, &mut call, m).await {
                    None => {}
                    Some(Ok(m)) => return Some((m, Some((gw, call, frames)))),
                    Some(Err(last)) => return Some((last, None)),
                },
                Frame::Final(m) => return Some((finish(&gw, &mut call, m, None).await, None)),
            }
        }
    })
    .boxed()
}

/// A call waiting in a stage; it goes on from stage `next` when it resumes.
struct HeldCall {
    gw: Arc<Gateway>,
    call: Box<Call>,
    held: BoxStream<'static, Held>,
    next: usize,
}

/// What a held call's stream is doing.
enum Holding {
    Held(HeldCall),
    /// Resumed: the rest of the reply.
    Rest(BoxStream<'static, Message>),
}

/// A held call as a stream: the messages of the hold, then — once it resumes — the rest of the
/// pipeline and its reply. A cancel ends the wait, and so does the client going away (dropping
/// the stream drops the hold).
fn hold(
    gw: Arc<Gateway>,
    call: Box<Call>,
    held: BoxStream<'static, Held>,
    next: usize,
) -> BoxStream<'static, Message> {
    let start = Holding::Held(HeldCall {
        gw,
        call,
        held,
        next,
    });
    stream::unfold(Some(start), |state| async move {
        let mut state = state?;
        loop {
            let mut h = match state {
                Holding::Rest(mut rest) => {
                    let m = rest.next().await?;
                    return Some((m, Some(Holding::Rest(rest))));
                }
                Holding::Held(h) => h,
            };
            let event = tokio::select! {
                e = h.held.next() => e,
                () = cancelled(h.call.life.cancel_token()) => {
                    h.call.life.end(End::Cancelled);
                    return None;
                }
            };
            let reply = match event {
                // A hold that ends without resuming ends the call as if it were cancelled.
                None => return None,
                Some(Held::Interim(m)) => match interim(&h.gw, &mut h.call, m).await {
                    None => {
                        state = Holding::Held(h);
                        continue;
                    }
                    Some(Ok(m)) => return Some((m, Some(Holding::Held(h)))),
                    Some(Err(last)) => return Some((last, None)),
                },
                Some(Held::Refuse(r)) => Reply::Refused(r),
                Some(Held::Answer(m)) => Reply::Json(m),
                Some(Held::Resume) => {
                    // The stage's wait is over: let go of it before the call goes on.
                    h.held = Box::pin(stream::empty());
                    h.call.life.restart_budget();
                    match walk(&h.gw, &mut h.call, h.next).await {
                        Walk::Reply(reply) => reply,
                        Walk::Hold(held, next) => {
                            (h.held, h.next) = (held, next);
                            state = Holding::Held(h);
                            continue;
                        }
                    }
                }
            };
            let HeldCall { gw, call, .. } = h;
            match answer(gw, call, reply).await {
                Answer::Json { message, .. } => return Some((message, None)),
                Answer::Stream { messages, .. } => state = Holding::Rest(messages),
            }
        }
    })
    .boxed()
}
