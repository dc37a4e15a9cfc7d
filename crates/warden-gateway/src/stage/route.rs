//! Routing: which upstream a call goes to and the name it has there. Warden's own methods
//! (`ping`, `server/discover`, `logging/setLevel`, `subscriptions/listen`) and the lists merged
//! across upstreams are answered here; a method the era does not have is not found.

use std::sync::Arc;

use serde_json::Value;
use warden_mcp::Method;

use super::{later, local};
use crate::call::{Call, Next, Refusal, Reply, RequestStage, Staged, Target, TargetKind};
use crate::catalog::NameKind;
use crate::gateway::Gateway;

pub struct Route;

impl RequestStage for Route {
    fn name(&self) -> &'static str {
        "route"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        later!(route(gw, call).await)
    }
}

async fn route(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let method = call.method;
    if !method.in_era(call.ctx.era) {
        let name = call.msg.method().unwrap_or_default().to_string();
        return Next::Refuse(Refusal::MethodNotFound(name));
    }
    let target = match method {
        Method::Ping => return Next::Answer(Reply::result(&call.id, serde_json::json!({}))),
        Method::Discover => return Next::Answer(Reply::result(&call.id, gw.discover())),
        Method::SetLevel => return Box::pin(local::set_level(gw, call)).await,
        Method::Listen => return Next::Answer(gw.listen(&call.ctx, &call.id, &call.msg)),
        m if m.list().is_some() => {
            let reply = Box::pin(gw.list(&call.ctx, &call.id, m, &call.msg)).await;
            return Next::Answer(reply);
        }
        Method::ToolsCall | Method::PromptsGet => named(gw, call),
        Method::ResourcesRead | Method::Subscribe | Method::Unsubscribe => {
            let uri = call.msg.param_str("uri").unwrap_or_default().to_string();
            match gw.catalog.resource_owner(&uri) {
                Some(upstream) => Ok(resource(upstream, uri)),
                None => match Box::pin(gw.resource_owner(&call.ctx, &uri)).await {
                    Some(upstream) => Ok(resource(upstream, uri)),
                    None => Err(Refusal::ResourceNotFound(uri)),
                },
            }
        }
        Method::Complete => return Box::pin(completion(gw, call)).await,
        _ => {
            let name = call.msg.method().unwrap_or_default().to_string();
            return Next::Refuse(Refusal::MethodNotFound(name));
        }
    };
    match target {
        Ok(target) => {
            call.life
                .set_budget(gw.pool.config(target.upstream).timeout);
            call.target = Some(target);
            Next::Continue
        }
        Err(refusal) => Next::Refuse(refusal),
    }
}

fn resource(upstream: usize, uri: String) -> Target {
    Target {
        upstream,
        kind: TargetKind::Resource,
        own: uri.clone(),
        exposed: uri,
    }
}

/// A tool or prompt, by the name the client sees.
fn named(gw: &Gateway, call: &Call) -> Result<Target, Refusal> {
    let (kind, name_kind) = match call.method {
        Method::ToolsCall => (TargetKind::Tool, NameKind::Tool),
        _ => (TargetKind::Prompt, NameKind::Prompt),
    };
    let name = call.msg.param_str("name").unwrap_or_default().to_string();
    match gw.catalog.resolve(name_kind, &name) {
        Some((upstream, own)) => Ok(Target {
            upstream,
            kind,
            exposed: name,
            own,
        }),
        None => Err(Refusal::Unknown {
            kind: name_kind,
            name,
        }),
    }
}

/// `completion/complete` names a prompt or a resource (template) to complete arguments of.
async fn completion(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let reference = call
        .msg
        .params()
        .and_then(|p| p.get("ref"))
        .cloned()
        .unwrap_or(Value::Null);
    let field = |k: &str| {
        reference
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let target = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = field("name");
            match gw.catalog.resolve(NameKind::Prompt, &name) {
                Some((upstream, own)) => Target {
                    upstream,
                    kind: TargetKind::PromptCompletion,
                    exposed: name,
                    own,
                },
                None => {
                    return Next::Refuse(Refusal::Unknown {
                        kind: NameKind::Prompt,
                        name,
                    });
                }
            }
        }
        Some("ref/resource") => {
            let uri = field("uri");
            match gw.resource_owner(&call.ctx, &uri).await {
                Some(upstream) => Target {
                    upstream,
                    kind: TargetKind::ResourceCompletion,
                    own: String::new(),
                    exposed: uri,
                },
                None => return Next::Answer(local::no_completions(&call.id)),
            }
        }
        _ => {
            return Next::Refuse(Refusal::InvalidParams(
                "completion/complete needs params.ref of type ref/prompt or ref/resource".into(),
            ));
        }
    };
    call.life
        .set_budget(gw.pool.config(target.upstream).timeout);
    call.target = Some(target);
    Next::Continue
}
