//! DLP with real peers: the official client SDKs of both eras (`@modelcontextprotocol/sdk`
//! 1.32.x, `@modelcontextprotocol/client` 2.4.x) call, through Warden, the Rust fixture answering
//! in JSON and, as a second upstream, always in SSE, and `@modelcontextprotocol/server-filesystem`
//! reading a file of test data. Every piece of personal data and every secret is masked (e-mail
//! addresses pseudonymised, the same token on every call) in what each client receives; an
//! argument carrying an AWS secret key is blocked before it leaves Warden.

use serde_json::{Value, json};
use warden_interop::*;

/// Test data the filesystem server reads; every value on it is a documented example.
const CUSTOMERS: &str = "id,name,email,card,iban\n\
    c-1,Jane Doe,jane.doe@example.com,4111 1111 1111 1111,GB82 WEST 1234 5698 7654 32\n\
    c-2,John Roe,john.roe@example.org,5555 5555 5555 4444,DE89 3704 0044 0532 0130 00\n\
    ops contact: +44 20 7946 0958, server 10.1.2.3, key AKIAIOSFODNN7EXAMPLE\n";

/// What must not reach a client as it is.
const RAW: &[&str] = &[
    "jane.doe@example.com",
    "john.roe@example.org",
    "4111 1111 1111 1111",
    "5555 5555 5555 4444",
    "GB82 WEST",
    "DE89 3704",
    "7946 0958",
    "10.1.2.3",
    "AKIAIOSFODNN7EXAMPLE",
    "sk_live_FIXTURE",
    "415 555 0100",
];

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

