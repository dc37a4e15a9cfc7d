//! JSON-RPC 2.0 messages kept as the JSON object they arrived as.

use std::fmt;

use serde_json::{Map, Value, json};

/// JSON-RPC and MCP error codes the gateway produces or inspects.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Legacy era: the resource URI is unknown.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// Modern era: a routing header does not match the body, or a required header is missing.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Modern era: the request needs a client capability that was not declared.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// Modern era: the protocol version is not supported.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
    /// Legacy era: the call needs the user to open a URL first.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// Gateway-specific: the upstream server failed or could not be reached.
    pub const UPSTREAM_UNAVAILABLE: i64 = -32050;
    /// Gateway-specific: the upstream did not answer in time.
    pub const UPSTREAM_TIMEOUT: i64 = -32051;
    /// Gateway-specific: the request was refused by a limit (rate, size).
    pub const LIMITED: i64 = -32052;
    /// Gateway-specific: policy allows the call only once the user approves it.
    pub const CONSENT_REQUIRED: i64 = -32053;
}

/// A JSON-RPC request id. Kept exactly (number or string) so it can be echoed back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Int(i64),
    Str(String),
    /// Any other number (fractional or out of range), kept as its JSON text.
    OtherNumber(String),
}

impl Id {
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(s) => Some(Id::Str(s.clone())),
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => Id::Int(i),
                None => Id::OtherNumber(n.to_string()),
            }),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Id::Int(i) => Value::from(*i),
            Id::Str(s) => Value::String(s.clone()),
            Id::OtherNumber(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => write!(f, "{s:?}"),
            Id::OtherNumber(t) => f.write_str(t),
        }
    }
}

/// What a message is, decided once at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Error,
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("JSON-RPC batches are not supported: send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => codes::PARSE_ERROR,
            _ => codes::INVALID_REQUEST,
        }
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn to_value(&self) -> Value {
        let mut v = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.data {
            v["data"] = d.clone();
        }
        v
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One JSON-RPC message. The whole object is kept; accessors read the parts the gateway needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    kind: Kind,
    body: Map<String, Value>,
}

impl Message {
    /// Parses one message from a body. Arrays (batches) and non-objects are refused.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
        Message::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Message, ParseError> {
        let body = match value {
            Value::Object(map) => map,
            Value::Array(_) => return Err(ParseError::Batch),
            _ => return Err(ParseError::Invalid("the body must be a JSON object")),
        };
        if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        let kind = if let Some(method) = body.get("method") {
            if !method.is_string() {
                return Err(ParseError::Invalid("\"method\" must be a string"));
            }
            match body.get("params") {
                None | Some(Value::Object(_)) => {}
                Some(_) => return Err(ParseError::Invalid("\"params\" must be an object")),
            }
            match body.get("id") {
                None => Kind::Notification,
                Some(id) if Id::from_value(id).is_some() => Kind::Request,
                Some(_) => return Err(ParseError::Invalid("\"id\" must be a string or a number")),
            }
        } else if body.contains_key("result") {
            if body.get("id").and_then(Id::from_value).is_none() {
                return Err(ParseError::Invalid(
                    "a response needs a string or number \"id\"",
                ));
            }
            Kind::Response
        } else if let Some(error) = body.get("error") {
            if !error.get("code").is_some_and(Value::is_i64) {
                return Err(ParseError::Invalid("\"error.code\" must be an integer"));
            }
            Kind::Error
        } else {
            return Err(ParseError::Invalid(
                "neither a request, a notification nor a response",
            ));
        };
        Ok(Message { kind, body })
    }

