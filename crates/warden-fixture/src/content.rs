//! Resources, the prompt and completions: everything the fixture serves that is not a tool.

use serde_json::{Map, Value, json};
use warden_mcp::era::Era;
use warden_mcp::{RpcError, codes};

use crate::catalog::{
    DATA_URI, GREETING, ITEM_IDS, ITEM_PREFIX, ITEM_TEMPLATE, NAMES, README_TEXT, README_URI,
    STATS_URI,
};
use crate::exchange::Exchange;
use crate::state::Fixture;

const LIST_TTL_MS: u64 = 60_000;
const README_TTL_MS: u64 = 3_600_000;
const DATA_TTL_MS: u64 = 60_000;

type Params<'a> = Option<&'a Map<String, Value>>;

fn listed(key: &str, items: &Value, ex: &Exchange) -> Value {
    let mut result = Map::new();
    result.insert(key.into(), items.clone());
    ex.cacheable(&mut result, LIST_TTL_MS, true);
    Value::Object(result)
}

pub(crate) fn list_resources(fx: &Fixture, ex: &Exchange) -> Value {
    listed("resources", &fx.catalog.resources, ex)
}

pub(crate) fn list_templates(fx: &Fixture, ex: &Exchange) -> Value {
    listed("resourceTemplates", &fx.catalog.templates, ex)
}

pub(crate) fn list_prompts(fx: &Fixture, ex: &Exchange) -> Value {
    listed("prompts", &fx.catalog.prompts, ex)
}

pub(crate) fn read(fx: &Fixture, params: Params, ex: &Exchange) -> Result<Value, RpcError> {
    let Some(uri) = params.and_then(|p| p.get("uri")).and_then(Value::as_str) else {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            "resources/read needs a string \"uri\"",
        ));
    };
    // (mime type, text, ttl, public)
    let (mime, text, ttl, public) = match uri {
        README_URI => ("text/plain", README_TEXT.to_string(), README_TTL_MS, true),
        DATA_URI => ("application/json", data_json(), DATA_TTL_MS, false),
        STATS_URI => ("application/json", fx.stats.to_json().to_string(), 0, false),
        _ => match uri
            .strip_prefix(ITEM_PREFIX)
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => {
                let item = json!({ "id": id, "name": format!("Item {id}") });
                ("application/json", item.to_string(), DATA_TTL_MS, true)
            }
            None => return Err(not_found(uri, ex.era)),
        },
    };
    let mut result = Map::new();
    result.insert(
        "contents".into(),
        json!([{ "uri": uri, "mimeType": mime, "text": text }]),
    );
    ex.cacheable(&mut result, ttl, public);
    Ok(Value::Object(result))
}

fn data_json() -> String {
    json!({ "items": [{ "id": "1", "name": "Item 1" }, { "id": "2", "name": "Item 2" }] })
        .to_string()
}

/// Legacy servers answer an unknown resource with -32002; the modern era replaced it with -32602.
fn not_found(uri: &str, era: Era) -> RpcError {
    let code = match era {
        Era::Legacy => codes::RESOURCE_NOT_FOUND,
        Era::Modern => codes::INVALID_PARAMS,
    };
    RpcError::new(code, format!("Resource not found: {uri}")).with_data(json!({ "uri": uri }))
}

/// `resources/subscribe` and `resources/unsubscribe` (legacy): accepted for any known-looking URI.
pub(crate) fn subscription(params: Params) -> Result<Value, RpcError> {
    match params.and_then(|p| p.get("uri")).and_then(Value::as_str) {
        Some(_) => Ok(json!({})),
        None => Err(RpcError::new(
            codes::INVALID_PARAMS,
            "needs a string \"uri\"",
        )),
    }
}

pub(crate) fn get_prompt(params: Params) -> Result<Value, RpcError> {
    let name = params.and_then(|p| p.get("name")).and_then(Value::as_str);
    if name != Some(GREETING) {
        let shown = name.unwrap_or_default();
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("Unknown prompt: {shown}"),
        ));
    }
    let who = params
        .and_then(|p| p.get("arguments"))
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RpcError::new(
                codes::INVALID_PARAMS,
                "the greeting prompt needs the argument \"name\"",
            )
        })?;
    Ok(json!({
        "description": "A greeting",
        "messages": [{
            "role": "user",
            "content": { "type": "text", "text": format!("Please greet {who} warmly.") }
        }]
    }))
}

pub(crate) fn complete(params: Params) -> Result<Value, RpcError> {
    let invalid = |why: &str| RpcError::new(codes::INVALID_PARAMS, why.to_string());
    let reference = params
        .and_then(|p| p.get("ref"))
        .ok_or_else(|| invalid("needs \"ref\""))?;
    let argument = params
        .and_then(|p| p.get("argument"))
        .ok_or_else(|| invalid("needs \"argument\""))?;
    let arg_name = argument
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prefix = argument
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let words = match (reference.get("type").and_then(Value::as_str), arg_name) {
        (Some("ref/prompt"), "name") if reference.get("name") == Some(&json!(GREETING)) => NAMES,
        (Some("ref/resource"), "id") if reference.get("uri") == Some(&json!(ITEM_TEMPLATE)) => {
            ITEM_IDS
        }
        (Some("ref/prompt" | "ref/resource"), _) => &[],
        _ => return Err(invalid("unknown completion reference")),
    };
    let prefix = prefix.to_lowercase();
    let values: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.to_lowercase().starts_with(&prefix))
        .collect();
    Ok(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn completes_by_prefix() {
        let p = params(json!({ "ref": { "type": "ref/prompt", "name": "greeting" },
                               "argument": { "name": "name", "value": "al" } }));
        assert_eq!(
            complete(Some(&p)).unwrap()["completion"]["values"],
            json!(["Alan", "Alice"])
        );
        let p = params(
            json!({ "ref": { "type": "ref/resource", "uri": ITEM_TEMPLATE },
                               "argument": { "name": "id", "value": "1" } }),
        );
        assert_eq!(
            complete(Some(&p)).unwrap()["completion"]["values"],
            json!(["1", "10", "100"])
        );
        let p = params(
            json!({ "ref": { "type": "ref/nothing" }, "argument": { "name": "x", "value": "" } }),
        );
        assert!(complete(Some(&p)).is_err());
    }

    #[test]
    fn prompt_needs_its_argument() {
        let p = params(json!({ "name": "greeting", "arguments": { "name": "Ada" } }));
        let text = &get_prompt(Some(&p)).unwrap()["messages"][0]["content"]["text"];
        assert_eq!(text, "Please greet Ada warmly.");
        assert!(get_prompt(Some(&params(json!({ "name": "greeting" })))).is_err());
        assert!(get_prompt(Some(&params(json!({ "name": "other" })))).is_err());
    }
}
