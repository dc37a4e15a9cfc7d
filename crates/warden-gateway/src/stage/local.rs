//! What Warden answers itself rather than an upstream: `server/discover`, `logging/setLevel`
//! (passed on to every legacy upstream that logs), an empty completion.

use serde_json::{Value, json};
use warden_mcp::era::{Era, MODERN_VERSION};
use warden_mcp::{Id, Message};

use crate::call::{Call, Next, Refusal, Reply};
use crate::gateway::Gateway;

const INSTRUCTIONS: &str =
    "Warden gateway: tools, prompts and resources of several MCP servers behind one endpoint.";

/// The answer to a completion nobody may (or can) give.
pub fn no_completions(id: &Id) -> Reply {
    Reply::result(
        id,
        json!({ "completion": { "values": [], "total": 0, "hasMore": false } }),
    )
}

/// `logging/setLevel`: kept for the session's modern-style log filtering and passed on to each
/// legacy upstream that offers logging.
pub async fn set_level(gw: &Gateway, call: &Call) -> Next {
    let Some(level) = call.msg.param_str("level") else {
        return Next::Refuse(Refusal::InvalidParams(
            "logging/setLevel needs params.level".into(),
        ));
    };
    let ctx = &call.ctx;
    if let Some(s) = &ctx.session
        && let Ok(mut l) = s.log_level.lock()
    {
        *l = Some(level.to_string());
    }
    for upstream in 0..gw.pool.len() {
        let Ok(link) = gw
            .pool
            .link(upstream, &ctx.principal.user, Era::Legacy)
            .await
        else {
            continue;
        };
        if link.info().era != Era::Legacy || link.info().capabilities.get("logging").is_none() {
            continue;
        }
        let request = Message::request(Id::Int(0), "logging/setLevel", json!({ "level": level }));
        if let Ok(mut x) = link.call(request, &ctx.client_capabilities).await {
            let _ = x.reply("not while setting the log level").await;
        }
    }
    Next::Answer(Reply::result(&call.id, json!({})))
}

impl Gateway {
    /// Warden's own `server/discover` result.
    pub fn discover(&self) -> Value {
        json!({
            "resultType": "complete",
            "supportedVersions": [MODERN_VERSION],
            "capabilities": self.capabilities(),
            "instructions": INSTRUCTIONS,
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

    /// Warden's `initialize` result for a legacy session of `version`.
    pub fn initialize_result(&self, version: &str) -> Value {
        json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        })
    }
}

pub fn server_info() -> Value {
    json!({ "name": "warden", "title": "Warden MCP gateway", "version": env!("CARGO_PKG_VERSION") })
}
