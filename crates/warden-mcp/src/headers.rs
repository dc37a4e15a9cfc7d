//! HTTP header names of the Streamable HTTP transport, and the modern era's rule that the
//! routing headers repeat the body exactly.

use std::borrow::Cow;

use crate::Message;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const SESSION_ID: &str = "mcp-session-id";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const PARAM_PREFIX: &str = "mcp-param-";
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The value `Mcp-Name` must carry for this message: `params.name` for `tools/call` and
/// `prompts/get`, `params.uri` for `resources/read`; `None` for other methods.
pub fn expected_name(msg: &Message) -> Option<&str> {
    match msg.method()? {
        "tools/call" | "prompts/get" => msg.param_str("name"),
        "resources/read" => msg.param_str("uri"),
        _ => None,
    }
}

/// Why the routing headers of a modern request do not match its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the Mcp-Method header is missing")]
    MissingMethod,
    #[error("the Mcp-Method header ({header:?}) does not match the body's method ({body:?})")]
    Method { header: String, body: String },
    #[error("the Mcp-Name header is missing; it must repeat the body's {0:?}")]
    MissingName(&'static str),
    #[error("the Mcp-Name header ({header:?}) does not match the body ({body:?})")]
    Name { header: String, body: String },
}

/// Reads a header value of the modern era: optional whitespace around it is dropped, and a
/// value written as `=?base64?…?=` is decoded. `None` when the encoding is broken. A plain value
/// is borrowed (the `Mcp-Name` of every modern call is one).
pub fn decode_value(raw: &str) -> Option<Cow<'_, str>> {
    use base64::Engine as _;
    let v = raw.trim_matches([' ', '\t']);
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(inner) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(inner)
                .ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(v)),
    }
}

/// Checks `Mcp-Method` and `Mcp-Name` against the body of a modern request.
pub fn check_routing(
    method_header: Option<&str>,
    name_header: Option<&str>,
    msg: &Message,
) -> Result<(), Mismatch> {
    let method = msg.method().unwrap_or_default();
    let method_header = method_header.map(|h| h.trim_matches([' ', '\t']));
    let decoded = name_header.map(|h| decode_value(h).unwrap_or(Cow::Borrowed(h)));
    let name_header = decoded.as_deref();
    match method_header {
        None => return Err(Mismatch::MissingMethod),
        Some(h) if h != method => {
            return Err(Mismatch::Method {
                header: h.to_string(),
                body: method.to_string(),
            });
        }
        Some(_) => {}
    }
    let field = if method == "resources/read" {
        "uri"
    } else {
        "name"
    };
    match (expected_name(msg), name_header) {
        (Some(_), None) => Err(Mismatch::MissingName(field)),
        (Some(body), Some(h)) if body != h => Err(Mismatch::Name {
            header: h.to_string(),
            body: body.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str) -> Message {
        Message::parse(
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn routing_headers_must_repeat_the_body() {
        let m = call("echo");
        assert_eq!(check_routing(Some("tools/call"), Some("echo"), &m), Ok(()));
        assert_eq!(
            check_routing(None, Some("echo"), &m),
            Err(Mismatch::MissingMethod)
        );
        assert!(matches!(
            check_routing(Some("tools/list"), Some("echo"), &m),
            Err(Mismatch::Method { .. })
        ));
        assert_eq!(
            check_routing(Some("tools/call"), None, &m),
            Err(Mismatch::MissingName("name"))
        );
        assert!(matches!(
            check_routing(Some("tools/call"), Some("other"), &m),
            Err(Mismatch::Name { .. })
        ));
        assert_eq!(
            check_routing(Some(" tools/call "), Some("  echo\t"), &m),
            Ok(())
        );
        assert_eq!(
            check_routing(Some("tools/call"), Some("=?base64?ZWNobw==?="), &m),
            Ok(())
        );
    }

    #[test]
    fn decodes_header_values() {
        assert_eq!(
            decode_value("=?base64?SGVsbG8sIOS4lueVjA==?="),
            Some("Hello, 世界".into())
        );
        assert_eq!(decode_value("=?base64?!!?="), None);
        assert_eq!(decode_value(" plain "), Some("plain".into()));
    }
}
