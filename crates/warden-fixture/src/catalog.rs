//! What the fixture offers, as data: server identity and capabilities, tool definitions,
//! resources, the resource template, the prompt and the words completion draws from.
//!
//! Everything here is built once at start-up; request handlers only clone or read it.

use serde_json::{Map, Value, json};
use warden_mcp::era::{LEGACY_VERSIONS, MODERN_VERSION};

pub(crate) const SERVER_NAME: &str = "warden-fixture";
pub(crate) const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

const INSTRUCTIONS: &str = "Warden's test fixture. `echo` and `add` are harmless; `transfer_funds` and \
     `delete_records` pretend to do damage; `lookup_customer` returns fake personal data.";

/// URIs of the fixed resources.
pub(crate) const README_URI: &str = "fixture://readme";
pub(crate) const DATA_URI: &str = "fixture://data.json";
pub(crate) const STATS_URI: &str = "fixture://stats";
/// The one resource template; any non-empty `{id}` is readable.
pub(crate) const ITEM_TEMPLATE: &str = "fixture://items/{id}";
pub(crate) const ITEM_PREFIX: &str = "fixture://items/";
/// The one prompt.
pub(crate) const GREETING: &str = "greeting";

/// Values `completion/complete` offers for the prompt argument `name`.
pub(crate) const NAMES: &[&str] = &["Ada", "Alan", "Alice", "Barbara", "Bob", "Grace", "Linus"];
/// Values `completion/complete` offers for the template variable `id`.
pub(crate) const ITEM_IDS: &[&str] = &["1", "2", "3", "10", "42", "100"];

/// The text of `fixture://readme`.
pub(crate) const README_TEXT: &str = "This is warden-fixture, a small MCP server used by Warden's tests, \
     demo and benchmarks.\n";

/// The levels of `notifications/message`, least severe first.
pub(crate) const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// A tool argument mirrored into an `Mcp-Param-{header}` HTTP header (modern era).
pub(crate) struct HeaderParam {
    pub tool: &'static str,
    pub argument: &'static str,
    pub header: &'static str,
}

/// Tool arguments whose schemas carry `x-mcp-header`.
pub(crate) const HEADER_PARAMS: &[HeaderParam] = &[HeaderParam {
    tool: "lookup_customer",
    argument: "customer_id",
    header: "CustomerId",
}];

/// Every version the fixture serves, newest first (modern, then legacy).
pub(crate) fn supported_versions() -> Value {
    let mut all = vec![Value::from(MODERN_VERSION)];
    all.extend(LEGACY_VERSIONS.iter().map(|v| Value::from(*v)));
    Value::Array(all)
}

/// Prebuilt JSON the handlers hand out.
pub(crate) struct Catalog {
    pub server_info: Value,
    pub capabilities: Value,
    pub instructions: &'static str,
    /// `_meta` of every modern result: `{"io.modelcontextprotocol/serverInfo": …}`.
    pub result_meta: Value,
    /// The always-present tools, in listing order.
    pub tools: Vec<Value>,
    /// The tool `toggle_extra` adds and removes.
    pub extra_tool: Value,
    pub resources: Value,
    pub templates: Value,
    pub prompts: Value,
}

impl Catalog {
    pub(crate) fn new() -> Catalog {
        let server_info = json!({ "name": SERVER_NAME, "version": SERVER_VERSION });
        Catalog {
            result_meta: json!({ "io.modelcontextprotocol/serverInfo": server_info.clone() }),
            server_info,
            capabilities: json!({
                "tools": { "listChanged": true },
                "resources": { "subscribe": true, "listChanged": true },
                "prompts": { "listChanged": true },
                "logging": {},
                "completions": {}
            }),
            instructions: INSTRUCTIONS,
            tools: tools(),
            extra_tool: tool(
                "extra",
                "A tool that exists only while toggle_extra has switched it on.",
                json!({}),
                &[],
                json!({ "readOnlyHint": true }),
            ),
            resources: json!([
                {
                    "uri": README_URI, "name": "readme", "title": "Read me",
                    "description": "What this server is.", "mimeType": "text/plain"
                },
                {
                    "uri": DATA_URI, "name": "data", "title": "Sample data",
                    "description": "A small JSON document.", "mimeType": "application/json"
                },
                {
                    "uri": STATS_URI, "name": "stats", "title": "Fixture counters",
                    "description": "TCP connections accepted, calls served, and slow calls started, completed and cancelled.",
                    "mimeType": "application/json"
                }
            ]),
            templates: json!([{
                "uriTemplate": ITEM_TEMPLATE, "name": "item", "title": "An item by id",
                "description": "Any non-empty id names an item.", "mimeType": "application/json"
            }]),
            prompts: json!([{
                "name": GREETING, "title": "Greeting",
                "description": "Asks the model to greet someone.",
                "arguments": [{ "name": "name", "description": "Who to greet", "required": true }]
            }]),
        }
    }
}

