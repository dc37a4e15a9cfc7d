//! `warden policy lint`: policies that load but name what no upstream offers.

use std::path::Path;

use serde_json::json;
use warden_policy::{PolicyEngine, ToolInfo};

fn example() -> PolicyEngine {
    PolicyEngine::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/example"))
        .expect("example loads")
}

fn tool(server: &str, name: &str, properties: &[&str]) -> ToolInfo {
    let properties: serde_json::Map<String, serde_json::Value> = properties
        .iter()
        .map(|p| (p.to_string(), json!({ "type": "string" })))
        .collect();
    ToolInfo {
        server: server.into(),
        name: name.into(),
        input_schema: Some(json!({ "type": "object", "properties": properties })),
    }
}

#[test]
fn the_example_is_clean_against_its_upstreams() {
    let tools = [
        tool("files", "read_file", &["path"]),
        tool("files", "write_file", &["path", "content"]),
        tool("bank", "transfer", &["amount", "to"]),
    ];
    let findings = example().lint(&tools);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn names_missing_tools_and_arguments() {
    let findings = example().lint(&[tool("bank", "transfer", &["sum", "to"])]);
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    for line in &text {
        assert!(line.contains("finance.cedar:"), "{line}");
        assert!(
            line.contains(
                "reads context.arguments.amount, but the tool's inputSchema has no such property"
            ),
            "{line}"
        );
    }
    let findings = example().lint(&[tool("files", "read_file", &["path"])]);
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|l| l
                .contains("names Tool::\"bank.transfer\", which no configured upstream offers")),
        "{text:#?}"
    );
}

#[test]
fn an_empty_set_and_cedar_warnings_are_findings() {
    let empty = PolicyEngine::from_sources(&[]).unwrap();
    assert_eq!(
        empty.lint(&[])[0].to_string(),
        "the policy set is empty: every request is denied"
    );
    let engine = PolicyEngine::from_sources(&[(
        "p.cedar".into(),
        "permit (principal, action, resource) when { resource is Tool && resource.name == \"раураl\" };".into(),
    )])
    .unwrap();
    let text: Vec<String> = engine.lint(&[]).iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|l| l.starts_with("p.cedar:1:1: policy p.cedar:1: warning:")),
        "{text:#?}"
    );
}
