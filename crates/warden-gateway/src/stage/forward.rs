//! The forward stage, the last on the way in: the call goes to its upstream on a link of the
//! pool, under the upstream's own name, and what comes back becomes the reply — one JSON
//! message, or a stream of frames when the upstream sends anything before its reply.

use std::sync::Arc;

use futures::stream;
use serde_json::json;
use warden_mcp::Message;
use warden_mcp::era::Era;

use super::later;
use super::relay::{Relay, Step};
use crate::call::{Call, Next, Refusal, Reply, RequestStage, Staged, Target, TargetKind};
use crate::gateway::Gateway;

pub struct Forward;

impl RequestStage for Forward {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        later!(forward(gw, call).await)
    }
}

/// The request as the upstream must see it: under the name the upstream knows.
fn for_upstream(mut msg: Message, target: &Target) -> Message {
    match target.kind {
        // In the text of `params`, while it is kept as text.
        TargetKind::Tool | TargetKind::Prompt => msg.set_param_str("name", &target.own),
        TargetKind::PromptCompletion => {
            msg.data_params_mut().insert(
                "ref".into(),
                json!({ "type": "ref/prompt", "name": target.own }),
            );
        }
        TargetKind::Resource | TargetKind::ResourceCompletion => {}
    }
    msg
}

async fn forward(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let Some(target) = &call.target else {
        // Every method that reaches this stage was routed to a target.
        let method = call.method.as_str().to_string();
        return Next::Refuse(Refusal::MethodNotFound(method));
    };
    let client_token = call.progress_token();
    // The request goes upstream moved, not copied: from here on the call keeps its id and method.
    let rest = Message::method_only(call.msg.method().unwrap_or_default());
    let msg = for_upstream(std::mem::replace(&mut call.msg, rest), target);
    let ctx = &call.ctx;
    let link = match gw
        .pool
        .link(target.upstream, &ctx.principal.user, ctx.era)
        .await
    {
        Ok(link) => link,
        Err(e) => return Next::Refuse(Refusal::Upstream(e)),
    };
    let exchange = link.call_with(msg, &ctx.client_capabilities, &ctx.param_headers);
    let exchange = match exchange.await {
        Ok(x) => x,
        Err(e) => return Next::Refuse(Refusal::Upstream(e)),
    };
    call.upstream_era = Some(link.info().era);
    let mut relay = Relay {
        exchange,
        era: ctx.era,
        session: ctx.session.clone(),
        quiet_logs: ctx.era == Era::Modern && ctx.log_level.is_none(),
        client_id: call.id.clone(),
        client_token,
        cancel: call.life.cancel_token().cloned(),
        deadline: call.life.deadline(),
        timeout: call.life.budget(),
        stepped: false,
    };
    Next::Answer(match relay.step().await {
        Step::Reply(m) => Reply::Json(m),
        Step::Failed(r) => Reply::Refused(r),
        Step::Interim(first) => Reply::stream(relay.into_frames(gw.clone(), first)),
        Step::Stop => Reply::stream(Box::pin(stream::empty())),
    })
}