    pub fn request(id: Id, method: &str, params: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.to_value());
        body.insert("method".into(), method.into());
        body.insert("params".into(), params);
        Message {
            kind: Kind::Request,
            body,
        }
    }

    pub fn notification(method: &str, params: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("method".into(), method.into());
        body.insert("params".into(), params);
        Message {
            kind: Kind::Notification,
            body,
        }
    }

    pub fn response(id: &Id, result: Value) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.to_value());
        body.insert("result".into(), result);
        Message {
            kind: Kind::Response,
            body,
        }
    }

    /// An error response. `id` is `None` when the request's id could not be read.
    pub fn error(id: Option<&Id>, error: &RpcError) -> Message {
        let mut body = Map::new();
        body.insert("jsonrpc".into(), "2.0".into());
        body.insert("id".into(), id.map_or(Value::Null, Id::to_value));
        body.insert("error".into(), error.to_value());
        Message {
            kind: Kind::Error,
            body,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn is_request(&self) -> bool {
        self.kind == Kind::Request
    }

    pub fn is_notification(&self) -> bool {
        self.kind == Kind::Notification
    }

    /// A response or an error response.
    pub fn is_reply(&self) -> bool {
        matches!(self.kind, Kind::Response | Kind::Error)
    }

    pub fn method(&self) -> Option<&str> {
        self.body.get("method").and_then(Value::as_str)
    }

    pub fn id(&self) -> Option<Id> {
        self.body.get("id").and_then(Id::from_value)
    }

    pub fn set_id(&mut self, id: &Id) {
        self.body.insert("id".into(), id.to_value());
    }

    pub fn params(&self) -> Option<&Map<String, Value>> {
        self.body.get("params").and_then(Value::as_object)
    }

    /// The params object, created empty if the message had none.
    pub fn params_mut(&mut self) -> &mut Map<String, Value> {
        let params = self
            .body
            .entry("params")
            .or_insert_with(|| Value::Object(Map::new()));
        if !params.is_object() {
            *params = Value::Object(Map::new());
        }
        match params {
            Value::Object(map) => map,
            // Just made an object above.
            _ => unreachable!("params was set to an object"),
        }
    }

    /// A string field of `params`, such as `name` or `uri`.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params()?.get(key)?.as_str()
    }

    /// `params._meta`, if present.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.params()?.get("_meta")?.as_object()
    }

    pub fn result(&self) -> Option<&Value> {
        self.body.get("result")
    }

    pub fn result_mut(&mut self) -> Option<&mut Value> {
        self.body.get_mut("result")
    }

    pub fn rpc_error(&self) -> Option<RpcError> {
        let e = self.body.get("error")?;
        Some(RpcError {
            code: e.get("code")?.as_i64()?,
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            data: e.get("data").cloned(),
        })
    }

    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.body)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a map of JSON values cannot fail.
        serde_json::to_vec(&self.body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        let cases = [
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, Kind::Request),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Kind::Notification,
            ),
            (r#"{"jsonrpc":"2.0","id":"a","result":{}}"#, Kind::Response),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
                Kind::Error,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(
                Message::parse(text.as_bytes()).unwrap().kind(),
                kind,
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        assert_eq!(Message::parse(b"[]"), Err(ParseError::Batch));
        assert!(matches!(
            Message::parse(b"{not json"),
            Err(ParseError::Json(_))
        ));
        for bad in [
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"7"#,
        ] {
            assert!(
                matches!(Message::parse(bad.as_bytes()), Err(ParseError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keeps_unknown_fields_and_their_order() {
        let text = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":[1.5,null]},"zz":true},"extra":{"k":"v"}}"#;
        let msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    }

    #[test]
    fn ids_round_trip_exactly() {
        for raw in ["1", "-5", "\"abc\"", "1.5", "18446744073709551615"] {
            let v: Value = serde_json::from_str(raw).unwrap();
            let id = Id::from_value(&v).unwrap();
            assert_eq!(id.to_value(), v, "{raw}");
        }
        assert_eq!(Id::from_value(&Value::Null), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Message::parse(&bytes);
        }

        #[test]
        fn string_ids_survive(s in ".*") {
            let msg = Message::request(Id::Str(s.clone()), "ping", serde_json::json!({}));
            let back = Message::parse(&msg.to_bytes()).unwrap();
            proptest::prop_assert_eq!(back.id(), Some(Id::Str(s)));
        }
    }
}
