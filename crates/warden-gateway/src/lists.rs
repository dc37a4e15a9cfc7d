//! Lists merged across upstreams, one upstream page per client page. The cursor Warden hands
//! out names the upstream and that upstream's own cursor; a bad cursor is an invalid-params
//! error, an upstream that fails is skipped (and logged) so one broken server does not hide
//! the others.

use serde_json::{Map, Value, json};
use warden_mcp::era::Era;
use warden_mcp::method::ListShape;
use warden_mcp::{Id, Message, Method};
use warden_policy::Action;

use crate::call::{CallCtx, Refusal, Reply};
use crate::catalog::{NameKind, decode_cursor, encode_cursor};
use crate::gateway::Gateway;
use crate::stage::adapt;
use crate::stage::decide::ask;

/// The shape of a list method's result (`tools/list` for anything else).
fn shape(method: Method) -> ListShape {
    method.list().unwrap_or(ListShape {
        key: "tools",
        capability: "tools",
    })
}

impl Gateway {
    pub(crate) async fn list(
        &self,
        ctx: &CallCtx,
        id: &Id,
        method: Method,
        msg: &Message,
    ) -> Reply {
        let (mut index, mut cursor) = match msg.param_str("cursor") {
            None => (0, None),
            Some(c) => match decode_cursor(c) {
                Some((i, inner)) if i < self.pool.len() => (i, inner),
                _ => {
                    let why = "the cursor is not one Warden gave out";
                    return Reply::Refused(Refusal::InvalidParams(why.into()));
                }
            },
        };
        let key = shape(method).key;
        loop {
            if index >= self.pool.len() {
                return Reply::result(id, self.list_result(ctx, method, key, Vec::new(), None));
            }
            let page = self.upstream_page(ctx, index, method, cursor.take()).await;
            let (items, next) = page.unwrap_or_default();
            let next_cursor = match next {
                Some(c) => Some(encode_cursor(index, Some(&c))),
                None if index + 1 < self.pool.len() => Some(encode_cursor(index + 1, None)),
                None => None,
            };
            if !items.is_empty() || next_cursor.is_none() {
                return Reply::result(id, self.list_result(ctx, method, key, items, next_cursor));
            }
            index += 1;
        }
    }

    fn list_result(
        &self,
        ctx: &CallCtx,
        method: Method,
        key: &str,
        items: Vec<Value>,
        next: Option<String>,
    ) -> Value {
        let mut result = Map::new();
        result.insert(key.into(), Value::Array(items));
        if let Some(n) = next {
            result.insert("nextCursor".into(), n.into());
        }
        if ctx.era == Era::Modern {
            // Lists are per principal (policy filters them), so they are private.
            result.insert("cacheScope".into(), "private".into());
            adapt::complete_result(method, &mut result);
        }
        Value::Object(result)
    }

