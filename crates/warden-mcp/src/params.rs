//! `Mcp-Param-*` headers (2026-07-28): a tool's input schema may mark an argument with
//! `"x-mcp-header": "Name"`, and a client then repeats that argument's value in the header
//! `Mcp-Param-Name`. A gateway checks the two agree, as it does for `Mcp-Name`.

use serde_json::Value;

use crate::headers::{PARAM_PREFIX, decode_value};

/// One argument mirrored into a header: the header's name (lower case, with the prefix) and the
/// path of property names that leads to the argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamBinding {
    pub header: String,
    pub path: Vec<String>,
}

/// The bindings a tool's input schema declares. Only properties reached through `properties`
/// alone count, as the specification says.
pub fn bindings(input_schema: &Value) -> Vec<ParamBinding> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamBinding>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, prop) in props {
            path.push(key.clone());
            if let Some(name) = prop.get("x-mcp-header").and_then(Value::as_str) {
                out.push(ParamBinding {
                    header: format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase()),
                    path: path.clone(),
                });
            }
            walk(prop, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut out);
    out
}

/// Why the `Mcp-Param-*` headers and the arguments disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamMismatch {
    #[error("the body carries {path} but the {header} header is missing")]
    Missing { header: String, path: String },
    #[error("the {header} header is not a valid value (bad =?base64?…?= encoding)")]
    Undecodable { header: String },
    #[error("the {header} header does not match the body's {path}")]
    Differs { header: String, path: String },
    #[error("the {header} header is present but the body has no {path}")]
    Unexpected { header: String, path: String },
}

/// Checks every binding of a call: `header(name)` gives a request header's raw value.
pub fn check<'a>(
    bindings: &[ParamBinding],
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), ParamMismatch> {
    for b in bindings {
        let value = arguments
            .and_then(|a| b.path.iter().try_fold(a, |v, k| v.get(k)))
            .filter(|v| !v.is_null());
        let raw = header(&b.header);
        let (h, path) = (b.header.clone(), b.path.join("."));
        match (value, raw) {
            (None, None) => {}
            (Some(_), None) => return Err(ParamMismatch::Missing { header: h, path }),
            (None, Some(_)) => return Err(ParamMismatch::Unexpected { header: h, path }),
            (Some(v), Some(raw)) => {
                let decoded = decode_value(raw)
                    .ok_or_else(|| ParamMismatch::Undecodable { header: h.clone() })?;
                if !same(v, &decoded) {
                    return Err(ParamMismatch::Differs { header: h, path });
                }
            }
        }
    }
    Ok(())
}

/// A header's text against an argument: strings as they are, booleans as `true`/`false`,
/// numbers compared as numbers (`42.0` equals `42`).
fn same(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Bool(b) => text == if *b { "true" } else { "false" },
        Value::Number(n) => text
            .parse::<f64>()
            .ok()
            .zip(n.as_f64())
            .is_some_and(|(a, b)| a == b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({ "type": "object", "properties": {
            "region": { "type": "string", "x-mcp-header": "Region" },
            "opts": { "type": "object", "properties": { "n": { "type": "integer", "x-mcp-header": "N" } } },
            "list": { "type": "array", "items": { "type": "string", "x-mcp-header": "Ignored" } }
        }})
    }

    #[test]
    fn finds_bindings_through_properties_only() {
        let b = bindings(&schema());
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0],
            ParamBinding {
                header: "mcp-param-region".into(),
                path: vec!["region".into()]
            }
        );
        assert_eq!(b[1].path, vec!["opts".to_string(), "n".to_string()]);
    }

    #[test]
    fn checks_each_case() {
        let b = bindings(&schema());
        let args = json!({ "region": "Hello", "opts": { "n": 42 } });
        let ok = |r: &'static str, n: &'static str| {
            move |h: &str| match h {
                "mcp-param-region" => Some(r),
                "mcp-param-n" => Some(n),
                _ => None,
            }
        };
        assert_eq!(check(&b, Some(&args), ok("Hello", "42")), Ok(()));
        assert_eq!(
            check(&b, Some(&args), ok("=?base64?SGVsbG8=?=", "42.0")),
            Ok(())
        );
        assert!(matches!(
            check(&b, Some(&args), ok("Hello", "41")),
            Err(ParamMismatch::Differs { .. })
        ));
        assert!(matches!(
            check(&b, Some(&args), ok("=?base64?SGVsbG8?=", "42")),
            Err(ParamMismatch::Undecodable { .. }) | Err(ParamMismatch::Differs { .. })
        ));
        assert!(matches!(
            check(&b, Some(&args), ok("=?base64?S$$$?=", "42")),
            Err(ParamMismatch::Undecodable { .. })
        ));
        assert!(matches!(
            check(&b, Some(&args), |_| None),
            Err(ParamMismatch::Missing { .. })
        ));
        assert!(matches!(
            check(&b, Some(&json!({})), ok("x", "1")),
            Err(ParamMismatch::Unexpected { .. })
        ));
        assert_eq!(
            check(&b, Some(&json!({ "region": null })), |_| None),
            Ok(())
        );
        // A value without the full sentinel is a literal.
        assert_eq!(
            check(
                &b[..1],
                Some(&json!({ "region": "SGVsbG8=" })),
                ok("SGVsbG8=", "")
            ),
            Ok(())
        );
    }
}
