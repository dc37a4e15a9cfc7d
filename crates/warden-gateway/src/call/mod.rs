//! A call as a value: what is known about the caller ([`CallCtx`]), the request as it moves
//! through the stages ([`Call`]), what a stage may do with it ([`Next`]), the reply and its
//! messages ([`Reply`], [`Frame`]), the call's [`Lifetime`], and the one refusal type
//! ([`Refusal`]) with its one renderer.
//!
//! The interfaces every stage implements are here too: a [`RequestStage`] continues, answers,
//! refuses or holds a call; a [`ReplyStage`] sees every message that goes back, interim and
//! final, and may change or withhold it. The order of the stages is in [`crate::pipeline`].

pub mod cancel;
pub mod life;
pub mod refusal;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;
use warden_mcp::era::Era;
use warden_mcp::member::Members;
use warden_mcp::{Id, Message, Method};

use crate::catalog::NameKind;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::session::Session;

pub use cancel::Cancel;
pub use life::{End, Lifetime};
pub use refusal::{Refusal, Rendered};

/// Everything known about the caller of one request.
#[derive(Clone)]
pub struct CallCtx {
    pub principal: Arc<Principal>,
    pub era: Era,
    pub session: Option<Arc<Session>>,
    /// Modern: this request's `_meta` capabilities; legacy: the session's.
    pub client_capabilities: Value,
    /// Modern: `_meta` logLevel; legacy: the session's `logging/setLevel`.
    pub log_level: Option<String>,
    /// Modern: the request's `Mcp-Param-*` headers, forwarded as the specification asks of
    /// intermediaries (after the body has been checked).
    pub param_headers: Vec<(String, String)>,
    /// The client's address.
    pub peer: Option<std::net::IpAddr>,
}

/// What kind of thing a routed call names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Tool,
    Prompt,
    /// A resource URI (`resources/read`, legacy subscribe and unsubscribe).
    Resource,
    /// The argument completion of a prompt.
    PromptCompletion,
    /// The argument completion of a resource template (by URI).
    ResourceCompletion,
}

/// The upstream and the name a call is aimed at, once routed.
#[derive(Clone, Debug)]
pub struct Target {
    pub upstream: usize,
    pub kind: TargetKind,
    /// The name (or URI) the client used.
    pub exposed: String,
    /// The name (or URI) the upstream knows.
    pub own: String,
}

impl Target {
    pub fn name_kind(&self) -> NameKind {
        match self.kind {
            TargetKind::Prompt => NameKind::Prompt,
            _ => NameKind::Tool,
        }
    }
}

/// One request on its way through the stages.
pub struct Call {
    pub ctx: CallCtx,
    pub id: Id,
    pub method: Method,
    /// The request as it came, changed by the stages before forwarding. The forward stage moves
    /// it to the upstream (no copy): after it, `msg` holds only the method
    /// ([`Message::method_only`]; the id is `id`).
    pub msg: Message,
    /// Set by the route stage for calls that go to one upstream.
    pub target: Option<Target>,
    /// Set by the decide stage when policy allows the call only with the user's approval.
    pub consent: Option<Consent>,
    /// The era of the upstream link that carried the call, once forwarded.
    pub upstream_era: Option<Era>,
    /// The policy decision the call goes on with (set by the decide stage, its grant by the
    /// consent stage), for the audit trail.
    pub decided: Option<crate::audit::records::Decided>,
    /// Links the call's audit records; empty when the trail is off.
    pub audit_id: String,
    /// Whether the request record is durable (written before forwarding).
    pub audit_requested: bool,
    /// The outcome of the refusal that answers the call, once rendered (the final message's
    /// JSON-RPC code alone would say `invalid_params` for a denial).
    pub refused_as: Option<&'static str>,
    /// What DLP found in the call's arguments and reply (types and paths, never values).
    pub dlp: Vec<crate::dlp::Found>,
    /// The data rules (`@dlp_results`, `@dlp_arguments` policies) that matched the call.
    pub data_rules: warden_policy::DataRules,
    pub life: Lifetime,
}

/// Why policy asks the user before this call runs.
#[derive(Clone, Debug)]
pub struct Consent {
    pub rule: warden_policy::ConsentRule,
    pub policies: Vec<String>,
    /// Groups whose members approve instead of the caller (`@approvers`); empty: the caller.
    pub approvers: Vec<String>,
}

