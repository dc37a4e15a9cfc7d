//! The examples in docs/ stay true to the code: every complete config example loads, and the
//! audit page's example checkpoint opens with its verifier key.

use std::path::Path;

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn configuration_examples_load() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let text = std::fs::read_to_string(&docs).unwrap();
    let complete: Vec<String> = toml_blocks(&text)
        .into_iter()
        .filter(|b| b.contains("[identity]"))
        .collect();
    assert!(
        !complete.is_empty(),
        "docs/configuration.md has a complete example"
    );
    for block in complete {
        let config = warden_gateway::Config::from_toml(&docs, &block)
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert_eq!(config.upstreams.len(), 2);
        assert_eq!(config.server.name_separator, "__");
    }
}

#[test]
fn the_audit_docs_example_checkpoint_verifies_with_its_key() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit.md");
    let text = std::fs::read_to_string(&docs).unwrap();
    let start = text
        .find("```text\nwarden.example.com/mcp/audit\n")
        .expect("the example checkpoint");
    let note = &text[start + "```text\n".len()..];
    let note = &note[..note.find("```").unwrap()];
    let key = text
        .split('`')
        .find(|t| t.starts_with("warden.example.com/mcp/audit+"))
        .expect("the example verifier key");
    let key = warden_audit::Verifier::parse(key).unwrap();
    let checkpoint = warden_audit::Checkpoint::open(note, &key).expect("signed by that key");
    assert_eq!(checkpoint.size, 2);
}
