//! The policy guide, `docs/policies.md`, is the source of truth for the example policy set: its
//! ```` ```cedar ```` blocks load together, and they decide and list exactly as its tables say.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{Call, call};
use warden_policy::{Action, ConsentRule, Outcome, PolicyEngine};

const GUIDE: &str = "../../docs/policies.md";

fn guide() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GUIDE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The guide with every line outside a ```` ```cedar ```` block blanked, so that line numbers
/// in errors and default ids are the guide's own.
fn cedar_only(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        if inside && fence {
            inside = false;
        } else if !inside && line.trim() == "```cedar" {
            inside = true;
        } else if inside {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(!inside, "a ```cedar block is not closed");
    out
}

fn engine(text: &str) -> PolicyEngine {
    PolicyEngine::from_sources(&[("docs/policies.md".into(), cedar_only(text))])
        .unwrap_or_else(|e| panic!("the guide's policies do not load:\n{e}"))
}

/// The rows of the markdown table whose header is `header`, as trimmed cells without backticks.
fn table(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "no table {header:?} in the guide");
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            row.trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn list(cell: &str) -> Vec<String> {
    match cell {
        "—" => Vec::new(),
        cell => cell.split(',').map(|s| s.trim().to_owned()).collect(),
    }
}

/// Tool tags from the example's configuration: the ```` ```toml ```` block with
/// `[upstreams.bank]`, lines `tags = { tool = { key = "value", … }, … }` under `[upstreams.NAME]`.
fn tags(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let block = text
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("[upstreams.bank]"))
        .last()
        .expect("the example's configuration");
    let mut tags = BTreeMap::new();
    let mut server = "";
    for line in block.lines() {
        if let Some(name) = line.strip_prefix("[upstreams.") {
            server = name.trim_end_matches(']');
        }
        let Some(inner) = line.strip_prefix("tags = {") else {
            continue;
        };
        let mut rest = inner.trim_end().trim_end_matches('}');
        while let Some((tool, after)) = rest.split_once("= {") {
            let (body, after) = after.split_once('}').expect("a closing brace");
            let pairs = body
                .split(',')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("key = value");
                    (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
                })
                .collect();
            let tool = tool.trim().trim_start_matches(',').trim();
            tags.insert(format!("{server}__{tool}"), pairs);
            rest = after;
        }
    }
    tags
}

/// `server__tool` with its tags, as a call.
fn tool_call(name: &str, tags: &BTreeMap<String, Vec<(String, String)>>) -> Call {
    let (server, tool) = name.split_once("__").expect("server__tool");
    let mut c = call(&format!("{server}.{tool}"));
    for (k, v) in tags.get(name).into_iter().flatten() {
        c = c.tag(k, v);
    }
    c
}

fn caller(mut c: Call, groups: &str, agent: &str) -> Call {
    let groups = list(groups);
    c = c.groups(&groups.iter().map(String::as_str).collect::<Vec<_>>());
    if agent != "—" {
        c = c.agent(agent);
    }
    c
}

fn outcome(cell: &str) -> Outcome {
    match cell {
        "allow" => Outcome::Allow,
        "deny" => Outcome::Deny,
        other => {
            let rule = other
                .strip_prefix("consent (")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unknown decision {other:?}"));
            Outcome::Consent(ConsentRule::parse(rule).expect("a consent rule"))
        }
    }
}

#[test]
fn the_guides_policies_load() {
    let text = guide();
    let engine = engine(&text);
    assert_eq!(engine.len(), 6);
    // Every policy has an `@id`: none is named by its place in the file.
    for id in engine.policy_ids() {
        assert!(!id.starts_with("docs/"), "policy without @id at {id}");
    }
}

#[test]
fn the_example_decides_as_the_guide_says() {
    let text = guide();
    let engine = engine(&text);
    let tags = tags(&text);
    let rows = table(
        &text,
        "| groups | agent | tool | arguments | decision | policies |",
    );
    assert!(rows.len() >= 10, "{rows:?}");
    for row in rows {
        let [groups, agent, tool, arguments, decision, policies] = &row[..] else {
            panic!("a row of six cells: {row:?}");
        };
        let arguments: serde_json::Value =
            serde_json::from_str(arguments).unwrap_or_else(|e| panic!("{arguments}: {e}"));
        let request = caller(tool_call(tool, &tags), groups, agent).args(arguments);
        let decided = request.decide(&engine);
        assert_eq!(
            (decided.outcome, decided.policies.clone()),
            (outcome(decision), list(policies)),
            "{row:?}: {}",
            decided.explain()
        );
    }
}

#[test]
fn the_example_lists_as_the_guide_says() {
    let text = guide();
    let engine = engine(&text);
    let tags = tags(&text);
    let calls = table(
        &text,
        "| groups | agent | tool | arguments | decision | policies |",
    );
    let rows = table(&text, "| groups | agent | shows |");
    let tools: BTreeSet<String> = tags
        .keys()
        .cloned()
        .chain(calls.iter().map(|row| row[2].clone()))
        .chain(rows.iter().flat_map(|row| list(&row[2])))
        .collect();
    for row in &rows {
        let [groups, agent, shows] = &row[..] else {
            panic!("a row of three cells: {row:?}");
        };
        for server in ["files", "bank"] {
            let listing = caller(call(server).action(Action::ListTools), groups, agent);
            assert_eq!(listing.decide(&engine).outcome, Outcome::Allow, "{row:?}");
        }
        let visible: BTreeSet<String> = tools
            .iter()
            .filter(|tool| caller(tool_call(tool, &tags), groups, agent).visible(&engine))
            .cloned()
            .collect();
        let expected: BTreeSet<String> = list(shows).into_iter().collect();
        assert_eq!(visible, expected, "{row:?}");
    }
}

#[test]
fn the_guide_shows_a_real_explanation() {
    let text = guide();
    let engine = engine(&text);
    let decision = call("bank.transfer")
        .groups(&["finance"])
        .args(serde_json::json!({ "amount": 5000, "to": "DE02120300000000202051" }))
        .decide(&engine);
    let explanation = decision.explain();
    assert!(
        text.contains(&format!("\n{explanation}\n")),
        "the guide should show {explanation:?}"
    );
}

/// `tests/policies/example/` (used by other tests and the benchmark) holds the guide's policies.
#[test]
fn the_example_directory_holds_the_guides_policies() {
    let by_id = |text: &str| -> BTreeMap<String, serde_json::Value> {
        let set: cedar_policy::PolicySet = text.parse().expect("parses");
        set.policies()
            .map(|p| {
                let id = p.annotation("id").expect("an @id").to_owned();
                (id, p.to_json().expect("as JSON"))
            })
            .collect()
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/example");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the example directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    files.sort();
    let directory: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        by_id(&directory),
        by_id(&cedar_only(&guide())),
        "update tests/policies/example/ from docs/policies.md"
    );
}
