//! Building an engine from rules: custom detectors, actions and precise errors.

use warden_dlp::{Action, CustomRule, DetectorRule, Engine, Error, Rules, Validator};

fn custom(id: &str, regex: &str, keywords: &[&str], validator: Option<Validator>) -> DetectorRule {
    DetectorRule {
        id: id.into(),
        action: Action::Mask,
        custom: Some(CustomRule {
            regex: regex.into(),
            keywords: keywords.iter().map(|k| (*k).to_string()).collect(),
            validator,
        }),
    }
}

fn rules(detectors: Vec<DetectorRule>) -> Rules {
    Rules {
        detectors,
        allow: Vec::new(),
        pseudonym_key: [9; 32],
    }
}

fn build(r: Rules) -> Engine {
    Engine::new(r).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn custom_rule_with_keywords_and_group() {
    let e = build(rules(vec![custom(
        "employee_id",
        r"(?i)employee\s*#?\s*(E\d{6})",
        &["employee"],
        None,
    )]));
    let text = "Employee # E123456 joined";
    let found = e.scan_text(text);
    assert_eq!(found.len(), 1);
    assert_eq!(&text[found[0].start..found[0].end], "E123456");
    assert!(e.scan_text("E123456 without the key word").is_empty());
}

#[test]
fn custom_rule_without_keywords_and_with_validator() {
    let e = build(rules(vec![custom(
        "loyalty_card",
        r"\bLC-\d{8}\b",
        &[],
        Some(Validator::Luhn),
    )]));
    assert_eq!(e.scan_text("card LC-12345678 ok").len(), 0);
    assert_eq!(e.scan_text("card LC-00000018 ok").len(), 1);
    let m = build(rules(vec![custom(
        "acct",
        r"\bXX\d{2}[A-Z0-9]{14}\b",
        &[],
        Some(Validator::Mod97),
    )]));
    assert!(m.scan_text("XX00ABCDEFGHIJKLMN").is_empty());
}

#[test]
fn errors_name_the_detector() {
    let bad = Engine::new(rules(vec![custom("broken", "(unclosed", &[], None)]));
    assert!(matches!(&bad, Err(Error::BadRegex { id, .. }) if id == "broken"));
    let msg = bad
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.starts_with("custom detector `broken`: invalid regex"),
        "{msg}"
    );

    let unknown = DetectorRule {
        id: "passport".into(),
        action: Action::Mask,
        custom: None,
    };
    assert!(
        matches!(Engine::new(rules(vec![unknown])), Err(Error::UnknownDetector { id }) if id == "passport")
    );

    let twice = Rules::builtin([0; 32]);
    let mut detectors = twice.detectors.clone();
    detectors.push(detectors[0].clone());
    assert!(matches!(
        Engine::new(rules(detectors)),
        Err(Error::DuplicateDetector { .. })
    ));

    let empty = Engine::new(rules(vec![custom("x", "x", &[""], None)]));
    assert!(matches!(empty, Err(Error::EmptyKeyword { id }) if id == "x"));
}

#[test]
fn actions_per_detector() {
    let mut r = Rules::builtin([1; 32]);
    for d in &mut r.detectors {
        d.action = match d.id.as_str() {
            "email" => Action::Pseudonymise,
            "ipv4" => Action::Report,
            "card" => Action::Mask,
            _ => Action::Block,
        };
    }
    let e = build(r);
    let mut v =
        serde_json::json!({"text": "ann@example.com from 10.0.0.1 paid 4111 1111 1111 1111"});
    let out = e.apply(&mut v);
    assert!(!out.blocked);
    let text = v["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("[email:") && text.ends_with(" from 10.0.0.1 paid [card ••••1111]"),
        "{text}"
    );
    let mut s = serde_json::json!("ssn 219-09-9988");
    assert!(e.apply(&mut s).blocked);
    assert_eq!(s, serde_json::json!("ssn [ssn]"));
}

#[test]
fn pseudonyms_depend_on_the_key() {
    let a = build(rules(vec![DetectorRule {
        id: "email".into(),
        action: Action::Pseudonymise,
        custom: None,
    }]));
    let mut other = rules(vec![DetectorRule {
        id: "email".into(),
        action: Action::Pseudonymise,
        custom: None,
    }]);
    other.pseudonym_key = [10; 32];
    let b = build(other);
    let (mut x, mut y) = (
        serde_json::json!("ann@example.com"),
        serde_json::json!("ann@example.com"),
    );
    a.apply(&mut x);
    b.apply(&mut y);
    assert_ne!(x, y);
}

#[test]
fn engine_is_shareable_and_debug_hides_secrets() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Engine>();
    let mut r = Rules::builtin([0xAB; 32]);
    r.allow = vec!["AKIAIOSFODNN7EXAMPLE".into()];
    let debug = format!("{r:?} {:?}", build(r.clone()));
    assert!(
        !debug.contains("AKIAIOSFODNN7EXAMPLE") && !debug.contains("171"),
        "{debug}"
    );
}
