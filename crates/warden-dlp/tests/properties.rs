//! Properties over arbitrary input: no panics, offsets on char boundaries, structure kept.

use proptest::prelude::*;
use warden_dlp::{Action, Engine, Rules};

fn engine(action: Action) -> Engine {
    let mut rules = Rules::builtin([3; 32]);
    for d in &mut rules.detectors {
        d.action = action;
    }
    Engine::new(rules).unwrap_or_else(|e| panic!("{e}"))
}

/// Text mixing findings, separators, invisible characters and full-width forms.
fn text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("4111 1111 1111 1111".to_string()),
        Just("ann@example.com".to_string()),
        Just("AKIAZ7VQ4XH2LMN3PQRS".to_string()),
        Just("password=Zx9vQ2mT7rLp4sKd8wBn;".to_string()),
        Just("\u{200B}".to_string()),
        Just("\u{FF14}\u{FF11}".to_string()),
        Just("\u{E0041}\u{202E}\u{00AD}".to_string()),
        "[0-9 .@:/=-]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn findings_are_ordered_spans_on_char_boundaries(s in text()) {
        let findings = engine(Action::Report).scan_text(&s);
        let mut last = 0;
        for f in findings {
            prop_assert!(f.start < f.end && f.end <= s.len());
            prop_assert!(s.is_char_boundary(f.start) && s.is_char_boundary(f.end));
            prop_assert!(f.start >= last);
            last = f.end;
        }
    }

    #[test]
    fn masking_keeps_types_and_leaves_nothing_to_find(s in text()) {
        let e = engine(Action::Mask);
        let mut v = serde_json::json!({"a": [s.clone(), 7, null], "b": s});
        e.apply(&mut v);
        prop_assert!(v["a"][0].is_string() && v["a"][1] == 7 && v["a"][2].is_null());
        let masked = v["b"].as_str().unwrap_or_default().to_string();
        prop_assert!(e.scan_text(&masked).is_empty(), "{masked:?}");
    }
}

/// JSON values whose strings and keys are such text.
fn value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn scanning_the_text_of_a_value_equals_scanning_the_value(
        v in value(),
        pretty in any::<bool>(),
        pick in 0..4usize,
    ) {
        let action = [Action::Report, Action::Mask, Action::Pseudonymise, Action::Block][pick];
        let e = engine(action);
        let text = if pretty {
            serde_json::to_string_pretty(&v)
        } else {
            serde_json::to_string(&v)
        };
        let text = text.unwrap_or_default();
        let mut tree = v.clone();
        let expected = e.apply(&mut tree);
        let scanned = e.apply_json(&text);
        prop_assert!(scanned.is_some(), "not walked: {text}");
        let scanned = scanned.unwrap_or_default();
        prop_assert_eq!(format!("{:?}", scanned.outcome), format!("{expected:?}"));
        let out = scanned.rewritten.unwrap_or(text);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        prop_assert_eq!(back, tree);
    }
}
