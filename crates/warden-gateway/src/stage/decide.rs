//! The decide stage: Cedar policy on the routed call, for tools, prompts, resources and
//! completions alike — one mapping of allow, deny and consent. A denied name is answered exactly
//! like an unknown one, and only after the decision is the upstream asked whether the name
//! exists, so the two cannot be told apart.

use std::sync::Arc;

use serde_json::Value;
use warden_mcp::Method;
use warden_policy::{Action, Outcome};

use super::{later, local};
use crate::audit::records::Decided;
use crate::call::{
    Call, CallCtx, Consent, Next, Refusal, RequestStage, Staged, Target, TargetKind,
};
use crate::catalog::NameKind;
use crate::gateway::Gateway;
use crate::policy::Ask;

pub struct Decide;

impl RequestStage for Decide {
    fn name(&self) -> &'static str {
        "decide"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        later!(decide(gw, call).await)
    }
}

/// The policy action of a routed call.
fn action(method: Method, kind: TargetKind) -> Action {
    match (method, kind) {
        (_, TargetKind::Tool) => Action::CallTool,
        (_, TargetKind::Prompt | TargetKind::PromptCompletion) => Action::GetPrompt,
        (_, TargetKind::ResourceCompletion) => Action::Complete,
        (Method::ResourcesRead, TargetKind::Resource) => Action::ReadResource,
        (_, TargetKind::Resource) => Action::Subscribe,
    }
}

async fn decide(gw: &Gateway, call: &mut Call) -> Next {
    let Some(target) = call.target.as_ref() else {
        return Next::Continue;
    };
    let action = action(call.method, target.kind);
    let arguments = || call.arguments();
    let question = ask(
        gw,
        &call.ctx,
        action,
        target.upstream,
        &target.own,
        Some(&arguments),
    );
    // A prompt's completion is offered wherever the prompt is visible; a resource's only where
    // policy allows completing it outright (there is nobody to ask for consent mid-typing).
    match target.kind {
        TargetKind::PromptCompletion => {
            return if gw.policies.visible(&question) {
                if gw.policies.has_data_rules() {
                    call.data_rules = gw.policies.decide(&question).data;
                }
                Next::Continue
            } else {
                Next::Refuse(hidden(target, false))
            };
        }
        TargetKind::ResourceCompletion => {
            let decision = gw.policies.decide(&question);
            return match decision.outcome {
                Outcome::Allow => {
                    call.data_rules = decision.data;
                    Next::Continue
                }
                _ => Next::Answer(local::no_completions(&call.id)),
            };
        }
        _ => {}
    }
    let mut decision = gw.policies.decide(&question);
    gw.metrics.decision(&decision.outcome);
    call.data_rules = std::mem::take(&mut decision.data);
    if decision.outcome == Outcome::Deny {
        if gw.catalog.knows(target.name_kind(), &target.exposed) {
            call.life
                .label(&gw.pool.config(target.upstream).name, &target.own);
        }
        let p = &call.ctx.principal;
        tracing::info!(user = %p.user, agent = ?p.agent, target = %target.exposed, policies = ?decision.policies, "denied by policy");
        let refusal = hidden(target, true);
        call.decided = Some(Decided {
            outcome: "deny",
            policies: decision.policies,
            grant: None,
        });
        return Next::Refuse(refusal);
    }
    // Only now, so a denied name and a missing one cannot be told apart. Known names are
    // answered from the catalog; reading the upstream's list is boxed.
    if matches!(target.kind, TargetKind::Tool | TargetKind::Prompt) {
        let kind = target.name_kind();
        let known = gw.catalog.knows(kind, &target.exposed)
            || Box::pin(gw.exists(&call.ctx, target.upstream, kind, &target.exposed)).await;
        if target.kind == TargetKind::Tool
            && let Some(why) = gw.integrity.withheld(gw, &target.exposed).await
        {
            let name = target.exposed.clone();
            return Next::Refuse(Refusal::ToolWithheld { name, why });
        }
        let unconnected = !known
            && gw.connections.oauth(target.upstream).is_some()
            && matches!(
                gw.connections
                    .ensure(target.upstream, &call.ctx.principal.user)
                    .await,
                Ok(false)
            );
        // A caller without their own account cannot read the upstream's list yet: the connect
        // stage asks them to connect, and the upstream answers for the name.
        if !known && !unconnected {
            // A name Warden could not check because its upstream cannot be reached (down, or a
            // credential missing) gets the upstream's error, which says what to fix.
            let ctx = &call.ctx;
            if let Err(e) = gw
                .pool
                .link(target.upstream, &ctx.principal.user, ctx.era)
                .await
            {
                return Next::Refuse(Refusal::Upstream(e));
            }
            return Next::Refuse(hidden(target, false));
        }
        // Only names an upstream listed become metrics labels: a client can send any name.
        call.life
            .label(&gw.pool.config(target.upstream).name, &target.own);
    }
    let outcome = match decision.outcome {
        Outcome::Consent(rule) => {
            call.consent = Some(Consent {
                rule,
                policies: decision.policies.clone(),
                approvers: decision.approvers,
            });
            "consent"
        }
        _ => "allow",
    };
    call.decided = Some(Decided {
        outcome,
        policies: decision.policies,
        grant: None,
    });
    Next::Continue
}

/// The answer to a call for something this caller may not see (`denied`) or that does not exist.
fn hidden(target: &Target, denied: bool) -> Refusal {
    let kind = match target.kind {
        TargetKind::Tool => NameKind::Tool,
        TargetKind::Prompt | TargetKind::PromptCompletion => NameKind::Prompt,
        TargetKind::Resource | TargetKind::ResourceCompletion => {
            return Refusal::ResourceNotFound(target.exposed.clone());
        }
    };
    let name = target.exposed.clone();
    if denied {
        Refusal::Denied { kind, name }
    } else {
        Refusal::Unknown { kind, name }
    }
}

/// The question to the policies about `target` of upstream `upstream`.
pub fn ask<'a>(
    gw: &'a Gateway,
    ctx: &'a CallCtx,
    action: Action,
    upstream: usize,
    target: &'a str,
    arguments: Option<&'a (dyn Fn() -> Option<&'a Value> + Sync)>,
) -> Ask<'a> {
    let config = gw.pool.config(upstream);
    Ask {
        principal: &ctx.principal,
        action,
        server: &config.name,
        target,
        tags: config.tags.get(target),
        arguments,
        client_ip: ctx.peer,
        era: ctx.era.as_str(),
    }
}
