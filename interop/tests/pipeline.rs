//! A stage of the pipeline talks to a real client: Warden's own `elicitation/create`, sent on a
//! held call's stream, reaches `@modelcontextprotocol/sdk` 1.32 (2025-11-25), the client's answer
//! reaches the waiting stage, and the same call then goes on to its upstream and returns.

use serde_json::json;
use warden_gateway::testing::Waiting;
use warden_interop::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_request_of_warden_s_own_reaches_the_legacy_sdk_and_its_answer_reaches_the_stage() {
    require_node_modules();
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().canonicalize().expect("canonical temp dir");
    let stage = Waiting::asking("everything__echo");
    let gateway = warden_with_stage(&config_with(&reference_upstreams(&dir)), stage.clone())
        .await
        .expect("warden starts");
    let plan = json!({
        "calls": [{ "name": "everything__echo", "arguments": { "message": "after the answer" } }],
        "form": { "name": "Ada Lovelace" },
    });
    let report = run_client("sdk-v1.mjs", &gateway.mcp_url(), &plan).await;
    gateway.stop().await.expect("warden stops");
    let report = report.expect("sdk-v1 client runs");
    assert!(report.get("fatal").is_none(), "the client failed: {report}");

    // The client's handler got Warden's own request...
    let elicitations = report["elicitations"].as_array().expect("elicitations");
    assert_eq!(elicitations.len(), 1, "{report}");
    let asked = &elicitations[0];
    assert_eq!(asked["mode"], "form", "{asked}");
    assert_eq!(
        asked["message"], "Warden's test stage asks before this call goes on",
        "{asked}"
    );
    // ...its answer reached the stage that waited for it...
    let waits = stage.watch().borrow().clone();
    assert_eq!(
        waits.answers,
        vec![json!({ "action": "accept", "content": { "name": "Ada Lovelace" } })],
        "{waits:?}"
    );
    assert_eq!((waits.resumed, waits.abandoned), (1, 0), "{waits:?}");
    // ...and the same call went on to the upstream and returned its real result.
    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{report}");
    assert_eq!(calls[0]["isError"], false, "{}", calls[0]);
    assert_eq!(calls[0]["text"], "Echo: after the answer");
}
