//! What changes when a reply crosses eras: a modern client needs `resultType` on every result
//! and cache hints on lists and reads; a legacy "resource not found" becomes the modern error.

use serde_json::{Map, Value};
use warden_mcp::era::Era;
use warden_mcp::{Message, Method, codes};

use crate::call::{Call, Frame, Refusal, ReplyStage, Staged, Verdict};
use crate::gateway::Gateway;

/// The reply stage that fits a final message to the client's era.
pub struct AdaptEra;

impl ReplyStage for AdaptEra {
    fn name(&self) -> &'static str {
        "adapt-era"
    }

    fn see<'a>(
        &'a self,
        _gw: &'a Gateway,
        call: &'a mut Call,
        frame: &'a mut Frame,
    ) -> Staged<'a, Verdict> {
        let verdict = match frame {
            Frame::Final(msg) => {
                reply_for_client(call.method, call.ctx.era, call.upstream_era, msg)
                    .map_or(Verdict::Pass, Verdict::Refuse)
            }
            Frame::Interim(_) => Verdict::Pass,
        };
        Staged::Now(verdict)
    }
}

/// Fits a final message to the client's era; a message that cannot be said in the client's era
/// becomes a refusal.
pub fn reply_for_client(
    method: Method,
    era: Era,
    upstream: Option<Era>,
    reply: &mut Message,
) -> Option<Refusal> {
    match era {
        Era::Modern => {
            // Most results pass through untouched: one that says what it is and needs no
            // cache hints is not rebuilt.
            if !method.is_cacheable() && reply.result_type().is_some() {
                return None;
            }
            if let Some(Value::Object(result)) = reply.result_mut() {
                complete_result(method, result);
                return None;
            }
            let e = reply.rpc_error()?;
            (e.code == codes::RESOURCE_NOT_FOUND).then(|| {
                let uri = e.data.as_ref().and_then(|d| d.get("uri"));
                Refusal::ResourceNotFound(uri.and_then(Value::as_str).unwrap_or_default().into())
            })
        }
        Era::Legacy if upstream == Some(Era::Modern) => {
            (reply.result_type() == Some("input_required")).then_some(Refusal::InputAcrossEras)
        }
        Era::Legacy => None,
    }
}

/// Adds what a modern result must carry and a legacy upstream did not send.
pub fn complete_result(method: Method, result: &mut Map<String, Value>) {
    result
        .entry("resultType")
        .or_insert_with(|| "complete".into());
    if method.is_cacheable() && result.get("resultType").and_then(Value::as_str) == Some("complete")
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
    use serde_json::json;

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
        complete_result(Method::ToolsList, &mut r);
        assert_eq!(
            Value::Object(r),
            json!({ "resultType": "complete", "ttlMs": 0, "cacheScope": "private" })
        );
        let mut r = json!({ "content": [], "resultType": "input_required" })
            .as_object()
            .cloned()
            .unwrap();
        complete_result(Method::ToolsCall, &mut r);
        assert_eq!(r["resultType"], "input_required");
        assert!(!r.contains_key("ttlMs"));
    }
}
