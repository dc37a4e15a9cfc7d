//! Policy with real clients and a real identity provider: the official SDK client signs in
//! through oidc-provider (Chromium) as alice (group finance) and as bob; alice sees two tools,
//! bob one, and bob calling alice's other tool is answered as if it did not exist.

use serde_json::{Value, json};
use warden_interop::*;

async fn gateway(issuer: &str, fixture: &str) -> warden_gateway::Running {
    let policies = interop_dir().join("policies/two-users");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\nissuer = {issuer:?}\nscopes_supported = [\"mcp:tools\"]\n[outbound]\nallow = [\"127.0.0.1\"]\n[policy]\ndir = {:?}\n[upstreams.fx]\nurl = {fixture:?}\n",
        policies.display().to_string()
    );
    warden(&config).await.expect("warden starts")
}

fn as_user(user: &str) -> Value {
    json!({ "user": user, "calls": [
        { "name": "fx__test_simple_text", "arguments": {} },
        { "name": "fx__test_image_content", "arguments": {} },
        { "name": "fx__no_such_tool", "arguments": {} }
    ] })
}

#[tokio::test]
async fn users_see_and_call_only_what_policy_gives_them() {
    require_chromium();
    require_node_modules();
    let idp = identity_provider("http://127.0.0.1:8080/mcp", json!({}))
        .await
        .expect("identity provider");
    let issuer = idp.url.clone().expect("issuer");
    let fixture = conformance_fixture_http().await.expect("fixture");
    let gw = gateway(&issuer, fixture.url.as_deref().unwrap()).await;
    let url = gw.mcp_url();

    let alice = run_oauth_client(&url, &as_user("alice"))
        .await
        .expect("alice's client");
    let mut tools: Vec<&str> = alice["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        ["fx__test_image_content", "fx__test_simple_text"],
        "{alice}"
    );
    assert_eq!(
        alice["calls"][0]["text"],
        "This is a simple text response for testing."
    );
    assert!(alice["calls"][1].get("error").is_none(), "{alice}");

    let bob = run_oauth_client(&url, &as_user("bob"))
        .await
        .expect("bob's client");
    let tools: Vec<&str> = bob["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tools, ["fx__test_simple_text"], "{bob}");
    assert_eq!(
        bob["calls"][0]["text"],
        "This is a simple text response for testing."
    );
    let hidden = &bob["calls"][1];
    let missing = &bob["calls"][2];
    assert_eq!(hidden["code"], -32602, "{bob}");
    assert_eq!(hidden["code"], missing["code"]);
    assert_eq!(
        hidden["error"]
            .as_str()
            .unwrap()
            .replace("fx__test_image_content", "NAME"),
        missing["error"]
            .as_str()
            .unwrap()
            .replace("fx__no_such_tool", "NAME"),
        "a hidden tool answers exactly like a missing one"
    );
    gw.stop().await.unwrap();
}
