//! Scanning and rewriting a JSON value in place, keeping its structure and types.

use crate::normalise::normalise;
use crate::{Action, Engine, Outcome};
use serde_json::Value;
use std::ops::Range;

impl Engine {
    /// Scans every string in `value` (object keys are not scanned; see the crate doc), rewrites
    /// masked, pseudonymised and blocked matches in place, and reports every finding with its
    /// JSON path. Numbers, booleans, nulls, arrays and objects keep their types and order.
    pub fn apply(&self, value: &mut Value) -> Outcome {
        let mut outcome = Outcome::default();
        let mut path = String::from("$");
        self.walk(value, &mut path, &mut outcome);
        outcome
    }

    fn walk(&self, value: &mut Value, path: &mut String, out: &mut Outcome) {
        match value {
            Value::String(s) => {
                if let Some(rewritten) = self.rewrite(s, || path.clone(), out) {
                    *s = rewritten;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let len = path.len();
                    push_key(path, key);
                    self.walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Records the findings in `s` under the path `path` gives (asked only when there are
    /// findings); returns the rewritten string if anything is replaced.
    pub(crate) fn rewrite(
        &self,
        s: &str,
        path: impl FnOnce() -> String,
        out: &mut Outcome,
    ) -> Option<String> {
        let edits = self.edits(s, path, out);
        (!edits.is_empty()).then(|| splice(s, &edits))
    }

    /// Records the findings in `s` as [`Engine::rewrite`] does, and returns what it would
    /// replace: spans of `s` in order, not overlapping, each with its replacement.
    pub(crate) fn edits(
        &self,
        s: &str,
        path: impl FnOnce() -> String,
        out: &mut Outcome,
    ) -> Vec<(Range<usize>, String)> {
        let norm = normalise(s);
        let hits = self.hits(norm.text());
        if hits.is_empty() {
            return Vec::new();
        }
        let mut edits = Vec::with_capacity(hits.len());
        out.findings.reserve(hits.len());
        let path = path();
        let path = path.as_str();
        let mut copied = 0;
        for hit in hits {
            let finding = self.finding(&norm, hit, path);
            out.blocked |= finding.action == Action::Block;
            if let Some(replacement) = self.replacement(norm.text(), hit) {
                // Two matches can share an original character when NFKC expanded it (`㎏` is
                // `kg`): the second replacement then starts where the first one ended.
                let start = finding.start.max(copied);
                copied = copied.max(finding.end);
                edits.push((start..copied, replacement));
            }
            out.findings.push(finding);
        }
        edits
    }
}

/// `s` with each span of `edits` (in order, not overlapping) replaced by its text.
pub(crate) fn splice(s: &str, edits: &[(Range<usize>, String)]) -> String {
    let grown: usize = edits.iter().map(|(_, text)| text.len()).sum();
    let mut out = String::with_capacity(s.len() + grown);
    let mut copied = 0;
    for (span, text) in edits {
        out.push_str(&s[copied..span.start]);
        out.push_str(text);
        copied = span.end;
    }
    out.push_str(&s[copied..]);
    out
}

/// `.name` for identifier-like keys, `["…"]` (JSON-escaped) for the rest.
pub(crate) fn push_key(path: &mut String, key: &str) {
    let ident = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ident {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_string()).to_string());
        path.push(']');
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{Action, Engine, Rules};
    use serde_json::json;

    /// An engine with every built-in detector set to `action`.
    pub(crate) fn engine(action: Action) -> Engine {
        let mut rules = Rules::builtin([7; 32]);
        for d in &mut rules.detectors {
            d.action = action;
        }
        Engine::new(rules).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn paths_name_every_string() {
        let mut v = json!({
            "content": [{"type": "text", "text": "mail ann@example.com"}],
            "odd key": ["x", "card 4111 1111 1111 1111"]
        });
        let out = engine(Action::Report).apply(&mut v);
        let paths: Vec<&str> = out.findings.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["$.content[0].text", "$[\"odd key\"][1]"]);
        assert!(!out.blocked);
    }

    #[test]
    fn masking_keeps_structure_and_other_types() {
        let mut v = json!({"n": 4111111111111111u64, "b": true, "z": null,
            "list": [1.5, "card 4111-1111-1111-1111 and ann@example.com"]});
        let out = engine(Action::Mask).apply(&mut v);
        assert_eq!(
            v,
            json!({"n": 4111111111111111u64, "b": true, "z": null,
                "list": [1.5, "card [card ••••1111] and [email]"]})
        );
        assert_eq!(out.findings.len(), 2);
    }

    #[test]
    fn block_masks_and_sets_blocked() {
        let mut v = json!(["key AKIAZ7VQ4XH2LMN3PQRS here"]);
        let out = engine(Action::Block).apply(&mut v);
        assert!(out.blocked);
        assert_eq!(v, json!(["key [aws_access_key] here"]));
    }

    #[test]
    fn pseudonyms_are_stable_across_calls_and_tell_values_apart() {
        let e = engine(Action::Pseudonymise);
        let mut a = json!(["ann@example.com", "bob@example.com", "ANN@example.com"]);
        let mut b = a.clone();
        e.apply(&mut a);
        e.apply(&mut b);
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        assert_eq!(a[0], a[2]);
        assert!(a[0].as_str().is_some_and(|s| s.starts_with("[email:")));
    }

    #[test]
    fn findings_never_hold_the_value() {
        let secret = "ann@example.com";
        let mut v = json!({"t": format!("to {secret}")});
        let out = engine(Action::Report).apply(&mut v);
        let debug = format!("{out:?}");
        assert!(!debug.contains(secret) && !debug.contains("ann"));
        assert_eq!(v, json!({"t": format!("to {secret}")}));
        assert_eq!(
            (out.findings[0].start, out.findings[0].end),
            (3, 3 + secret.len())
        );
    }

    #[test]
    fn evasions_are_rewritten_over_the_original_span() {
        let mut v = json!("pay 4111\u{200B}1111\u{200B}1111\u{200B}1111 now");
        engine(Action::Mask).apply(&mut v);
        assert_eq!(v, json!("pay [card ••••1111] now"));
    }

    #[test]
    fn characters_expanded_by_nfkc_are_replaced_whole() {
        // U+3393 (㎓) is `GHz` under NFKC, U+33C4 (㏄) is `cc`, U+FB01 (ﬁ) is `fi`.
        let mut v = json!([
            "\u{3393}\u{33C4}ann@example.com",
            "x\u{FB01}ann@example.com"
        ]);
        let out = engine(Action::Mask).apply(&mut v);
        assert_eq!(out.findings.len(), 2);
        assert_eq!(v, json!(["[email]", "[email]"]));
    }
}
