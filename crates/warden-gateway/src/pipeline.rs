//! The pipeline of one request, top to bottom: what Warden answers itself, and how a call
//! finds its upstream, is forwarded, and comes back.
//!
//! Later stages (policy, consent, audit, credentials, DLP) plug in between `route` and
//! `forward` and on the reply, without reshaping this function.

use std::sync::Arc;

use futures::stream::{self, BoxStream};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_mcp::era::{Era, MODERN_VERSION};
use warden_mcp::{Id, Message, RpcError, codes};

use warden_policy::{Action, ConsentRule, Outcome};

use crate::catalog::NameKind;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::policy::Ask;
use crate::relay::{Relay, Step};
use crate::session::Session;

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

/// How a request is answered.
pub enum Reply {
    /// One JSON-RPC message as a JSON body.
    Json(Message),
    /// Messages as an SSE stream; the last is the reply unless the call was cancelled.
    Stream(BoxStream<'static, Message>),
}

impl Reply {
    pub fn error(id: &Id, code: i64, message: impl Into<String>) -> Reply {
        Reply::Json(Message::error(Some(id), &RpcError::new(code, message)))
    }

    pub fn result(id: &Id, result: Value) -> Reply {
        Reply::Json(Message::response(id, result))
    }
}

/// The answer to a call for a name no upstream (visible to this caller) has. Hidden, denied and
/// unknown names must all get exactly this answer.
/// The answer to a call that policy allows only with the user's approval. Until the consent
/// flow exists, a clear refusal that names the policies.
fn consent_required(id: &Id, name: &str, rule: ConsentRule, policies: &[String]) -> Reply {
    let scope = match rule {
        ConsentRule::Once => "this call".to_string(),
        ConsentRule::For(d) => format!("{name} for {}s", d.as_secs()),
    };
    let text = format!(
        "approval required: {} require(s) the user's consent for {scope} before {name} runs",
        policies.join(", ")
    );
    let e = RpcError::new(codes::CONSENT_REQUIRED, text)
        .with_data(json!({ "policies": policies, "name": name }));
    Reply::Json(Message::error(Some(id), &e))
}

pub fn unknown_name(id: &Id, kind: NameKind, name: &str) -> Reply {
    let what = match kind {
        NameKind::Tool => "tool",
        NameKind::Prompt => "prompt",
    };
    Reply::error(id, codes::INVALID_PARAMS, format!("Unknown {what}: {name}"))
}

impl Gateway {
    /// Answers one request (never a notification or a response).
    ///
    /// Each kind of request is its own boxed future: the futures of all of them inline would make
    /// every request's future as large as the largest, and that is copied whenever it moves.
    pub async fn handle(&self, ctx: CallCtx, msg: Message) -> Reply {
        // Only called for requests, which always have an id.
        let id = msg.id().unwrap_or(Id::Int(0));
        let method = msg.method().unwrap_or_default().to_string();
        match (method.as_str(), ctx.era) {
            ("ping", Era::Legacy) => Reply::result(&id, json!({})),
            ("server/discover", Era::Modern) => Reply::result(&id, self.discover()),
            ("logging/setLevel", Era::Legacy) => Box::pin(self.set_level(&ctx, &id, &msg)).await,
            ("tools/list" | "prompts/list" | "resources/list" | "resources/templates/list", _) => {
                Box::pin(self.list(&ctx, &id, &method, &msg)).await
            }
            ("tools/call" | "prompts/get", _) => Box::pin(self.call_named(ctx, &id, msg)).await,
            ("resources/read", _)
            | ("resources/subscribe" | "resources/unsubscribe", Era::Legacy) => {
                Box::pin(self.call_resource(ctx, &id, msg)).await
            }
            ("completion/complete", _) => Box::pin(self.complete(ctx, &id, msg)).await,
            ("subscriptions/listen", Era::Modern) => self.listen(&ctx, &id, &msg),
            _ => Reply::error(
                &id,
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            ),
        }
    }