    /// One page of one upstream's list, with names exposed and routes learnt.
    async fn upstream_page(
        &self,
        ctx: &CallCtx,
        index: usize,
        method: Method,
        cursor: Option<String>,
    ) -> Option<(Vec<Value>, Option<String>)> {
        let ListShape { key, capability } = shape(method);
        let name = &self.pool.config(index).name;
        let link = match self.pool.link(index, &ctx.principal.user, ctx.era).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(upstream = %name, error = %e, "upstream left out of {method}");
                return None;
            }
        };
        link.info().capabilities.get(capability)?;
        // A server's list is shown at all only where a list permit allows it.
        let action = match method {
            Method::ToolsList => Action::ListTools,
            Method::PromptsList => Action::ListPrompts,
            _ => Action::ListResources,
        };
        if self
            .policies
            .decide(&ask(self, ctx, action, index, "", None))
            .outcome
            != warden_policy::Outcome::Allow
        {
            return None;
        }
        let params = match cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let mut exchange = link
            .call(
                Message::request(Id::Int(0), method.as_str(), params),
                &ctx.client_capabilities,
            )
            .await
            .ok()?;
        let limit = self.pool.config(index).timeout;
        let refusal = "Warden lists on its own behalf and cannot relay this";
        let Ok(Ok(reply)) = tokio::time::timeout(limit, exchange.reply(refusal)).await else {
            tracing::warn!(upstream = %name, "upstream did not answer {method}; left out");
            return None;
        };
        let Some(result) = reply.result() else {
            tracing::warn!(upstream = %name, error = ?reply.rpc_error(), "upstream refused {method}; left out");
            return None;
        };
        let mut items: Vec<Value> = result
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if method == Method::ToolsList {
            self.integrity.check_list(self, index, &mut items).await;
        }
        items.retain(|item| self.listed(ctx, index, method, item));
        for item in &mut items {
            self.expose_item(index, method, item);
        }
        let next = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some((items, next))
    }

    /// Whether this principal may see an item: allowed, or obtainable with consent. Denied
    /// items vanish. Templates stay: every URI read through one is decided on its own.
    fn listed(&self, ctx: &CallCtx, index: usize, method: Method, item: &Value) -> bool {
        let (action, key) = match method {
            Method::ToolsList => (Action::CallTool, "name"),
            Method::PromptsList => (Action::GetPrompt, "name"),
            Method::ResourcesList => (Action::ReadResource, "uri"),
            _ => return true,
        };
        let Some(target) = item.get(key).and_then(Value::as_str) else {
            return false;
        };
        self.policies
            .visible(&ask(self, ctx, action, index, target, None))
    }

    fn expose_item(&self, index: usize, method: Method, item: &mut Value) {
        match method {
            Method::ToolsList | Method::PromptsList => {
                let kind = if method == Method::ToolsList {
                    NameKind::Tool
                } else {
                    NameKind::Prompt
                };
                if let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_string) {
                    self.catalog.learn_name(kind, index, &name);
                    let exposed = self.catalog.expose(index, &name);
                    if kind == NameKind::Tool {
                        self.catalog.learn_params(
                            &exposed,
                            item.get("inputSchema").unwrap_or(&Value::Null),
                        );
                        self.catalog
                            .learn_output_schema(&exposed, item.get("outputSchema"));
                    }
                    item["name"] = exposed.into();
                }
            }
            Method::ResourcesList => {
                if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                    self.catalog.learn_resource(index, uri);
                }
            }
            _ => {
                if let Some(t) = item.get("uriTemplate").and_then(Value::as_str) {
                    self.catalog.learn_template(index, t);
                }
            }
        }
    }

    /// Every tool an upstream offers, unfiltered, for operators' tools (`warden policy lint`).
    pub async fn upstream_tools(&self, upstream: usize, user: &str) -> Result<Vec<Value>, String> {
        let user: std::sync::Arc<str> = user.into();
        let link = self
            .pool
            .link(upstream, &user, warden_mcp::era::Era::Legacy)
            .await
            .map_err(|e| e.to_string())?;
        let (mut tools, mut cursor) = (Vec::new(), None::<String>);
        for _ in 0..1000 {
            let params = cursor
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            let mut exchange = link
                .call(
                    Message::request(Id::Int(0), "tools/list", params),
                    &json!({}),
                )
                .await
                .map_err(|e| e.to_string())?;
            let reply = exchange
                .reply("not during a tool listing")
                .await
                .map_err(|e| e.to_string())?;
            let result = reply
                .result()
                .ok_or_else(|| format!("tools/list failed: {:?}", reply.rpc_error()))?;
            tools.extend(
                result
                    .get("tools")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(tools),
            }
        }
        Err("the upstream's tool list does not end".into())
    }

    /// Reads every page of one upstream's list (as this caller sees it), for what the catalog
    /// learns from it; stops at a failing page or after 100 pages.
    async fn read_whole_list(&self, ctx: &CallCtx, upstream: usize, method: Method) {
        let mut cursor = None;
        for _ in 0..100 {
            match self
                .upstream_page(ctx, upstream, method, cursor.take())
                .await
            {
                Some((_, Some(next))) => cursor = Some(next),
                _ => return,
            }
        }
    }

    /// Whether upstream `upstream` offers this tool or prompt; on a miss its list is read
    /// again (as this caller sees it) before the answer is no.
    pub(crate) async fn exists(
        &self,
        ctx: &CallCtx,
        upstream: usize,
        kind: NameKind,
        exposed: &str,
    ) -> bool {
        if self.catalog.knows(kind, exposed) {
            return true;
        }
        let method = if kind == NameKind::Tool {
            Method::ToolsList
        } else {
            Method::PromptsList
        };
        self.read_whole_list(ctx, upstream, method).await;
        self.catalog.knows(kind, exposed)
    }

    /// The upstream owning a URI; if none is known yet, the resource lists are read once to learn.
    pub(crate) async fn resource_owner(&self, ctx: &CallCtx, uri: &str) -> Option<usize> {
        if let Some(i) = self.catalog.resource_owner(uri) {
            return Some(i);
        }
        if self.pool.len() == 1 {
            return Some(0);
        }
        for index in 0..self.pool.len() {
            for method in [Method::ResourcesList, Method::TemplatesList] {
                self.read_whole_list(ctx, index, method).await;
            }
        }
        self.catalog.resource_owner(uri)
    }
}