/// The fixed tools, in the order `tools/list` returns them.
fn tools() -> Vec<Value> {
    let string = |description: &str| json!({ "type": "string", "description": description });
    let number = |description: &str| json!({ "type": "number", "description": description });
    let read_only = json!({ "readOnlyHint": true, "openWorldHint": false });
    vec![
        tool(
            "echo",
            "Returns its text unchanged.",
            json!({ "text": string("Text to echo") }),
            &["text"],
            read_only.clone(),
        ),
        tool(
            "add",
            "Adds two numbers.",
            json!({ "a": number("First addend"), "b": number("Second addend") }),
            &["a", "b"],
            read_only.clone(),
        ),
        tool(
            "transfer_funds",
            "Pretends to transfer money to someone.",
            json!({ "to": string("Recipient"), "amount": number("Amount to transfer") }),
            &["to", "amount"],
            json!({ "destructiveHint": true, "idempotentHint": false, "openWorldHint": true }),
        ),
        tool(
            "delete_records",
            "Pretends to delete every record in a table.",
            json!({ "table": string("Table to empty") }),
            &["table"],
            json!({ "destructiveHint": true, "idempotentHint": true }),
        ),
        tool(
            "lookup_customer",
            "Returns a fake customer record full of personal data and fake secrets.",
            json!({ "customer_id": {
                "type": "string", "description": "Customer id", "x-mcp-header": "CustomerId"
            } }),
            &["customer_id"],
            read_only.clone(),
        ),
        tool(
            "slow",
            "Sleeps for ms milliseconds, reporting progress in steps when asked to.",
            json!({
                "ms": { "type": "integer", "minimum": 0, "maximum": crate::tools::MAX_SLOW_MS,
                        "description": "Total time to sleep" },
                "steps": { "type": "integer", "minimum": 1, "maximum": crate::tools::MAX_STEPS,
                           "description": "Progress notifications to send (default 5)" }
            }),
            &["ms"],
            read_only.clone(),
        ),
        tool(
            "log",
            "Sends a log message notification, then returns.",
            json!({
                "level": { "type": "string", "enum": LOG_LEVELS, "description": "Log level" },
                "message": string("Message to log")
            }),
            &["level", "message"],
            read_only.clone(),
        ),
        tool(
            "pid",
            "Returns the server's process id.",
            json!({}),
            &[],
            read_only.clone(),
        ),
        tool(
            "ask",
            "Asks the user a question through elicitation and returns the answer.",
            json!({ "message": string("Question for the user") }),
            &["message"],
            read_only.clone(),
        ),
        tool(
            "sample",
            "Asks the client's model to complete a prompt through sampling.",
            json!({ "prompt": string("Prompt for the model") }),
            &["prompt"],
            read_only.clone(),
        ),
        tool(
            "roots",
            "Asks the client for its roots.",
            json!({}),
            &[],
            read_only,
        ),
        tool(
            "toggle_extra",
            "Adds or removes the tool `extra` and announces that the tool list changed.",
            json!({}),
            &[],
            json!({ "readOnlyHint": false, "idempotentHint": false }),
        ),
    ]
}

fn tool(
    name: &str,
    description: &str,
    properties: Value,
    required: &[&str],
    annotations: Value,
) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    json!({
        "name": name,
        "description": description,
        "inputSchema": schema,
        "annotations": annotations
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_unique_and_valid() {
        let catalog = Catalog::new();
        let mut names: Vec<&str> = catalog
            .tools
            .iter()
            .chain(std::iter::once(&catalog.extra_tool))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(names.iter().all(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        }));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn header_params_match_the_schemas() {
        let catalog = Catalog::new();
        for p in HEADER_PARAMS {
            let tool = catalog.tools.iter().find(|t| t["name"] == p.tool).unwrap();
            let prop = &tool["inputSchema"]["properties"][p.argument];
            assert_eq!(prop["x-mcp-header"], p.header);
        }
    }
}
