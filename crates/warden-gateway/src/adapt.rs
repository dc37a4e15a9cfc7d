//! What changes when a reply crosses eras: a modern client needs `resultType` on every result
//! and cache hints on lists and reads; a legacy "resource not found" becomes the modern error.

use serde_json::{Map, Value, json};
use warden_mcp::era::Era;
use warden_mcp::{Message, RpcError, codes};

use crate::pipeline::CallCtx;

/// Methods whose modern results must carry `ttlMs` and `cacheScope`.
pub fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "server/discover"
    )
}

pub fn reply_for_client(method: &str, ctx: &CallCtx, upstream: Era, reply: &mut Message) {
    match ctx.era {
        Era::Modern => {
            // Most results pass through untouched: one that says what it is and needs no
            // cache hints is not rebuilt.
            if !is_cacheable(method) && reply.result_type().is_some() {
                return;
            }
            if let Some(Value::Object(result)) = reply.result_mut() {
                complete_result(method, result);
            } else if let Some(e) = reply.rpc_error()
                && e.code == codes::RESOURCE_NOT_FOUND
            {
                let uri = e
                    .data
                    .as_ref()
                    .and_then(|d| d.get("uri"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let id = reply.id();
                *reply = Message::error(
                    id.as_ref(),
                    &RpcError::new(codes::INVALID_PARAMS, e.message)
                        .with_data(json!({ "uri": uri })),
                );
            }
        }
        Era::Legacy if upstream == Era::Modern => {
            let needs_input = reply.result_type().as_deref() == Some("input_required");
            if needs_input {
                let id = reply.id();
                let e = RpcError::new(
                    codes::INTERNAL_ERROR,
                    "the upstream asked for input in the 2026-07-28 way (InputRequiredResult), which a 2025 session cannot answer; connect with a 2026-07-28 client",
                );
                *reply = Message::error(id.as_ref(), &e);
            }
        }
        Era::Legacy => {}
    }
}

/// Adds what a modern result must carry and a legacy upstream did not send.
pub fn complete_result(method: &str, result: &mut Map<String, Value>) {
    result
        .entry("resultType")
        .or_insert_with(|| "complete".into());
    if is_cacheable(method) && result.get("resultType").and_then(Value::as_str) == Some("complete")
    {
        result.entry("ttlMs").or_insert_with(|| 0.into());
        result
            .entry("cacheScope")
            .or_insert_with(|| "private".into());
    }
}

/// The capability a server→client request needs that the client did not declare, if any.
pub fn missing_capability(request: &Message, capabilities: &Value) -> Option<&'static str> {
    match request.method()? {
        "elicitation/create" => {
            let Some(elicitation) = capabilities.get("elicitation") else {
                return Some("elicitation");
            };
            if request.param_str("mode") == Some("url") {
                elicitation
                    .get("url")
                    .is_none()
                    .then_some("elicitation.url")
            } else {
                // `elicitation: {}` means form only; `{ url: {} }` alone means no form.
                let form = elicitation.get("form").is_some() || elicitation.get("url").is_none();
                (!form).then_some("elicitation.form")
            }
        }
        "sampling/createMessage" => capabilities.get("sampling").is_none().then_some("sampling"),
        "roots/list" => capabilities.get("roots").is_none().then_some("roots"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, params: Value) -> Message {
        Message::request(warden_mcp::Id::Int(1), method, params)
    }

    #[test]
    fn elicitation_modes_follow_the_declared_capability() {
        let form_only = json!({ "elicitation": {} });
        let both = json!({ "elicitation": { "form": {}, "url": {} } });
        let url = req(
            "elicitation/create",
            json!({ "mode": "url", "url": "http://x", "message": "m" }),
        );
        let form = req(
            "elicitation/create",
            json!({ "message": "m", "requestedSchema": {} }),
        );
        assert_eq!(
            missing_capability(&url, &form_only),
            Some("elicitation.url")
        );
        assert_eq!(missing_capability(&url, &both), None);
        assert_eq!(missing_capability(&form, &form_only), None);
        assert_eq!(missing_capability(&form, &json!({})), Some("elicitation"));
        assert_eq!(
            missing_capability(&req("sampling/createMessage", json!({})), &json!({})),
            Some("sampling")
        );
        assert_eq!(
            missing_capability(&req("roots/list", json!({})), &json!({ "roots": {} })),
            None
        );
    }

    #[test]
    fn modern_results_are_completed() {
        let mut r = Map::new();
        complete_result("tools/list", &mut r);
        assert_eq!(
            Value::Object(r),
            json!({ "resultType": "complete", "ttlMs": 0, "cacheScope": "private" })
        );
        let mut r = json!({ "content": [], "resultType": "input_required" })
            .as_object()
            .cloned()
            .unwrap();
        complete_result("tools/call", &mut r);
        assert_eq!(r["resultType"], "input_required");
        assert!(!r.contains_key("ttlMs"));
    }
}