    /// `tools/call` and `prompts/get`: route by name, decide, check the modern routing
    /// parameters, forward. A name that is unknown, hidden or denied gets one and the same answer.
    async fn call_named(&self, ctx: CallCtx, id: &Id, mut msg: Message) -> Reply {
        let tool = msg.method() == Some("tools/call");
        let (kind, action) = if tool {
            (NameKind::Tool, Action::CallTool)
        } else {
            (NameKind::Prompt, Action::GetPrompt)
        };
        let name = msg.param_str("name").unwrap_or_default().to_string();
        let Some((upstream, own_name)) = self.catalog.resolve(kind, &name) else {
            return unknown_name(id, kind, &name);
        };
        let arguments = msg.params().and_then(|p| p.get("arguments"));
        let decision = self
            .policies
            .decide(&self.ask(&ctx, action, upstream, &own_name, arguments));
        self.metrics.decision(&decision.outcome);
        if decision.outcome == Outcome::Deny {
            tracing::info!(user = %ctx.principal.user, agent = ?ctx.principal.agent, %name, policies = ?decision.policies, "denied by policy");
            return unknown_name(id, kind, &name);
        }
        // Only now, so a denied name and a missing one cannot be told apart.
        // Known names are answered from the catalog; reading the upstream's list is boxed.
        if !(self.catalog.knows(kind, &name)
            || Box::pin(self.exists(&ctx, upstream, kind, &name)).await)
        {
            return unknown_name(id, kind, &name);
        }
        if let Outcome::Consent(rule) = decision.outcome {
            return consent_required(id, &name, rule, &decision.policies);
        }
        if tool && ctx.era == Era::Modern {
            let bindings = self.catalog.params(&name).unwrap_or_default();
            let header = |h: &str| {
                ctx.param_headers
                    .iter()
                    .find(|(k, _)| k == h)
                    .map(|(_, v)| v.as_str())
            };
            if let Err(e) = warden_mcp::params::check(&bindings, arguments, header) {
                return Reply::error(id, codes::HEADER_MISMATCH, e.to_string());
            }
        }
        msg.params_mut().insert("name".into(), own_name.into());
        self.forward(ctx, upstream, msg).await
    }

    /// `resources/read` and (legacy) `resources/subscribe`/`unsubscribe`: route by URI, decide,
    /// forward. An unknown or denied resource gets the same answer.
    async fn call_resource(&self, ctx: CallCtx, id: &Id, msg: Message) -> Reply {
        let uri = msg.param_str("uri").unwrap_or_default().to_string();
        let owner = match self.catalog.resource_owner(&uri) {
            Some(known) => Some(known),
            None => Box::pin(self.resource_owner(&ctx, &uri)).await,
        };
        let Some(upstream) = owner else {
            return self.resource_not_found(&ctx, id, &uri);
        };
        let action = if msg.method() == Some("resources/read") {
            Action::ReadResource
        } else {
            Action::Subscribe
        };
        let decision = self
            .policies
            .decide(&self.ask(&ctx, action, upstream, &uri, None));
        self.metrics.decision(&decision.outcome);
        match decision.outcome {
            Outcome::Allow => self.forward(ctx, upstream, msg).await,
            Outcome::Consent(rule) => consent_required(id, &uri, rule, &decision.policies),
            Outcome::Deny => {
                tracing::info!(user = %ctx.principal.user, %uri, policies = ?decision.policies, "denied by policy");
                self.resource_not_found(&ctx, id, &uri)
            }
        }
    }

    /// The question to the policies about `target` of upstream `upstream`.
    pub(crate) fn ask<'a>(
        &'a self,
        ctx: &'a CallCtx,
        action: Action,
        upstream: usize,
        target: &'a str,
        arguments: Option<&'a Value>,
    ) -> Ask<'a> {
        let config = self.pool.config(upstream);
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

    /// Sends a request to one upstream and relays what comes back.
    pub async fn forward(&self, ctx: CallCtx, upstream: usize, msg: Message) -> Reply {
        let id = msg.id().unwrap_or(Id::Int(0));
        let method = msg.method().unwrap_or_default().to_string();
        let client_token = msg.meta().and_then(|m| m.get("progressToken")).cloned();
        let config = self.pool.config(upstream);
        // Registered first, so a cancel that arrives while the link opens is not lost.
        let cancel = match &ctx.session {
            Some(s) => s.begin_call(id.clone()),
            None => CancellationToken::new(),
        };
        let end = |reply: Message| {
            if let Some(s) = &ctx.session {
                s.end_call(&id);
            }
            Reply::Json(reply)
        };
        let link = match self.pool.link(upstream, &ctx.principal.user, ctx.era).await {
            Ok(link) => link,
            Err(e) => return end(Message::error(Some(&id), &e.to_rpc())),
        };
        let call = link.call_with(msg, &ctx.client_capabilities, &ctx.param_headers);
        let exchange = match call.await {
            Ok(x) => x,
            Err(e) => return end(Message::error(Some(&id), &e.to_rpc())),
        };
        let mut relay = Relay {
            exchange,
            method,
            client_id: id,
            client_token,
            cancel,
            deadline: tokio::time::Instant::now() + config.timeout,
            timeout: config.timeout,
            upstream_era: link.info().era,
            ctx,
        };
        match relay.step().await {
            Step::Reply(m) => {
                relay.finish();
                Reply::Json(m)
            }
            Step::Interim(first) => Reply::Stream(relay.into_stream(first)),
            Step::Stop => {
                relay.finish();
                Reply::Stream(Box::pin(stream::empty()))
            }
        }
    }

