//! The tools that need the client's help — `ask` (elicitation), `sample` (sampling) and
//! `roots` — in both eras.
//!
//! Legacy: the fixture sends the client a JSON-RPC request on the call's stream and waits
//! for the reply. Modern: it returns an `InputRequiredResult` whose `inputRequests` holds
//! the same request under the key `q`, with a `requestState` bound to the call; the client
//! retries with `inputResponses.q` and the state, and gets the answer.

use serde_json::{Map, Value, json};
use warden_mcp::era::Era;
use warden_mcp::{Message, RpcError, codes};

use crate::exchange::{Capability, Exchange};
use crate::state::Fixture;
use crate::tools::{Args, CallError, error_result, text_result};

/// The key of the one input request the fixture makes.
const KEY: &str = "q";

/// One request the fixture needs the client to answer.
struct Need {
    capability: Capability,
    method: &'static str,
    params: Value,
}

pub(crate) async fn call(
    fx: &Fixture,
    msg: &Message,
    tool: &str,
    args: &Args<'_>,
    ex: &Exchange,
) -> Result<Value, CallError> {
    let need = match tool {
        "ask" => Need {
            capability: Capability::Elicitation,
            method: "elicitation/create",
            params: elicitation(args.str("message")?, ex.version()),
        },
        "sample" => Need {
            capability: Capability::Sampling,
            method: "sampling/createMessage",
            params: json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": args.str("prompt")? } }],
                "maxTokens": 100
            }),
        },
        _ => Need {
            capability: Capability::Roots,
            method: "roots/list",
            params: json!({}),
        },
    };
    match ex.era {
        Era::Legacy => legacy(fx, need, ex).await,
        Era::Modern => modern(fx, msg, tool, args, need, ex),
    }
}

/// A form-mode elicitation asking for one string. `mode` exists from 2025-11-25 on.
fn elicitation(message: &str, version: &str) -> Value {
    let mut params = json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": { "answer": { "type": "string", "title": "Answer" } },
            "required": ["answer"]
        }
    });
    if version >= "2025-11-25" {
        params["mode"] = "form".into();
    }
    params
}

fn answer(reply: &Value) -> Value {
    text_result(format!("answer: {reply}"))
}

async fn legacy(fx: &Fixture, need: Need, ex: &Exchange) -> Result<Value, CallError> {
    if !ex.has(need.capability) {
        return Ok(error_result(format!(
            "the client did not declare the {} capability",
            need.capability.name()
        )));
    }
    let reply = ex.ask_client(fx, need.method, need.params).await?;
    match (reply.result(), reply.rpc_error()) {
        (Some(result), _) => Ok(answer(result)),
        (None, Some(e)) => Ok(error_result(format!(
            "the client refused {}: {e}",
            need.method
        ))),
        (None, None) => Ok(error_result(format!(
            "the client sent no answer to {}",
            need.method
        ))),
    }
}

fn modern(
    fx: &Fixture,
    msg: &Message,
    tool: &str,
    args: &Args<'_>,
    need: Need,
    ex: &Exchange,
) -> Result<Value, CallError> {
    if !ex.has(need.capability) {
        let name = need.capability.name();
        let mut required = Map::new();
        required.insert(name.into(), json!({}));
        return Err(CallError::Rpc(
            RpcError::new(
                codes::MISSING_CAPABILITY,
                format!("this tool requires the {name} capability"),
            )
            .with_data(json!({ "requiredCapabilities": required })),
        ));
    }
    let state = fx.request_state(tool, &args.value());
    let params = msg.params();
    let responses = match params.and_then(|p| p.get("inputResponses")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => Some(r),
        Some(_) => return Err(invalid("inputResponses must be an object")),
    };
    let Some(response) = responses.and_then(|r| r.get(KEY)) else {
        return Ok(input_required(need, state));
    };
    if !response.is_object() {
        return Err(invalid("inputResponses.q must be an object"));
    }
    match params
        .and_then(|p| p.get("requestState"))
        .and_then(Value::as_str)
    {
        Some(s) if s == state => Ok(answer(response)),
        Some(_) => Err(invalid("requestState does not belong to this call")),
        None => Err(invalid("requestState is missing")),
    }
}

fn input_required(need: Need, state: String) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": { KEY: { "method": need.method, "params": need.params } },
        "requestState": state
    })
}

fn invalid(why: &str) -> CallError {
    CallError::Rpc(RpcError::new(codes::INVALID_PARAMS, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_mode_is_named_only_where_it_exists() {
        assert_eq!(elicitation("q?", "2026-07-28")["mode"], "form");
        assert_eq!(elicitation("q?", "2025-11-25")["mode"], "form");
        assert!(elicitation("q?", "2025-06-18").get("mode").is_none());
    }
}
