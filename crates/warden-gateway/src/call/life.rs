//! A call's lifetime: created when the request enters the pipeline, ended exactly once — by the
//! final message, by a cancel, or when the client goes away (the lifetime is dropped unended).
//!
//! It owns what every stage may rely on: the cancel token (a legacy session's
//! `notifications/cancelled` names the call by its id from the start, so a call held in any
//! stage can be cancelled), the deadline of the upstream part of the call, the registration that
//! keeps a session alive while the call is in flight, the request metrics (and the count of
//! calls in flight), and hooks that run at the end (the audit trail records the end there).

use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_mcp::{Id, Message, Method, codes};

use super::Cancel;
use crate::gateway::Gateway;
use crate::metrics::RequestLabels;
use crate::session::Session;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The final message went out; `outcome` says what it was (see [`outcome_of`]).
    Answered { outcome: &'static str },
    /// The client cancelled the call; nothing more is sent.
    Cancelled,
    /// The client went away before the final message.
    ClientGone,
}

impl End {
    pub fn outcome(self) -> &'static str {
        match self {
            End::Answered { outcome } => outcome,
            End::Cancelled => "cancelled",
            End::ClientGone => "client_gone",
        }
    }
}

type Hook = Box<dyn FnOnce(End, Duration) + Send + Sync>;

pub struct Lifetime {
    gw: Arc<Gateway>,
    started: Instant,
    method: Method,
    server: String,
    tool: String,
    /// `None` for a call nothing can cancel (one outside a legacy session, whose client cancels
    /// by going away).
    cancel: Option<Cancel>,
    /// The legacy session and the client's id of the call, while it is registered there.
    session: Option<(Arc<Session>, Id)>,
    budget: Duration,
    deadline: Instant,
    hooks: Vec<Hook>,
    ended: bool,
}

/// The upstream part of a call may take this long unless the route sets the upstream's own.
const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

impl Lifetime {
    /// Starts a call's lifetime. A call of a legacy session is registered with it at once, so a
    /// cancel finds it wherever it waits, and the session is not reaped while it is in flight.
    pub fn begin(
        gw: &Arc<Gateway>,
        method: Method,
        session: Option<Arc<Session>>,
        id: &Id,
    ) -> Self {
        let started = Instant::now();
        gw.metrics.calls_in_flight.inc();
        let (cancel, session) = match session {
            Some(s) => (Some(s.begin_call(id.clone())), Some((s, id.clone()))),
            None => (None, None),
        };
        Lifetime {
            gw: gw.clone(),
            started,
            method,
            server: String::new(),
            tool: String::new(),
            cancel,
            session,
            budget: DEFAULT_BUDGET,
            deadline: started + DEFAULT_BUDGET,
            hooks: Vec::new(),
            ended: false,
        }
    }

    /// Cancelled when the client cancels the call or its session ends; `None` when nothing
    /// can cancel the call (see [`cancelled`]).
    pub fn cancel_token(&self) -> Option<&Cancel> {
        self.cancel.as_ref()
    }

    /// Names the server and tool (or prompt, or resource) for the metrics.
    pub fn label(&mut self, server: &str, target: &str) {
        server.clone_into(&mut self.server);
        target.clone_into(&mut self.tool);
    }

    /// How long the upstream part of the call may take, counted from now.
    pub fn set_budget(&mut self, budget: Duration) {
        self.budget = budget;
        self.restart_budget();
    }

    /// Counts the budget again from now: a call that waited in a stage (for a person, say) gets
    /// the whole upstream budget once it goes on.
    pub fn restart_budget(&mut self) {
        self.deadline = Instant::now() + self.budget;
    }

    /// How long the call has been in flight.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.deadline)
    }

    /// Runs `hook` once, when the call ends, with how it ended and how long it took.
    pub fn on_end(&mut self, hook: impl FnOnce(End, Duration) + Send + Sync + 'static) {
        self.hooks.push(Box::new(hook));
    }

    /// Ends the call; only the first end counts.
    pub fn end(&mut self, end: End) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        self.gw.metrics.calls_in_flight.dec();
        if let Some((session, id)) = self.session.take() {
            session.end_call(&id);
            session.touch();
        }
        let metrics = &self.gw.metrics;
        metrics.count_request(RequestLabels {
            method: self.method.as_str(),
            server: std::mem::take(&mut self.server),
            tool: std::mem::take(&mut self.tool),
            outcome: end.outcome(),
        });
        metrics.observe_latency(self.method, elapsed);
        for hook in self.hooks.drain(..) {
            hook(end, elapsed);
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        // Dropped unended: the reply (or the handler waiting for it) was dropped, which is how a
        // client's going away reaches the call.
        let end = if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            End::Cancelled
        } else {
            End::ClientGone
        };
        self.end(end);
    }
}

/// Waits until `token` is cancelled: never, for a call without one.
pub async fn cancelled(token: Option<&Cancel>) {
    match token {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// What a final message says about the call, as a bounded metrics label.
pub fn outcome_of(msg: &Message) -> &'static str {
    if let Some(e) = msg.rpc_error() {
        return match e.code {
            codes::INVALID_PARAMS => "invalid_params",
            codes::METHOD_NOT_FOUND => "unknown_method",
            codes::RESOURCE_NOT_FOUND => "not_found",
            codes::UPSTREAM_UNAVAILABLE | codes::UPSTREAM_TIMEOUT => "upstream_error",
            codes::LIMITED => "limited",
            codes::CONSENT_REQUIRED | codes::URL_ELICITATION_REQUIRED => "consent_required",
            codes::AUDIT_UNAVAILABLE => "audit_unavailable",
            _ => "error",
        };
    }
    if msg.result_is_error() {
        "tool_error"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll_once(fut: std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> Poll<()> {
        fut.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_call_without_a_token_waits_for_no_cancel_and_one_with_a_token_for_its_cancel() {
        let mut never = pin!(cancelled(None));
        assert!(poll_once(never.as_mut()).is_pending());
        assert!(poll_once(never.as_mut()).is_pending());

        let token = Cancel::new();
        let mut waiting = pin!(cancelled(Some(&token)));
        assert!(poll_once(waiting.as_mut()).is_pending());
        token.cancel();
        assert!(poll_once(waiting.as_mut()).is_ready());
    }
}
