//! Admission, the first stage of a call: the principal (authenticated by the identity layer
//! before any body was read) must hold the scopes the method needs (else 403 with a step-up
//! challenge), and stay within its rate limits (per principal, and per tool).

use std::sync::Arc;
use std::time::Instant;

use warden_mcp::{Message, Method};

use crate::call::{Call, Next, Refusal, RequestStage, Staged};
use crate::gateway::Gateway;
use crate::identity::Principal;

pub struct Admit;

impl RequestStage for Admit {
    fn name(&self) -> &'static str {
        "admit"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        Staged::Now(match admit(gw, &call.ctx.principal, &call.msg) {
            Ok(()) => Next::Continue,
            Err(r) => Next::Refuse(r),
        })
    }
}

/// Whether `principal` may send request `msg` now. Also asked of `initialize`, which opens a
/// session rather than making a call.
pub fn admit(gw: &Gateway, principal: &Principal, msg: &Message) -> Result<(), Refusal> {
    let method = msg.method().unwrap_or_default();
    let name = msg.param_str("name");
    if let Err(e) = gw.identity.check_scopes(principal, method, name) {
        tracing::info!(user = %principal.user, %method, reason = %e, "step-up needed");
        gw.metrics.reject("auth");
        return Err(Refusal::Auth(e));
    }
    let tool = name.filter(|_| method == Method::ToolsCall.as_str());
    let agent = principal.agent.as_deref().unwrap_or_default();
    if let Err(wait) = gw
        .limiter
        .check_call(&principal.user, agent, tool, Instant::now())
    {
        gw.metrics.reject("rate-principal");
        let who = tool.map_or_else(
            || "this principal".to_string(),
            |t| format!("{t} for this principal"),
        );
        return Err(Refusal::Limited { who, wait });
    }
    Ok(())
}
