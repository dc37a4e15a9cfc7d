//! The examples in docs/ stay true to the code: every complete config example loads.

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
