//! The checks a modern (2026-07-28) request must pass before it is served: its `_meta`
//! envelope (both transports), and over HTTP the headers that must repeat the body.
//!
//! The order follows the conformance suite and the TypeScript SDK: a malformed envelope is
//! -32602, then a version header that contradicts the body is -32020, then an unsupported
//! version is -32022, then missing or mismatched routing headers are -32020. All are HTTP 400.

use serde_json::{Value, json};
use warden_mcp::era::{META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, MODERN_VERSION};
use warden_mcp::headers::{self, check_routing, decode_value};
use warden_mcp::{Message, RpcError, codes};

use crate::catalog::{HEADER_PARAMS, supported_versions};

fn malformed(why: &str) -> RpcError {
    RpcError::new(codes::INVALID_PARAMS, why.to_string())
}

fn mismatch(why: String) -> RpcError {
    RpcError::new(codes::HEADER_MISMATCH, format!("Header mismatch: {why}"))
}

/// Checks the `_meta` envelope; returns the version it names.
pub(crate) fn check_meta(msg: &Message) -> Result<&str, RpcError> {
    if !msg.has_meta() {
        return Err(malformed("params._meta is required"));
    }
    let version = msg
        .meta_str(META_PROTOCOL_VERSION)
        .ok_or_else(|| malformed("_meta needs \"io.modelcontextprotocol/protocolVersion\""))?;
    if !msg.meta_is_object(META_CLIENT_CAPABILITIES) {
        return Err(malformed(
            "_meta needs \"io.modelcontextprotocol/clientCapabilities\"",
        ));
    }
    Ok(version)
}

/// Refuses versions other than the modern one with -32022 naming what is supported.
pub(crate) fn check_version(version: &str) -> Result<(), RpcError> {
    if version == MODERN_VERSION {
        return Ok(());
    }
    Err(
        RpcError::new(codes::UNSUPPORTED_VERSION, "Unsupported protocol version")
            .with_data(json!({ "supported": supported_versions(), "requested": version })),
    )
}

/// Every check of a modern HTTP request, in order. `header` reads a request header by its
/// lower-case name.
pub(crate) fn check_http<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    msg: &Message,
) -> Result<(), RpcError> {
    let version = check_meta(msg)?;
    let header_version = header(headers::PROTOCOL_VERSION).map(str::trim);
    if let Some(h) = header_version
        && h != version
    {
        return Err(mismatch(format!(
            "MCP-Protocol-Version header value '{h}' does not match body value '{version}'"
        )));
    }
    check_version(version)?;
    if header_version.is_none() {
        return Err(mismatch(
            "the MCP-Protocol-Version header is missing".into(),
        ));
    }
    check_routing(header(headers::METHOD), header(headers::NAME), msg)
        .map_err(|m| mismatch(m.to_string()))?;
    check_params(header, msg)
}

/// `Mcp-Param-*` headers of tool arguments annotated with `x-mcp-header`: present exactly
/// when the argument is, and equal to it once decoded.
fn check_params<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    msg: &Message,
) -> Result<(), RpcError> {
    if msg.method() != Some("tools/call") {
        return Ok(());
    }
    let tool = msg.param_str("name").unwrap_or_default();
    let arguments = msg.params().and_then(|p| p.get("arguments"));
    for p in HEADER_PARAMS.iter().filter(|p| p.tool == tool) {
        let name = format!("{}{}", headers::PARAM_PREFIX, p.header.to_ascii_lowercase());
        let body = arguments
            .and_then(|a| a.get(p.argument))
            .and_then(header_form);
        match (header(&name), body) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "the Mcp-Param-{} header is missing",
                    p.header
                )));
            }
            (Some(_), None) => {
                return Err(mismatch(format!(
                    "Mcp-Param-{} is present but the argument {} is not",
                    p.header, p.argument
                )));
            }
            (Some(h), Some(b)) => {
                if decode_value(h).as_deref() != Some(b.as_str()) {
                    return Err(mismatch(format!(
                        "Mcp-Param-{} header value '{h}' does not match body value '{b}'",
                        p.header
                    )));
                }
            }
        }
    }
    Ok(())
}

/// How an argument value is written in a header; `None` for values that are not sent.
fn header_form(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use warden_mcp::Id;

    fn request(method: &str, params: Value) -> Message {
        Message::request(Id::Int(1), method, params)
    }

    fn meta(version: &str) -> Value {
        json!({ META_PROTOCOL_VERSION: version, META_CLIENT_CAPABILITIES: {} })
    }

    fn check(headers: &[(&str, &str)], msg: &Message) -> Result<(), i64> {
        let map: HashMap<&str, &str> = headers.iter().copied().collect();
        check_http(|name| map.get(name).copied(), msg).map_err(|e| e.code)
    }

    #[test]
    fn follows_the_conformance_order() {
        let ok = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "server/discover"),
        ];
        let discover = |params: Value| request("server/discover", params);
        assert_eq!(check(&ok, &discover(json!({}))), Err(codes::INVALID_PARAMS));
        let no_version = json!({ "_meta": { META_CLIENT_CAPABILITIES: {} } });
        assert_eq!(
            check(&ok, &discover(no_version)),
            Err(codes::INVALID_PARAMS)
        );
        let no_caps = json!({ "_meta": { META_PROTOCOL_VERSION: MODERN_VERSION } });
        assert_eq!(check(&ok, &discover(no_caps)), Err(codes::INVALID_PARAMS));
        let future = discover(json!({ "_meta": meta("v999.0.0") }));
        assert_eq!(check(&ok, &future), Err(codes::HEADER_MISMATCH));
        let both = [
            ("mcp-protocol-version", "v999.0.0"),
            ("mcp-method", "server/discover"),
        ];
        assert_eq!(check(&both, &future), Err(codes::UNSUPPORTED_VERSION));
        let good = discover(json!({ "_meta": meta(MODERN_VERSION) }));
        assert_eq!(check(&ok, &good), Ok(()));
        assert_eq!(check(&ok[1..], &good), Err(codes::HEADER_MISMATCH));
        assert_eq!(check(&ok[..1], &good), Err(codes::HEADER_MISMATCH));
    }

    #[test]
    fn unsupported_version_names_what_is_supported() {
        let e = check_version("1900-01-01").unwrap_err();
        assert_eq!(e.data.as_ref().unwrap()["requested"], "1900-01-01");
        assert_eq!(e.data.as_ref().unwrap()["supported"][0], MODERN_VERSION);
    }

    #[test]
    fn param_headers_mirror_annotated_arguments() {
        let call = |args: Value| {
            request(
                "tools/call",
                json!({ "name": "lookup_customer", "arguments": args, "_meta": meta(MODERN_VERSION) }),
            )
        };
        let base = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "lookup_customer"),
        ];
        let with = |value: &'static str| {
            let mut h = base.to_vec();
            h.push(("mcp-param-customerid", value));
            h
        };
        let msg = call(json!({ "customer_id": "c-1" }));
        assert_eq!(check(&with("c-1"), &msg), Ok(()));
        assert_eq!(check(&with("=?base64?Yy0x?="), &msg), Ok(()));
        assert_eq!(check(&with("c-2"), &msg), Err(codes::HEADER_MISMATCH));
        assert_eq!(check(&base, &msg), Err(codes::HEADER_MISMATCH));
        assert_eq!(check(&base, &call(json!({}))), Ok(()));
        assert_eq!(
            check(&with("c-1"), &call(json!({}))),
            Err(codes::HEADER_MISMATCH)
        );
    }
}
