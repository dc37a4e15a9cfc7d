//! The connect stage: a call to an upstream whose users need their own account
//! (`oauth` in its config) goes on only once the caller has connected theirs, and with a
//! fresh token (see [`crate::connections`]).
//!
//! A caller without an account is asked exactly as for consent — the same link format, the
//! same page, the same delivery per client kind ([`super::consent`]): held with URL
//! elicitation (legacy), `input_required` with a sealed state (2026-07-28), or the link as text.
//! Once the account is connected the held call goes on; a retry finds the account.
//!
//! It runs after the policy decision (a call that is denied asks no one to connect anything)
//! and before consent, so that a person's approval of one call is not spent on a call that
//! cannot run yet. The token itself is attached by the user's upstream link on every request.

use std::sync::Arc;

use warden_mcp::era::Era;
use warden_policy::ConsentRule;

use super::consent::{
    Bound, ask_for, bound, declined, hold_modern, open_state, restore_upstream_state,
};
use super::later;
use super::local;
use crate::call::{Call, Next, Refusal, RequestStage, Staged, TargetKind};
use crate::consent::{Ask, AskError, Sealer, canonical};
use crate::gateway::Gateway;

pub struct Connect;

impl RequestStage for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        match call.target.as_ref() {
            Some(t) if gw.connections.oauth(t.upstream).is_some() => {
                later!(connect(gw, call).await)
            }
            _ => Staged::Now(Next::Continue),
        }
    }
}

async fn connect(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let Some(mut b) = bound(gw, call) else {
        return Next::Continue;
    };
    b.connect = true;
    let Some(upstream) = call.target.as_ref().map(|t| t.upstream) else {
        return Next::Continue;
    };
    let user = call.ctx.principal.user.clone();
    // A 2026-07-28 retry carrying this stage's sealed state.
    let state = match call.msg.param_str("requestState") {
        Some(text) if call.ctx.era == Era::Modern && Sealer::is_ours(text) => {
            match open_state(gw, call, &b, text) {
                Ok(state) if state.connect => Some(state),
                // Consent's: for the consent stage after this one.
                Ok(_) => None,
                Err(why) => return Next::Refuse(Refusal::ConsentState(why)),
            }
        }
        _ => None,
    };
    let connected = match gw.connections.ensure(upstream, &user).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target = %b.name, user = %user, error = %e, "cannot read or refresh the user's account");
            return Next::Refuse(Refusal::ConsentUnavailable {
                name: b.name,
                why: format!("Warden cannot use the account at {}: {e}", b.server),
            });
        }
    };
    if connected {
        if let Some(state) = &state {
            restore_upstream_state(call, state);
        }
        return Next::Continue;
    }
    if gw.connections.exchanges(upstream) {
        // Nothing to connect: the caller's own token is what is exchanged.
        let why = format!(
            "{} takes the caller's own token in exchange (RFC 8693), and {}'s was not accepted: sign in with the identity provider (an API key cannot be exchanged)",
            b.server, user
        );
        return Next::Refuse(Refusal::Upstream(
            crate::upstream::UpstreamError::Handshake(b.server, why),
        ));
    }
    // Completing an argument is not worth a sign-in: nothing to offer until connected.
    if call.target.as_ref().is_some_and(|t| {
        matches!(
            t.kind,
            TargetKind::PromptCompletion | TargetKind::ResourceCompletion
        )
    }) {
        return Next::Answer(local::no_completions(&call.id));
    }
    if let Some(why) = gw.consents.unavailable() {
        return Next::Refuse(Refusal::ConsentUnavailable {
            name: b.name,
            why: why.to_string(),
        });
    }
    if let Some(state) = state {
        if let Some(refused) = declined(call, &b, &state) {
            return refused;
        }
        restore_upstream_state(call, &state);
        return hold_modern(gw, call, b, state);
    }
    ask(gw, call, b).await
}

/// The caller's pending request to connect this upstream (one per caller and upstream), and
/// the caller asked to open it.
async fn ask(gw: &Arc<Gateway>, call: &mut Call, b: Bound) -> Next {
    let principal = call.ctx.principal.clone();
    let nothing = canonical::canonical(None);
    let ask = Ask {
        principal: &principal,
        server: &b.server,
        tool: &b.server,
        method: crate::store::CONNECT,
        digest: canonical::digest(&nothing),
        canonical: nothing,
        rule: ConsentRule::Once,
        policies: &[],
        approvers: &[],
    };
    let request = match gw.consents.ask(&ask).await {
        Ok(r) => r,
        Err(AskError::TooMany(n)) => {
            return Next::Refuse(Refusal::ConsentBusy(format!(
                "{n} requests are already waiting for {}; decide or let them expire first",
                principal.user
            )));
        }
        Err(AskError::Store(e)) => {
            return Next::Refuse(super::consent::store_failed(&b.name, &e));
        }
    };
    tracing::info!(event = "connection.asked", consent = %request.id, user = %principal.user, upstream = %b.server, "the caller is asked to connect an account");
    ask_for(gw, call, b, &request)
}