impl Call {
    /// A request (never a notification or a response), its lifetime starting now.
    /// Boxed: a call is some 700 bytes, and it is handed from the transport to the pipeline, to
    /// its answer and into a streamed reply's state; each of those moves a pointer.
    pub fn new(gw: &Arc<Gateway>, ctx: CallCtx, msg: Message) -> Box<Call> {
        // Only requests reach the pipeline, and requests always have an id.
        let id = msg.id().unwrap_or(Id::Int(0));
        let method = Method::parse(msg.method().unwrap_or_default());
        let life = Lifetime::begin(gw, method, ctx.session.clone(), &id);
        Box::new(Call {
            ctx,
            id,
            method,
            msg,
            target: None,
            consent: None,
            upstream_era: None,
            decided: None,
            audit_id: gw.audit.call_id(),
            audit_requested: false,
            refused_as: None,
            dlp: Vec::new(),
            data_rules: Default::default(),
            life,
        })
    }

    /// The client's progress token (`_meta.progressToken`), if it asked for progress.
    pub fn progress_token(&self) -> Option<Value> {
        self.msg.meta_value("progressToken")
    }

    /// The call's `params.arguments`, if any.
    pub fn arguments(&self) -> Option<&Value> {
        self.msg.params().and_then(|p| p.member("arguments"))
    }
}

/// One message of a reply.
#[derive(Debug)]
pub enum Frame {
    /// Before the reply: a notification or a request to the client.
    Interim(Message),
    /// The reply; the call ends with it.
    Final(Message),
}

impl Frame {
    pub fn message(&self) -> &Message {
        match self {
            Frame::Interim(m) | Frame::Final(m) => m,
        }
    }

    pub fn message_mut(&mut self) -> &mut Message {
        match self {
            Frame::Interim(m) | Frame::Final(m) => m,
        }
    }

    pub fn into_message(self) -> Message {
        match self {
            Frame::Interim(m) | Frame::Final(m) => m,
        }
    }
}

/// How a call is answered.
pub enum Reply {
    /// The final message alone, as a JSON body.
    Json(Message),
    /// Refused by a stage: rendered by [`refusal::render`].
    Refused(Refusal),
    /// Messages as an SSE stream; it ends after a [`Frame::Final`], or without one when the call
    /// was cancelled or the client went away.
    Stream(Stream),
}

/// The messages of a streamed reply.
pub struct Stream {
    pub frames: BoxStream<'static, Frame>,
    /// Whether the stream is sent keep-alive comments while it is quiet: a held call, or a
    /// listening stream, may wait for minutes, and a vanished client is noticed by them.
    pub keepalive: bool,
}

impl Reply {
    pub fn result(id: &Id, result: Value) -> Reply {
        Reply::Json(Message::response(id, result))
    }

    pub fn stream(frames: BoxStream<'static, Frame>) -> Reply {
        Reply::Stream(Stream {
            frames,
            keepalive: false,
        })
    }
}

/// What a request stage did with a call.
pub enum Next {
    /// On to the next stage (the stage may have changed the call).
    Continue,
    /// The call is answered here; no later request stage runs.
    Answer(Reply),
    /// The call is refused here.
    Refuse(Refusal),
    /// The call waits in this stage. The stream's messages go to the client at once (on an SSE
    /// stream kept alive); when it yields [`Held::Resume`] the call goes on to the next stage.
    Hold(BoxStream<'static, Held>),
}

/// What a held call produces while it waits.
pub enum Held {
    /// A message for the client while the call waits (progress, the gateway's own request).
    Interim(Message),
    /// The wait is over: the call goes on to the next stage.
    Resume,
    /// The wait ended the call with this refusal.
    Refuse(Refusal),
    /// The wait ended the call with this answer (a 2026-07-28 `input_required` that asks the
    /// client to come back, say); no later stage runs.
    Answer(Message),
}

/// What a stage made of a call or a message: decided at once, or a future to wait for.
///
/// Most stages decide at once on most calls — nothing to ask, to write or to scan in the
/// configuration at hand — and deciding at once spares a boxed future per stage and call.
pub enum Staged<'a, T> {
    Now(T),
    Later(BoxFuture<'a, T>),
}

/// A stage on the way in. It runs once per call, in the order of [`crate::pipeline`].
pub trait RequestStage: Send + Sync {
    fn name(&self) -> &'static str;

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next>;
}

/// What a reply stage decided about one message.
pub enum Verdict {
    /// Send it (as the stage may have changed it).
    Pass,
    /// Do not send this interim message. (A final message cannot be withheld: refuse instead.)
    Withhold,
    /// Replace the message with this refusal; the call ends.
    Refuse(Refusal),
}

/// A stage on the way out: it sees every message of the reply, interim and final.
pub trait ReplyStage: Send + Sync {
    fn name(&self) -> &'static str;

    fn see<'a>(
        &'a self,
        gw: &'a Gateway,
        call: &'a mut Call,
        frame: &'a mut Frame,
    ) -> Staged<'a, Verdict>;
}
