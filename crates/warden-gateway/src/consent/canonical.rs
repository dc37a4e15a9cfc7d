//! The canonical JSON form of a call's arguments, which a one-call grant is bound to: the same
//! arguments always give the same bytes, and different arguments different bytes.
//!
//! - objects: members sorted by key (by Unicode code point), no duplicate keys (JSON parsing
//!   already keeps the last), no whitespace anywhere;
//! - strings: the JSON escapes `serde_json` writes (`\"`, `\\`, `\n` and the other short
//!   escapes, `\u00XX` for other control characters; everything else as UTF-8);
//! - numbers: integers as decimal digits; other numbers in the shortest form that reads back to
//!   the same `f64` (`1.0` stays `1.0`, `1e21` is `1e21`);
//! - no arguments at all is the empty object `{}`.
//!
//! The digest is the lowercase hex SHA-256 of those bytes. (RFC 8785 sorts keys by UTF-16 code
//! units and writes numbers the ECMAScript way; this form differs from it only for keys with
//! characters beyond U+FFFF and for some floating-point numbers, and is documented in
//! `docs/consent.md`.)

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical bytes of `value` (of `{}` when there are no arguments).
pub fn canonical(value: Option<&Value>) -> String {
    let mut out = String::new();
    match value {
        Some(v) => write(v, &mut out),
        None => out.push_str("{}"),
    }
    out
}

/// Hex SHA-256 of the canonical form.
pub fn digest(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        Value::String(s) => string(s, out),
        // Numbers, booleans and null as serde_json writes them, which is already canonical.
        other => out.push_str(&other.to_string()),
    }
}

fn string(s: &str, out: &mut String) {
    out.push_str(&Value::from(s).to_string());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn member_order_and_whitespace_do_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{ "b": [1, {"y": 2, "x": 1}], "a": "é\n" }"#).unwrap();
        let b = json!({"a": "é\n", "b": [1, {"x": 1, "y": 2}]});
        assert_eq!(canonical(Some(&a)), canonical(Some(&b)));
        assert_eq!(canonical(Some(&a)), r#"{"a":"é\n","b":[1,{"x":1,"y":2}]}"#);
    }

    #[test]
    fn different_arguments_give_different_digests() {
        let forms = [
            json!({"amount": 10}),
            json!({"amount": 10.0}),
            json!({"amount": "10"}),
            json!({"amount": 100}),
            json!({"amount": [10]}),
            json!({"Amount": 10}),
            json!({}),
            json!(null),
        ];
        let digests: std::collections::BTreeSet<String> =
            forms.iter().map(|v| digest(&canonical(Some(v)))).collect();
        assert_eq!(digests.len(), forms.len());
    }

    #[test]
    fn no_arguments_is_the_empty_object() {
        assert_eq!(canonical(None), "{}");
        assert_eq!(canonical(None), canonical(Some(&json!({}))));
        assert_eq!(
            digest("{}"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
