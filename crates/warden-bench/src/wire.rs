//! What the bench says on the wire: the `tools/call` it repeats, the legacy opening, and how a
//! reply is judged. Pure functions, so both paths (direct and through Warden) send the same
//! bytes but for the tool's prefix.

use serde_json::{Value, json};
use warden_mcp::era::{Era, LATEST_LEGACY, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION};
use warden_mcp::era::{META_CLIENT_INFO, MODERN_VERSION};
use warden_mcp::headers;

/// The text every call echoes.
pub const ECHO_TEXT: &str = "hello from warden-bench";

/// The protocol version a request of `era` names.
pub fn version(era: Era) -> &'static str {
    match era {
        Era::Legacy => LATEST_LEGACY,
        Era::Modern => MODERN_VERSION,
    }
}

/// The modern era's per-request `_meta`.
fn modern_meta() -> Value {
    json!({
        META_PROTOCOL_VERSION: MODERN_VERSION,
        META_CLIENT_CAPABILITIES: {},
        META_CLIENT_INFO: { "name": "warden-bench", "version": env!("CARGO_PKG_VERSION") },
    })
}

/// A `tools/call` of `tool` with the echo text, as one line of JSON.
pub fn call_body(era: Era, id: u64, tool: &str) -> Vec<u8> {
    call_body_with(era, id, tool, ECHO_TEXT)
}

/// A `tools/call` of `tool` echoing `text` (which must hold [`ECHO_TEXT`] for the reply to
/// count as an echo).
pub fn call_body_with(era: Era, id: u64, tool: &str, text: &str) -> Vec<u8> {
    let mut params = json!({ "name": tool, "arguments": { "text": text } });
    if era == Era::Modern {
        params["_meta"] = modern_meta();
    }
    let msg = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    // Serialising a `Value` built above cannot fail.
    serde_json::to_vec(&msg).unwrap_or_default()
}

/// A modern `resources/read` of the fixture's counters, as one line of JSON.
pub fn stats_body() -> Vec<u8> {
    let msg = json!({
        "jsonrpc": "2.0", "id": 1, "method": "resources/read",
        "params": { "uri": STATS_URI, "_meta": modern_meta() },
    });
    serde_json::to_vec(&msg).unwrap_or_default()
}

/// The fixture's resource of counters.
pub const STATS_URI: &str = "fixture://stats";

/// The `connections` counter from a JSON reply to [`stats_body`].
pub fn connections_in(reply: &[u8]) -> Option<u64> {
    let reply: Value = serde_json::from_slice(reply).ok()?;
    let text = reply["result"]["contents"][0]["text"].as_str()?;
    let stats: Value = serde_json::from_str(text).ok()?;
    stats["connections"].as_u64()
}

/// The legacy opening request.
pub fn initialize_body(id: u64) -> Vec<u8> {
    let msg = json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": LATEST_LEGACY,
            "capabilities": {},
            "clientInfo": { "name": "warden-bench", "version": env!("CARGO_PKG_VERSION") },
        }
    });
    serde_json::to_vec(&msg).unwrap_or_default()
}

/// The legacy notification that ends the opening.
pub fn initialized_body() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec()
}

/// The HTTP headers a `tools/call` of `tool` carries besides content negotiation (and, in the
/// legacy era, the session id).
pub fn call_headers(era: Era, tool: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![(headers::PROTOCOL_VERSION, version(era).to_string())];
    if era == Era::Modern {
        h.push((headers::METHOD, "tools/call".to_string()));
        h.push((headers::NAME, tool.to_string()));
    }
    h
}

/// Whether a reply body (JSON or an SSE stream) carries a successful echo. A cheap byte search:
/// it runs once per call inside the load generator.
pub fn is_echo_reply(body: &[u8]) -> bool {
    contains(body, b"\"result\"")
        && contains(body, ECHO_TEXT.as_bytes())
        && !contains(body, b"\"isError\":true")
}

#[cfg(test)]
mod stats_tests {
    use super::*;

    #[test]
    fn connections_are_read_from_the_counters_resource() {
        let reply = json!({ "jsonrpc": "2.0", "id": 1, "result": { "contents": [
            { "uri": STATS_URI, "text": "{\"connections\":7,\"toolCalls\":3}" } ] } });
        assert_eq!(connections_in(reply.to_string().as_bytes()), Some(7));
        assert_eq!(connections_in(b"{}"), None);
        assert!(String::from_utf8(stats_body()).unwrap().contains(STATS_URI));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The integer id of a JSON-RPC reply line, if it is a reply.
pub fn reply_id(line: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(line).ok()?;
    if v.get("method").is_some() {
        return None;
    }
    v.get("id")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_calls_are_self_contained() {
        let body: Value = serde_json::from_slice(&call_body(Era::Modern, 7, "fx__echo")).unwrap();
        assert_eq!(body["id"], 7);
        assert_eq!(body["params"]["name"], "fx__echo");
        assert_eq!(
            body["params"]["_meta"][META_PROTOCOL_VERSION],
            MODERN_VERSION
        );
        assert!(body["params"]["_meta"][META_CLIENT_CAPABILITIES].is_object());
        let h = call_headers(Era::Modern, "fx__echo");
        assert!(h.contains(&(headers::METHOD, "tools/call".into())));
        assert!(h.contains(&(headers::NAME, "fx__echo".into())));
    }

    #[test]
    fn legacy_calls_carry_no_meta_and_no_routing_headers() {
        let body: Value = serde_json::from_slice(&call_body(Era::Legacy, 1, "echo")).unwrap();
        assert!(body["params"].get("_meta").is_none());
        assert_eq!(
            call_headers(Era::Legacy, "echo"),
            vec![(headers::PROTOCOL_VERSION, LATEST_LEGACY.to_string())]
        );
    }

    #[test]
    fn replies_are_judged_by_their_content() {
        let ok = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"type":"text","text":"{ECHO_TEXT}"}}]}}}}"#
        );
        assert!(is_echo_reply(ok.as_bytes()));
        let sse = format!("event: message\ndata: {ok}\n\n");
        assert!(is_echo_reply(sse.as_bytes()));
        assert!(!is_echo_reply(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Unknown tool"}}"#
        ));
        let tool_error = ok.replace("]}", r#"],"isError":true}"#);
        assert!(!is_echo_reply(tool_error.as_bytes()));
    }

    #[test]
    fn reply_ids_skip_notifications_and_requests() {
        assert_eq!(
            reply_id(br#"{"jsonrpc":"2.0","id":42,"result":{}}"#),
            Some(42)
        );
        assert_eq!(
            reply_id(br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#),
            Some(3)
        );
        assert_eq!(
            reply_id(br#"{"jsonrpc":"2.0","id":1,"method":"roots/list"}"#),
            None
        );
        assert_eq!(reply_id(b"not json"), None);
    }
}
