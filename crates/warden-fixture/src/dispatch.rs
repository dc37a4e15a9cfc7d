//! Routes one request to its handler, whatever the transport, and shapes the result for the
//! request's era.
//!
//! The eras share most methods. Only legacy has `initialize`, `ping`, `logging/setLevel`
//! and `resources/(un)subscribe`; only modern has `server/discover` (and
//! `subscriptions/listen`, a stream the transports serve themselves). Every modern result
//! carries `resultType` and the server's identity in `_meta`.

use serde_json::{Map, Value, json};
use warden_mcp::era::{Era, LATEST_LEGACY, LEGACY_VERSIONS};
use warden_mcp::{Id, Message, RpcError, codes};

use crate::catalog::supported_versions;
use crate::content;
use crate::exchange::{ClientCaps, Exchange};
use crate::state::Fixture;
use crate::tools;

/// Methods a modern request may name (besides `subscriptions/listen`).
const MODERN_METHODS: &[&str] = &[
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Whether a modern request names a method the fixture serves. The modern era answers an
/// unknown method with HTTP 404, so transports ask before they start streaming.
pub(crate) fn modern_method_exists(method: &str) -> bool {
    MODERN_METHODS.contains(&method) || method == "subscriptions/listen"
}

/// Serves one request and returns its response (a result or an error).
pub(crate) async fn respond(fx: &Fixture, msg: &Message, ex: &Exchange) -> Message {
    // Requests reach here only after `Message::parse` saw an id.
    let id = msg.id().unwrap_or(Id::Int(0));
    match handle(fx, msg, ex).await {
        Ok(result) => Message::response(&id, result),
        Err(e) => Message::error(Some(&id), &e),
    }
}

pub(crate) async fn handle(fx: &Fixture, msg: &Message, ex: &Exchange) -> Result<Value, RpcError> {
    let method = msg.method().unwrap_or_default();
    let params = msg.params();
    let result = match (ex.era, method) {
        (_, "tools/call") => tools::call(fx, msg, ex).await?,
        (_, "tools/list") => tools::list(fx, params, ex)?,
        (_, "resources/list") => content::list_resources(fx, ex),
        (_, "resources/templates/list") => content::list_templates(fx, ex),
        (_, "resources/read") => content::read(fx, params, ex)?,
        (_, "prompts/list") => content::list_prompts(fx, ex),
        (_, "prompts/get") => content::get_prompt(params)?,
        (_, "completion/complete") => content::complete(params)?,
        (Era::Modern, "server/discover") => discover(fx, ex),
        (Era::Legacy, "initialize") => initialize(fx, params, ex)?,
        (Era::Legacy, "ping") => json!({}),
        (Era::Legacy, "logging/setLevel") => set_level(params, ex)?,
        (Era::Legacy, "resources/subscribe" | "resources/unsubscribe") => {
            content::subscription(params)?
        }
        _ => {
            return Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            ));
        }
    };
    Ok(match ex.era {
        Era::Modern => modern_result(fx, result),
        Era::Legacy => result,
    })
}

/// Adds what every modern result carries: `resultType` (unless the handler chose one) and
/// `_meta["io.modelcontextprotocol/serverInfo"]`.
fn modern_result(fx: &Fixture, mut result: Value) -> Value {
    if let Value::Object(map) = &mut result {
        if !map.contains_key("resultType") {
            map.insert("resultType".into(), "complete".into());
        }
        map.insert("_meta".into(), fx.catalog.result_meta.clone());
    }
    result
}

fn discover(fx: &Fixture, ex: &Exchange) -> Value {
    let mut result = Map::new();
    result.insert("supportedVersions".into(), supported_versions());
    result.insert("capabilities".into(), fx.catalog.capabilities.clone());
    result.insert("instructions".into(), fx.catalog.instructions.into());
    ex.cacheable(&mut result, 3_600_000, true);
    Value::Object(result)
}

/// Legacy `initialize`: agrees on a version (the client's if the fixture knows it, else the
/// newest legacy one) and remembers the client's capabilities for the conversation.
fn initialize(
    fx: &Fixture,
    params: Option<&Map<String, Value>>,
    ex: &Exchange,
) -> Result<Value, RpcError> {
    let Some(conversation) = ex.conversation() else {
        return Err(RpcError::new(
            codes::INTERNAL_ERROR,
            "initialize outside a conversation",
        ));
    };
    let requested = params
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str);
    let version = LEGACY_VERSIONS
        .iter()
        .copied()
        .find(|known| Some(*known) == requested)
        .unwrap_or(LATEST_LEGACY);
    let caps = params
        .and_then(|p| p.get("capabilities"))
        .and_then(Value::as_object);
    conversation.initialize(version, ClientCaps::from_map(caps));
    Ok(json!({
        "protocolVersion": version,
        "capabilities": fx.catalog.capabilities,
        "serverInfo": fx.catalog.server_info,
        "instructions": fx.catalog.instructions,
    }))
}

fn set_level(params: Option<&Map<String, Value>>, ex: &Exchange) -> Result<Value, RpcError> {
    let level = params
        .and_then(|p| p.get("level"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match ex.conversation() {
        Some(c) if c.set_level(level) => Ok(json!({})),
        _ => Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("unknown log level {level:?}"),
        )),
    }
}