async fn fixture(sse_always: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let options = warden_fixture::Options {
        sse_always,
        ..Default::default()
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    url
}

fn plan(customers: &std::path::Path) -> Value {
    let lookup = |tool: &str, id: &str| json!({ "name": tool, "arguments": { "customer_id": id } });
    json!({ "calls": [
        lookup("json__lookup_customer", "c-1"),
        lookup("sse__lookup_customer", "c-1"),
        { "name": "files__read_text_file", "arguments": { "path": customers } },
        lookup("json__lookup_customer", "c-2"),
        { "name": "json__echo", "arguments": { "text": format!("aws_secret_access_key = {SECRET}") } },
    ]})
}

async fn run(script: &str) {
    require_node_modules();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().canonicalize().unwrap();
    let customers = dir.join("customers.csv");
    std::fs::write(&customers, CUSTOMERS).unwrap();
    let node = node().display().to_string();
    let filesystem = bin("mcp-server-filesystem").display().to_string();
    let upstreams = format!(
        "[upstreams.json]\nurl = {:?}\n\n[upstreams.sse]\nurl = {:?}\n\n\
         [upstreams.files]\ncommand = {node:?}\nargs = [{filesystem:?}, {:?}]\n\n\
         [dlp]\nresults = {{ email = \"pseudonymise\" }}\n",
        fixture(false).await,
        fixture(true).await,
        dir.display().to_string()
    );
    let gateway = warden(&config_with(&upstreams)).await.unwrap();
    let report = run_client(script, &gateway.mcp_url(), &plan(&customers)).await;
    gateway.stop().await.unwrap();
    let report = report.unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(report.get("fatal").is_none(), "{script} failed: {report}");

    let seen = report.to_string();
    for raw in RAW {
        assert!(!seen.contains(raw), "{raw} reached {script}: {seen}");
    }
    assert!(!seen.contains(SECRET), "the secret came back to {script}");
    let calls = report["calls"].as_array().unwrap();
    for (i, call) in calls.iter().take(4).enumerate() {
        assert_eq!(call["isError"], false, "{script} call {i}: {call}");
    }
    let fixture_text = calls[0]["text"].as_str().unwrap();
    for masked in [
        "[card ••••1111]",
        "[iban]",
        "[phone]",
        "[stripe_key]",
        "[aws_access_key]",
    ] {
        assert!(
            fixture_text.contains(masked),
            "{masked} not in {fixture_text}"
        );
    }
    // The SSE upstream's reply is masked exactly like the JSON one's.
    assert_eq!(calls[1]["text"], calls[0]["text"], "{script}");
    assert_eq!(calls[0]["structuredContent"]["card"], "[card ••••1111]");
    // One person, one pseudonym, in both servers' data and on every call.
    let jane = calls[0]["structuredContent"]["email"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(jane.starts_with("[email:"), "{jane}");
    assert_eq!(calls[3]["structuredContent"]["email"], jane.as_str());
    let file = calls[2]["text"].as_str().unwrap();
    assert!(
        file.contains(&format!("Jane Doe,{jane},[card ••••1111],[iban]")),
        "{file}"
    );
    assert!(
        file.contains("[card ••••4444]") && file.contains("[ipv4]"),
        "{file}"
    );
    assert_eq!(file.matches("[email:").count(), 2, "{file}");
    // The secret in an argument never left Warden.
    let blocked = &calls[4];
    assert_eq!(blocked["code"], -32056, "{script}: {blocked}");
    let error = blocked["error"].as_str().unwrap();
    assert!(
        error.contains("withheld by data policy") && error.contains("aws_secret_key"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2025_sdk_client_receives_masked_data_from_json_sse_and_filesystem_servers() {
    run("sdk-v1.mjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2026_client_receives_masked_data_from_json_sse_and_filesystem_servers() {
    run("client-v2.mjs").await;
}

/// Data rules from Cedar policy, with `script`'s client in front of the fixture (`sse`: it
/// answers legacy calls always in SSE; a modern client's calls go over a modern link, in JSON): a contractor's call to the customer lookup is withheld because it
/// holds an e-mail address; support sees the address and the phone number as they are (a rule
/// for their group and that tool reports them), while the card stays masked by the
/// configuration's default; nobody gets a permission from a data rule.
async fn data_rules(script: &str, sse: bool) {
    require_node_modules();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("rules.cedar"),
        r#"
@id("staff-use-json")
permit (principal in Group::"staff", action, resource in Server::"json");

@id("contractors-see-no-email")
@dlp_results("email=block")
permit (principal in Group::"contractors", action, resource in Server::"json");

@id("support-reads-contact-data")
@dlp_results("email=report, phone=report")
permit (principal in Group::"support", action == Action::"call_tool", resource == Tool::"json.lookup_customer");
"#,
    )
    .unwrap();
    let url = fixture(sse).await;
    let as_group = |groups: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[identity]\ntest_user = \"tester\"\ntest_groups = [{groups}]\n\n\
             [policy]\ndir = {:?}\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n[upstreams.json]\nurl = {url:?}\n",
            policies.path().display().to_string()
        )
    };
    let lookup = json!({ "calls": [
        { "name": "json__lookup_customer", "arguments": { "customer_id": "c-1" } },
        { "name": "json__echo", "arguments": { "text": "nothing personal" } },
    ]});
    let mut seen = Vec::new();
    for groups in [
        "\"staff\", \"contractors\"",
        "\"staff\", \"support\"",
        "\"contractors\"",
    ] {
        let gateway = warden(&as_group(groups)).await.unwrap();
        let report = run_client(script, &gateway.mcp_url(), &lookup).await;
        gateway.stop().await.unwrap();
        let report = report.unwrap_or_else(|e| panic!("{script} {groups}: {e}"));
        assert!(report.get("fatal").is_none(), "{script} {groups}: {report}");
        seen.push(report);
    }

    let contractor = &seen[0]["calls"];
    assert_eq!(contractor[0]["code"], -32056, "{contractor}");
    let error = contractor[0]["error"].as_str().unwrap();
    assert!(
        error.contains("withheld by data policy") && error.contains("email"),
        "{error}"
    );
    assert!(!seen[0].to_string().contains("jane.doe@example.com"));
    assert_eq!(contractor[1]["text"], "nothing personal", "{contractor}");

    let support = &seen[1]["calls"][0];
    assert_eq!(support["isError"], false, "{support}");
    let text = support["text"].as_str().unwrap();
    assert!(
        text.contains("jane.doe@example.com") && text.contains("+1 415 555 0100"),
        "{text}"
    );
    assert!(text.contains("[card ••••1111]"), "{text}");
    assert_eq!(support["structuredContent"]["card"], "[card ••••1111]");

    // A data rule alone grants nothing: a contractor outside staff may not call the tool.
    let outsider = &seen[2]["calls"];
    assert_eq!(outsider[0]["code"], -32602, "{outsider}");
    assert_eq!(outsider[1]["code"], -32602, "{outsider}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_rules_choose_the_action_per_group_and_tool_for_the_2025_sdk_client_over_sse() {
    data_rules("sdk-v1.mjs", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_rules_choose_the_action_per_group_and_tool_for_the_2026_client() {
    data_rules("client-v2.mjs", false).await;
}