    async fn set_level(&self, ctx: &CallCtx, id: &Id, msg: &Message) -> Reply {
        let Some(level) = msg.param_str("level") else {
            return Reply::error(
                id,
                codes::INVALID_PARAMS,
                "logging/setLevel needs params.level",
            );
        };
        if let Some(s) = &ctx.session
            && let Ok(mut l) = s.log_level.lock()
        {
            *l = Some(level.to_string());
        }
        for upstream in 0..self.pool.len() {
            let Ok(link) = self
                .pool
                .link(upstream, &ctx.principal.user, Era::Legacy)
                .await
            else {
                continue;
            };
            if link.info().era != Era::Legacy || link.info().capabilities.get("logging").is_none() {
                continue;
            }
            let request =
                Message::request(Id::Int(0), "logging/setLevel", json!({ "level": level }));
            if let Ok(mut x) = link.call(request, &ctx.client_capabilities).await {
                while let Some(e) = x.next().await {
                    if matches!(e, crate::upstream::UpstreamEvent::Done(_)) {
                        break;
                    }
                }
            }
        }
        Reply::result(id, json!({}))
    }

    async fn complete(&self, ctx: CallCtx, id: &Id, mut msg: Message) -> Reply {
        let reference = msg
            .params()
            .and_then(|p| p.get("ref"))
            .cloned()
            .unwrap_or(Value::Null);
        let upstream = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let visible = |(upstream, own): &(usize, String)| {
                    self.policies
                        .visible(&self.ask(&ctx, Action::GetPrompt, *upstream, own, None))
                };
                match self.catalog.resolve(NameKind::Prompt, name).filter(visible) {
                    Some((upstream, own)) => {
                        msg.params_mut()
                            .insert("ref".into(), json!({ "type": "ref/prompt", "name": own }));
                        Some(upstream)
                    }
                    None => return unknown_name(id, NameKind::Prompt, name),
                }
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let owner = self.resource_owner(&ctx, &uri).await;
                owner.filter(|u| {
                    self.policies
                        .decide(&self.ask(&ctx, Action::Complete, *u, "", None))
                        .outcome
                        == Outcome::Allow
                })
            }
            _ => {
                return Reply::error(
                    id,
                    codes::INVALID_PARAMS,
                    "completion/complete needs params.ref of type ref/prompt or ref/resource",
                );
            }
        };
        match upstream {
            Some(u) => self.forward(ctx, u, msg).await,
            None => Reply::result(
                id,
                json!({ "completion": { "values": [], "total": 0, "hasMore": false } }),
            ),
        }
    }

    fn resource_not_found(&self, ctx: &CallCtx, id: &Id, uri: &str) -> Reply {
        let code = if ctx.era == Era::Modern {
            codes::INVALID_PARAMS
        } else {
            codes::RESOURCE_NOT_FOUND
        };
        let e = RpcError::new(code, format!("Resource not found: {uri}"))
            .with_data(json!({ "uri": uri }));
        Reply::Json(Message::error(Some(id), &e))
    }

    /// Warden's own `server/discover` result.
    pub fn discover(&self) -> Value {
        json!({
            "resultType": "complete",
            "supportedVersions": [MODERN_VERSION],
            "capabilities": self.capabilities(),
            "instructions": "Warden gateway: tools, prompts and resources of several MCP servers behind one endpoint.",
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": { "io.modelcontextprotocol/serverInfo": server_info() }
        })
    }

    /// What Warden offers clients: everything it can route.
    pub fn capabilities(&self) -> Value {
        json!({
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "completions": {},
            "logging": {}
        })
    }
}

pub fn server_info() -> Value {
    json!({ "name": "warden", "title": "Warden MCP gateway", "version": env!("CARGO_PKG_VERSION") })
}
