//! The official client SDKs of both eras, through Warden, use the two reference servers as stdio
//! upstreams: `@modelcontextprotocol/server-everything` and `@modelcontextprotocol/server-filesystem`
//! serving a folder the test creates. A 2025-era client also answers the URL-mode and form-mode
//! elicitations the everything server sends during a call, relayed by Warden.
//!
//! The clients are the scripts in `clients/` (run with Node 22); each prints one JSON line.

use serde_json::{Value, json};
use warden_interop::*;

const NOTE: &str = "Warden interop note\nThe filesystem server read this through the gateway.\n";

fn plan_for(note: &std::path::Path) -> Value {
    json!({ "calls": [
        { "name": "everything__echo", "arguments": { "message": "hello through Warden" } },
        { "name": "files__read_text_file", "arguments": { "path": note } },
    ]})
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What a user of either client sees: both servers' tools under their prefixes, the echo, and
/// the file's content.
fn assert_both_servers_work(report: &Value) {
    assert!(report.get("fatal").is_none(), "the client failed: {report}");
    let tools = strings(&report["tools"]);
    for expected in [
        "everything__echo",
        "everything__get-sum",
        "everything__trigger-url-elicitation",
        "files__read_text_file",
        "files__list_directory",
    ] {
        assert!(
            tools.contains(&expected),
            "{expected} not listed: {tools:?}"
        );
    }
    assert!(
        tools
            .iter()
            .all(|t| t.starts_with("everything__") || t.starts_with("files__")),
        "a tool without its server's prefix: {tools:?}"
    );
    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{report}");
    assert_eq!(calls[0]["isError"], false, "echo failed: {}", calls[0]);
    assert_eq!(calls[0]["text"], "Echo: hello through Warden");
    assert_eq!(
        calls[1]["isError"], false,
        "read_text_file failed: {}",
        calls[1]
    );
    assert_eq!(calls[1]["text"], NOTE);
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sdk_client_lists_and_calls_tools_of_both_reference_servers() {
    let s = ReferenceGateway::start(NOTE).await;
    let report = run_client("sdk-v1.mjs", &s.gateway.mcp_url(), &plan_for(&s.note)).await;
    let initializes = requests_answered(&s.gateway, "initialize");
    s.gateway.stop().await.expect("warden stops");
    let report = report.expect("sdk-v1 client runs");

    assert_both_servers_work(&report);
    assert_eq!(report["protocolVersion"], "2025-11-25", "{report}");
    assert!(report["sessionId"].is_string(), "no session: {report}");
    assert_eq!(report["server"], "warden");
    assert_eq!(initializes, 1, "the 2025 client opens one session");
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_client_negotiates_2026_07_28_and_uses_both_reference_servers() {
    let s = ReferenceGateway::start(NOTE).await;
    let report = run_client("client-v2.mjs", &s.gateway.mcp_url(), &plan_for(&s.note)).await;
    let initializes = requests_answered(&s.gateway, "initialize");
    let discovers = requests_answered(&s.gateway, "server/discover");
    let sessions = s.gateway.gateway.sessions.len();
    s.gateway.stop().await.expect("warden stops");
    let report = report.expect("client-v2 runs");

    assert_both_servers_work(&report);
    // The client says it negotiated the modern era, and Warden agrees: it was probed with
    // server/discover, never saw initialize and opened no session.
    assert_eq!(report["era"], "modern", "{report}");
    assert_eq!(report["protocolVersion"], "2026-07-28", "{report}");
    assert_eq!(report["sessionId"], Value::Null, "{report}");
    assert_eq!(report["server"], "warden");
    assert_eq!(initializes, 0, "a 2026-07-28 client sends no initialize");
    assert!(
        discovers >= 1,
        "the client never probed with server/discover"
    );
    assert_eq!(
        sessions, 0,
        "Warden opened a session for a 2026-07-28 client"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sdk_client_answers_url_and_form_elicitations_relayed_during_a_call() {
    let s = ReferenceGateway::start(NOTE).await;
    let consent_url = "https://consent.example.com/approve?request=7f3c";
    let plan = json!({
        "calls": [
            { "name": "everything__trigger-url-elicitation",
              "arguments": { "url": consent_url, "message": "Approve the transfer in your browser" } },
            { "name": "everything__trigger-elicitation-request", "arguments": {} },
            // The error path: the server refuses with -32042 and names a prerequisite URL.
            { "name": "everything__trigger-url-elicitation",
              "arguments": { "url": consent_url, "errorPath": true } },
        ],
        "form": { "name": "Ada Lovelace", "check": true, "email": "ada@example.com", "integer": 7 },
    });
    let report = run_client("sdk-v1.mjs", &s.gateway.mcp_url(), &plan).await;
    s.gateway.stop().await.expect("warden stops");
    let report = report.expect("sdk-v1 client runs");
    assert!(report.get("fatal").is_none(), "the client failed: {report}");
    let elicitations = report["elicitations"].as_array().expect("elicitations");
    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 3, "{report}");
    assert_eq!(
        elicitations.len(),
        2,
        "the handler saw {elicitations:?} (calls: {calls:?})"
    );

    // URL mode: the client's handler got the server's request as the server sent it...
    let url = &elicitations[0];
    assert_eq!(url["mode"], "url", "{url}");
    assert_eq!(url["url"], consent_url);
    assert_eq!(url["message"], "Approve the transfer in your browser");
    let elicitation_id = url["elicitationId"].as_str().expect("elicitationId");
    assert!(!elicitation_id.is_empty());
    // ...and its `accept` went back to the server, which finished the tool with it.
    let done = &calls[0];
    assert_eq!(done["isError"], false, "{done}");
    let text = done["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("User completed the URL elicitation flow"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Elicitation ID: {elicitation_id}")),
        "{text}"
    );
    assert!(text.contains(&format!("URL: {consent_url}")), "{text}");
    assert!(text.contains("\"action\": \"accept\""), "{text}");

    // Form mode: the schema arrived, and the content the user typed reached the server.
    let form = &elicitations[1];
    assert!(form.get("mode").is_none_or(|m| m == "form"), "{form}");
    assert_eq!(
        form["requestedSchema"]["required"],
        json!(["name"]),
        "{form}"
    );
    assert!(form["requestedSchema"]["properties"]["email"].is_object());
    let filled = &calls[1];
    assert_eq!(filled["isError"], false, "{filled}");
    let text = filled["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("User provided the requested information"),
        "{text}"
    );
    assert!(text.contains("- Name: Ada Lovelace"), "{text}");
    // The server echoes the address back in its result, where DLP masks it (default rules).
    assert!(text.contains("- Email: [email]"), "{text}");
    assert!(!text.contains("ada@example.com"), "{text}");
    assert!(text.contains("- Favorite Integer: 7"), "{text}");

    // URL elicitation required (-32042): the error and its prerequisite URL reach the client.
    let refused = &calls[2];
    assert_eq!(refused["code"], -32042, "{refused}");
    let required = &refused["data"]["elicitations"][0];
    assert_eq!(required["mode"], "url", "{refused}");
    assert_eq!(
        required["url"], "https://modelcontextprotocol.io",
        "{refused}"
    );
    assert!(required["elicitationId"].is_string(), "{refused}");
}
