//! The two protocol eras and how a request says which one it belongs to.
//!
//! *Legacy* (2024-11-05 … 2025-11-25) opens with `initialize` and may keep a session.
//! *Modern* (2026-07-28) is stateless: every request names its version and the client's
//! capabilities in `params._meta`, and repeats the version in the `MCP-Protocol-Version` header.

use serde_json::{Map, Value};

use crate::Message;
use crate::member::Members;

/// The one modern version this gateway speaks.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Legacy versions, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The newest legacy version, offered when a client asks for one we do not know.
pub const LATEST_LEGACY: &str = LEGACY_VERSIONS[0];
/// The version a legacy server assumes when the `MCP-Protocol-Version` header is absent.
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";
/// Every version this gateway accepts, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    MODERN_VERSION,
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];

/// `_meta` key carrying the protocol version of a modern request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities on a modern request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the client's name and version on a modern request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    Legacy,
    Modern,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

pub fn is_legacy_version(v: &str) -> bool {
    LEGACY_VERSIONS.contains(&v)
}

pub fn is_supported_version(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// The version a modern request names in its `_meta`.
pub fn meta_version(msg: &Message) -> Option<&str> {
    msg.meta_str(META_PROTOCOL_VERSION)
}

/// The capabilities a modern request declares in its `_meta`.
pub fn meta_capabilities(msg: &Message) -> Option<&Map<String, Value>> {
    msg.meta()?.member(META_CLIENT_CAPABILITIES)?.as_object()
}

/// Decides the era of one incoming message from its version header and body.
///
/// A message is modern when its body names a version in `_meta`, or when its header names a
/// version that is not a legacy one (an unknown future version is modern, and is then refused
/// as unsupported).
///
/// `initialize` is legacy unless its `_meta` claims a non-legacy version: the spec serves "a
/// request carrying modern per-request `_meta`" statelessly, so a modern `initialize` is an
/// unknown method (404 / -32601, checked by conformance `server-stateless`), not a handshake.
/// A bare `initialize` stays legacy whatever its header says.
pub fn detect(header_version: Option<&str>, msg: &Message) -> Era {
    if let Some(v) = meta_version(msg) {
        if msg.method() == Some("initialize") && is_legacy_version(v) {
            return Era::Legacy;
        }
        return Era::Modern;
    }
    if msg.method() == Some("initialize") {
        return Era::Legacy;
    }
    match header_version {
        Some(v) if !is_legacy_version(v) => Era::Modern,
        _ => Era::Legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn tells_the_eras_apart() {
        let init = msg(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        let modern = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        let plain = msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(detect(None, &init), Era::Legacy);
        assert_eq!(detect(Some(MODERN_VERSION), &init), Era::Legacy);
        assert_eq!(detect(None, &modern), Era::Modern);
        assert_eq!(detect(Some("2025-06-18"), &modern), Era::Modern);
        assert_eq!(detect(None, &plain), Era::Legacy);
        assert_eq!(detect(Some("2025-11-25"), &plain), Era::Legacy);
        assert_eq!(detect(Some(MODERN_VERSION), &plain), Era::Modern);
        assert_eq!(detect(Some("2099-01-01"), &plain), Era::Modern);
    }

    #[test]
    fn initialize_with_a_modern_claim_is_modern() {
        let claimed = |v: &str| {
            msg(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{v}"}}}}}}"#
            ))
        };
        assert_eq!(
            detect(Some(MODERN_VERSION), &claimed(MODERN_VERSION)),
            Era::Modern
        );
        assert_eq!(detect(None, &claimed("2099-01-01")), Era::Modern);
        assert_eq!(detect(None, &claimed("2025-11-25")), Era::Legacy);
    }
}
