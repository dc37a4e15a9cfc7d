//! JSON-RPC 2.0 messages kept as the JSON object they arrived as.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::member::Members;

pub mod codes;
mod parts;
mod swar;
mod write;

use parts::{Fields, FrameSeed, MetaMember, RawMeta, RawResult};

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
///
/// A reply's `result` is kept as the text it arrived as (without the whitespace between its
/// top-level members) until something reads or changes it: most replies only pass through, and
/// building their result as a tree of values (and writing it out again) was the largest single
/// cost of relaying a call. A request's `params._meta` is kept as text in the same way (the
/// modern era's envelope), and read through [`Message::meta_str`] and its neighbours.
#[derive(Clone, Debug)]
pub struct Message {
    kind: Kind,
    /// A copy of `body["method"]`, which is read many times per request and never changes.
    method: Option<Box<str>>,
    body: Fields,
    result: Option<RawResult>,
    /// `params._meta` as text, while nothing has changed it (see [`Message::params`]). Boxed:
    /// most messages have none.
    meta: Option<Box<RawMeta>>,
    /// The length of the text it was parsed from (0 when built here): what writing it out is
    /// expected to take, so that [`Message::to_bytes`] allocates once.
    text_len: usize,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.kind == other.kind && self.clone().into_value() == other.clone().into_value()
    }
}

impl Message {
    /// Parses one message from a body. Arrays (batches) and non-objects are refused.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        // JSON is UTF-8. Checked once here, the text is parsed as a `str`, and serde_json does
        // not check each string of it again (two dozen strings on a modern call, each with a
        // call of its own).
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ParseError::Json(format!("the body is not UTF-8: {e}")))?;
        match Message::frame(text) {
            Ok(frame) => Message::checked(frame.body, frame.result).map(|mut m| {
                m.text_len = bytes.len();
                m.meta = frame.meta;
                m
            }),
            // Not one JSON object: say exactly what it is instead.
            Err(_) => {
                let value: Value =
                    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
                Message::from_value(value)
            }
        }
    }

    /// Reads one JSON object (and nothing after it) as a frame, as `serde_json::from_str` would.
    fn frame(text: &str) -> Result<parts::Frame, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        let frame = FrameSeed(text.len()).deserialize(&mut de)?;
        de.end()?;
        Ok(frame)
    }

    pub fn from_value(value: Value) -> Result<Message, ParseError> {
        match value {
            Value::Object(map) => Message::checked(
                Fields(map.into_iter().map(|(k, v)| (k.into(), v)).collect()),
                None,
            ),
            Value::Array(_) => Err(ParseError::Batch),
            _ => Err(ParseError::Invalid("the body must be a JSON object")),
        }
    }

    fn checked(body: Fields, result: Option<RawResult>) -> Result<Message, ParseError> {
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
        } else if result.is_some() || body.get("result").is_some() {
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
        let method = body.get("method").and_then(Value::as_str).map(Box::from);
        Ok(Message {
            kind,
            method,
            body,
            result,
            meta: None,
            text_len: 0,
        })
    }

    /// A message made here (not parsed): `jsonrpc`, then `members` in order.
    fn built<const N: usize>(
        kind: Kind,
        method: Option<&str>,
        members: [(&str, Value); N],
    ) -> Message {
        let mut body = Fields(Vec::with_capacity(N + 1));
        body.insert("jsonrpc", "2.0".into());
        for (key, value) in members {
            body.insert(key, value);
        }
        Message {
            kind,
            method: method.map(Box::from),
            body,
            result: None,
            meta: None,
            text_len: 0,
        }
    }

    pub fn request(id: Id, method: &str, params: Value) -> Message {
        let members = [
            ("id", id.to_value()),
            ("method", method.into()),
            ("params", params),
        ];
        Message::built(Kind::Request, Some(method), members)
    }

    pub fn notification(method: &str, params: Value) -> Message {
        let members = [("method", method.into()), ("params", params)];
        Message::built(Kind::Notification, Some(method), members)
    }

    pub fn response(id: &Id, result: Value) -> Message {
        let members = [("id", id.to_value()), ("result", result)];
        Message::built(Kind::Response, None, members)
    }

    /// An error response. `id` is `None` when the request's id could not be read.
    pub fn error(id: Option<&Id>, error: &RpcError) -> Message {
        let members = [
            ("id", id.map_or(Value::Null, Id::to_value)),
            ("error", error.to_value()),
        ];
        Message::built(Kind::Error, None, members)
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
        self.method.as_deref()
    }

    pub fn id(&self) -> Option<Id> {
        self.body.get("id").and_then(Id::from_value)
    }

    pub fn set_id(&mut self, id: &Id) {
        self.body.insert("id", id.to_value());
    }

    /// The params object. Its `_meta` member is not to be read here: while `_meta` is kept as
    /// text, this map holds a `null` in its place. Read it with [`Message::meta`],
    /// [`Message::meta_str`] and their neighbours.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        self.body.get("params").and_then(Value::as_object)
    }

    /// The params object to change, created empty if the message had none; `_meta` is read
    /// into it first, so all of it can be changed.
    pub fn params_mut(&mut self) -> &mut Map<String, Value> {
        if let Some(raw) = self.meta.take() {
            let meta = raw.into_value();
            if let Some(Value::Object(params)) = self.body.get_mut("params") {
                params.insert("_meta".into(), meta);
            }
        }
        self.data_params_mut()
    }

    /// The params object to change members other than `_meta`, created empty if the message
    /// had none. `_meta` stays as it is (as text, if it is kept so): its member in this map is not
    /// the request's, and is to be left in the map and alone. Changing `_meta` takes
    /// [`Message::params_mut`].
    pub fn data_params_mut(&mut self) -> &mut Map<String, Value> {
        let params = self
            .body
            .get_or_insert_with("params", || Value::Object(Map::new()));
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
        self.params()?.member(key)?.as_str()
    }

    /// `params._meta`, if present, as a tree (made from its text the first time it is asked
    /// for: where one member is wanted, [`Message::meta_str`] and its neighbours cost less).
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        match &self.meta {
            Some(raw) => raw.value().as_object(),
            None => self.params()?.member("_meta")?.as_object(),
        }
    }

    /// Whether `params._meta` is present and an object.
    pub fn has_meta(&self) -> bool {
        match &self.meta {
            Some(raw) => raw.is_object(),
            None => self.meta().is_some(),
        }
    }

    /// A member of `params._meta`, found without making a tree of `_meta`.
    fn meta_member(&self, key: &str) -> Option<MetaMember<'_>> {
        match &self.meta {
            Some(raw) => raw.member(key),
            None => self.meta()?.member(key).map(MetaMember::Value),
        }
    }

    /// A string member of `params._meta`, such as the modern era's protocol version.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        match self.meta_member(key)? {
            MetaMember::Text(text) => match text.strip_prefix('"')?.strip_suffix('"') {
                Some(inner) if !inner.contains('\\') => Some(inner),
                // An escaped string: read by the parser.
                _ => self.meta()?.member(key)?.as_str(),
            },
            MetaMember::Value(v) => v.as_str(),
        }
    }

    /// Whether `params._meta` has a member `key`.
    pub fn meta_has(&self, key: &str) -> bool {
        self.meta_member(key).is_some()
    }

    /// Whether the member `key` of `params._meta` is an object.
    pub fn meta_is_object(&self, key: &str) -> bool {
        match self.meta_member(key) {
            Some(MetaMember::Text(text)) => text.starts_with('{'),
            Some(MetaMember::Value(v)) => v.is_object(),
            None => false,
        }
    }

    /// A copy of the member `key` of `params._meta`.
    pub fn meta_value(&self, key: &str) -> Option<Value> {
        match self.meta_member(key)? {
            // The text is one JSON value: it was checked when the message was parsed.
            MetaMember::Text(text) => serde_json::from_str(text).ok(),
            MetaMember::Value(v) => Some(v.clone()),
        }
    }

    /// Whether any member of `params._meta` has a name that passes `test`.
    pub fn meta_has_key(&self, test: impl Fn(&str) -> bool) -> bool {
        match &self.meta {
            Some(raw) => raw.any_key(test),
            None => self.meta().is_some_and(|m| m.keys().any(|k| test(k))),
        }
    }

    pub fn result(&self) -> Option<&Value> {
        match &self.result {
            Some(raw) => Some(raw.value()),
            None => self.body.get("result"),
        }
    }

    pub fn result_mut(&mut self) -> Option<&mut Value> {
        if let Some(raw) = self.result.take() {
            self.body.insert_at(raw.at, "result", raw.into_value());
        }
        self.body.get_mut("result")
    }

    /// The result's `resultType`, read without building the rest of the result.
    pub fn result_type(&self) -> Option<&str> {
        match &self.result {
            Some(raw) => match raw.parsed.get() {
                Some(v) => v.get("resultType")?.as_str(),
                None => raw.head().as_ref()?.result_type.as_deref(),
            },
            None => self.body.get("result")?.get("resultType")?.as_str(),
        }
    }

    /// Whether the result is a tool result that says `isError: true`, read without building the
    /// rest of the result.
    pub fn result_is_error(&self) -> bool {
        let is_error = match &self.result {
            Some(raw) => match raw.parsed.get() {
                Some(v) => v.get("isError").and_then(Value::as_bool),
                None => raw.head().as_ref().and_then(|h| h.is_error),
            },
            None => self
                .body
                .get("result")
                .and_then(|r| r.get("isError"))
                .and_then(Value::as_bool),
        };
        is_error == Some(true)
    }

    /// The result's JSON text while it is held as text (results are kept as text until
    /// something changes them); `None` once changed, or for a message without a result.
    pub fn raw_result(&self) -> Option<&str> {
        self.result.as_ref().map(|raw| &*raw.text)
    }

    /// Replaces the result's text, keeping it as text (and its place among the body's keys).
    /// Fails, changing nothing, if `text` is not one JSON value.
    pub fn set_raw_result(&mut self, text: String) -> Result<(), serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        self.put_raw_result(text);
        Ok(())
    }

    /// Replaces the result's text with one made from it by replacing the contents of string
    /// literals with text escaped as JSON (what DLP's rewrite makes). Such a text is one JSON
    /// value by construction and is not parsed again: on a result of 10 KiB that parse cost as
    /// much as a tenth of the scan. Debug builds (the tests) still check it.
    pub fn set_rewritten_result(&mut self, text: String) {
        debug_assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(),
            "a rewritten result is one JSON value"
        );
        self.put_raw_result(text);
    }

    fn put_raw_result(&mut self, text: String) {
        let at = match self.result.take() {
            Some(raw) => raw.at,
            None => {
                let at = self.body.position("result");
                self.body.remove("result");
                at.unwrap_or(self.body.len())
            }
        };
        self.result = Some(RawResult {
            at,
            text,
            parsed: OnceLock::new(),
            head: OnceLock::new(),
        });
    }

    /// The `error` member of an error response, to change in place.
    pub fn error_mut(&mut self) -> Option<&mut Value> {
        self.body.get_mut("error")
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

    pub fn into_value(mut self) -> Value {
        self.result_mut();
        if self.meta.is_some() {
            self.params_mut();
        }
        Value::Object(self.body.into_map())
    }

    /// The message as JSON text, with the keys in the order they arrived.
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw = self.result.as_ref();
        // Room for what the stages add (an id, a name's prefix, `_meta` keys) beyond either guess.
        let guess = self.text_len.max(raw.map_or(0, |r| r.text.len()));
        let mut out = Vec::with_capacity(guess + 128);
        out.push(b'{');
        let meta = self.meta.as_deref();
        let put = |out: &mut Vec<u8>, key: &str, value: &Value| {
            if out.len() > 1 {
                out.push(b',');
            }
            write::string(out, key);
            out.push(b':');
            match (meta, value) {
                (Some(meta), Value::Object(params)) if key == "params" => {
                    put_params(out, params, meta);
                }
                _ => write::value(out, value),
            }
        };
        let at = raw.map_or(usize::MAX, |r| r.at.min(self.body.len()));
        for (i, (key, value)) in self.body.0.iter().enumerate() {
            if i == at {
                put_raw(&mut out, raw);
            }
            put(&mut out, key, value);
        }
        if at == self.body.len() {
            put_raw(&mut out, raw);
        }
        out.push(b'}');
        out
    }
}

/// Writes a params object whose `_meta` is kept as text.
fn put_params(out: &mut Vec<u8>, params: &Map<String, Value>, meta: &RawMeta) {
    out.push(b'{');
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write::string(out, key);
        out.push(b':');
        if key != "_meta" {
            write::value(out, value);
        } else if memchr::memchr2(b'\n', b'\r', meta.text.as_bytes()).is_some() {
            // Line breaks between tokens are dropped, as in a result.
            write::value(out, meta.value());
        } else {
            out.extend_from_slice(meta.text.as_bytes());
        }
    }
    out.push(b'}');
}

/// Writes `"result":` and a result kept as text.
fn put_raw(out: &mut Vec<u8>, raw: Option<&RawResult>) {
    let Some(raw) = raw else { return };
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"result\":");
    // Line breaks between tokens are dropped: stdio and SSE frame messages by line.
    if memchr::memchr2(b'\n', b'\r', raw.text.as_bytes()).is_some() {
        write::value(out, raw.value());
    } else {
        out.extend_from_slice(raw.text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::parts::ResultHead;
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
    fn a_repeated_member_keeps_its_first_place_and_its_last_value() {
        // As serde_json's own map reads it: the members are kept in a list, not a map.
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"ping","id":"two","params":{}}"#;
        let msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.id(), Some(Id::Str("two".into())));
        let want = r#"{"jsonrpc":"2.0","id":"two","method":"ping","params":{}}"#;
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want);
        let tree: Value = serde_json::from_str(text).unwrap();
        assert_eq!(msg.into_value(), tree);
        // A repeated result (kept as text) is also the last one, in the first one's place.
        let text = r#"{"jsonrpc":"2.0","result":{"a":1},"id":3,"result":{"b":2}}"#;
        let msg = Message::parse(text.as_bytes()).unwrap();
        let want = r#"{"jsonrpc":"2.0","result":{"b":2},"id":3}"#;
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want);
    }

    #[test]
    fn a_passing_result_keeps_its_text_and_place() {
        let text = r#"{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"a\"b"}],"resultType":"complete"},"id":3}"#;
        let mut msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.kind(), Kind::Response);
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
        assert_eq!(msg.result_type(), Some("complete"));
        msg.set_id(&Id::Str("client-1".into()));
        assert_eq!(
            String::from_utf8(msg.to_bytes()).unwrap(),
            text.replace(r#""id":3"#, r#""id":"client-1""#)
        );
        assert_eq!(msg.result().unwrap()["content"][0]["text"], "a\"b");
        // Changing the result writes the changed tree in the same place.
        msg.result_mut().unwrap()["ttlMs"] = 0.into();
        let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        assert_eq!(back["result"]["ttlMs"], 0);
        let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["jsonrpc", "result", "id"]);
        assert_eq!(
            msg,
            Message::from_value(back).unwrap(),
            "a parsed and a kept result compare equal"
        );
    }

    #[test]
    fn a_replaced_result_text_keeps_its_place_and_bad_text_changes_nothing() {
        let text = r#"{"jsonrpc":"2.0","result":{"content":[],"resultType":"complete"},"id":3}"#;
        let mut msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.result_type(), Some("complete"));
        msg.set_raw_result(r#"{"content":[{"type":"text","text":"[email]"}]}"#.into())
            .unwrap();
        assert_eq!(
            String::from_utf8(msg.to_bytes()).unwrap(),
            r#"{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"[email]"}]},"id":3}"#
        );
        assert_eq!(
            msg.result_type(),
            None,
            "what was read of the old text is forgotten"
        );
        assert_eq!(msg.result().unwrap()["content"][0]["text"], "[email]");
        // The new text's head is read from it.
        msg.set_raw_result(r#"{"content":[],"isError":true,"resultType":"x"}"#.into())
            .unwrap();
        assert_eq!(
            (msg.result_is_error(), msg.result_type()),
            (true, Some("x"))
        );
        msg.set_raw_result(r#"{"content":[{"type":"text","text":"[email]"}]}"#.into())
            .unwrap();
        assert!(!msg.result_is_error());
        let before = msg.to_bytes();
        for bad in [
            "{",
            "",
            "[1] [2]",
            "{\"a\":}",
            r#"{"isError":true} {}"#,
            r#"{"isError":true,"content":[}"#,
            r#"{"isError":true,"isError":false"#,
        ] {
            assert!(msg.set_raw_result(bad.into()).is_err(), "{bad:?}");
            assert_eq!(msg.to_bytes(), before);
        }
        // A result changed as a tree goes back to text in the same place.
        msg.result_mut().unwrap()["n"] = 1.into();
        msg.set_raw_result("7".into()).unwrap();
        assert_eq!(
            String::from_utf8(msg.to_bytes()).unwrap(),
            r#"{"jsonrpc":"2.0","result":7,"id":3}"#
        );
    }

    #[test]
    fn results_that_are_not_objects_pass_too() {
        let spread =
            "{\n  \"jsonrpc\": \"2.0\", \"id\": 1,\r\n  \"result\": {\n    \"a\": [1,\n 2]\n  }\n}";
        let msg = Message::parse(spread.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(msg.to_bytes()).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"result":{"a":[1,2]}}"#,
            "one line, whatever the upstream's layout"
        );
        for result in ["null", "[1,2]", "\"text\"", "7"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
            let msg = Message::parse(text.as_bytes()).unwrap();
            assert_eq!(msg.kind(), Kind::Response);
            assert_eq!(msg.result_type(), None);
            assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
        }
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"result":{"a":}}"#),
            Err(ParseError::Json(_))
        ));
    }

    /// A `tools/call` whose `params._meta` is `meta` (as text).
    fn call_with_meta(meta: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","_meta":{meta},"arguments":{{"a":1}}}}}}"#
        )
    }

    /// What the tree of `text` says of its `_meta`, next to what the message read from text
    /// says, for `key`.
    fn assert_meta_read_as_the_tree_reads_it(msg: &Message, tree: &Value, key: &str) {
        let meta = tree["params"].get("_meta").and_then(Value::as_object);
        let member = meta.and_then(|m| m.get(key));
        assert_eq!(msg.meta_str(key), member.and_then(Value::as_str), "{key}");
        assert_eq!(msg.meta_has(key), member.is_some(), "{key}");
        assert_eq!(
            msg.meta_is_object(key),
            member.is_some_and(Value::is_object),
            "{key}"
        );
        assert_eq!(msg.meta_value(key).as_ref(), member, "{key}");
    }

    #[test]
    fn a_meta_kept_as_text_passes_byte_for_byte_and_reads_as_its_tree() {
        let meta = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"url":{}}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"progressToken":7}"#;
        let text = call_with_meta(meta);
        let mut msg = Message::parse(text.as_bytes()).unwrap();
        let tree: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
        assert!(msg.has_meta());
        for key in [
            "io.modelcontextprotocol/protocolVersion",
            "io.modelcontextprotocol/clientCapabilities",
            "io.modelcontextprotocol/clientInfo",
            "progressToken",
            "absent",
            "io.modelcontextprotocol",
        ] {
            assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
        }
        assert!(msg.meta_has_key(|k| k.starts_with("io.modelcontextprotocol/")));
        assert!(!msg.meta_has_key(|k| k.is_empty()));
        assert_eq!(
            msg.meta(),
            tree["params"]["_meta"].as_object(),
            "the whole tree"
        );
        // Changing another member of params keeps `_meta`'s text and its place.
        msg.data_params_mut()
            .insert("name".into(), Value::from("renamed"));
        assert_eq!(
            String::from_utf8(msg.to_bytes()).unwrap(),
            text.replace(r#""name":"x""#, r#""name":"renamed""#)
        );
        // Changing `_meta` makes it a tree in the same place.
        msg.params_mut().get_mut("_meta").unwrap()["progressToken"] = 8.into();
        let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        assert_eq!(back["params"]["_meta"]["progressToken"], 8);
        assert_eq!(
            back["params"]["_meta"]["io.modelcontextprotocol/clientInfo"],
            tree["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]
        );
        let keys: Vec<_> = back["params"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["name", "_meta", "arguments"]);
        assert_eq!(msg.meta_value("progressToken"), Some(8.into()));
    }

    #[test]
    fn a_meta_with_escapes_repeats_or_no_object_reads_as_the_parser_reads_it() {
        for meta in [
            // Escaped values, an escaped name (read by the parser), repeated members (the last).
            r#"{"v":"a\"b","w":"\u0041","k":1,"k":"two"}"#,
            r#"{"\u006b":"escaped name","v":"x"}"#,
            r#" { "v" : "spaced" , "o" : { } } "#,
            "{\n  \"v\": \"pretty\",\n  \"o\": {\"a\": [1,\n 2]}\n}",
            r#"{}"#,
            r#"5"#,
            r#""text""#,
            r#"null"#,
            r#"[{"v":"x"}]"#,
        ] {
            let text = call_with_meta(meta);
            let msg = Message::parse(text.as_bytes()).unwrap();
            let tree: Value = serde_json::from_str(&text).unwrap();
            for key in ["v", "w", "k", "o", "absent"] {
                assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
            }
            assert_eq!(
                msg.has_meta(),
                tree["params"]["_meta"].is_object(),
                "{meta}"
            );
            assert_eq!(msg.meta(), tree["params"]["_meta"].as_object(), "{meta}");
            let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
            assert_eq!(written, tree, "{meta}");
            assert!(
                !msg.to_bytes().contains(&b'\n'),
                "one line, whatever the client's layout: {meta}"
            );
            assert_eq!(msg.clone().into_value(), tree, "{meta}");
        }
        // A message without `_meta`, or with one given as a tree, reads the same way.
        let built = Message::request(
            Id::Int(1),
            "x",
            serde_json::json!({ "_meta": { "v": "tree" } }),
        );
        assert_eq!(built.meta_str("v"), Some("tree"));
        assert!(built.meta_has_key(|k| k == "v"));
        let bare = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert!(!bare.has_meta() && !bare.meta_has("v") && bare.meta_value("v").is_none());
    }

    #[test]
    fn params_that_are_not_an_object_are_read_as_they_are() {
        // Refused in a request; passed as they are in a reply.
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,{"_meta":{}}]}"#),
            Err(ParseError::Invalid(_))
        ));
        for params in [
            "[1,{\"_meta\":{}}]",
            "true",
            "-2",
            "3.5",
            "18446744073709551615",
            "\"s\"",
            "null",
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{}},"params":{params}}}"#);
            let msg = Message::parse(text.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
        }
    }

    #[test]
    fn bodies_that_are_not_utf8_are_parse_errors_wherever_the_bad_byte_is() {
        let good = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café"}}"#;
        let msg = Message::parse(good.as_bytes()).unwrap();
        assert_eq!(msg.param_str("name"), Some("café"));
        let reply = r#"{"jsonrpc":"2.0","id":1,"result":{"t":"😀 \u00e9"}}"#;
        assert_eq!(
            Message::parse(reply.as_bytes()).unwrap().to_bytes(),
            reply.as_bytes()
        );
        let bad: [&[u8]; 5] = [
            // A lone continuation byte in a member's string, in a raw result's string, in a key.
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"name\":\"a\x80\"}}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"t\":\"\xff\"}}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"\xc3\":1}}",
            // A sequence cut short at the end, and an encoded surrogate.
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}\xe2\x82",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}",
        ];
        for body in bad {
            let e = Message::parse(body).unwrap_err();
            assert!(matches!(e, ParseError::Json(_)), "{e:?}");
            assert_eq!(e.code(), codes::PARSE_ERROR);
        }
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

    /// The head as the derived parser reads it.
    fn parsed_head(text: &str) -> Option<ResultHead> {
        serde_json::from_str(text).ok()
    }

    /// The head of `result` as read with a reply that carries it, and as it was written out.
    fn head_of_reply(result: &str) -> (Option<String>, bool, Value) {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
        let msg = Message::parse(text.as_bytes()).unwrap();
        // Read before writing out: writing a result with line breaks reads it as a tree, and a
        // tree's fields are read one by one.
        let kind = msg.result_type().map(str::to_string);
        let is_error = msg.result_is_error();
        let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        (kind, is_error, written["result"].clone())
    }

    /// A head read with its reply says what the parser says of the result's text, and the
    /// result is written out as the same value.
    fn assert_reply_head_is_the_parsed_head(result: &str) {
        let head = parsed_head(result);
        let (kind, is_error, written) = head_of_reply(result);
        let want = head.as_ref().and_then(|h| h.result_type.as_deref());
        assert_eq!(kind.as_deref(), want, "{result}");
        let want = head.as_ref().and_then(|h| h.is_error) == Some(true);
        assert_eq!(is_error, want, "{result}");
        assert_eq!(
            written,
            serde_json::from_str::<Value>(result).unwrap(),
            "{result}"
        );
    }

    #[test]
    fn a_result_head_is_walked_as_the_parser_reads_it() {
        for text in [
            r#"{"content":[{"type":"text","text":"a\"}b{["}],"isError":true}"#,
            r#"{"resultType":"complete","content":[]}"#,
            r#" { "resultType" : "in\u0070ut_required" , "isError" : false } "#,
            r#"{"resultType":null,"isError":null,"x":[1,{"resultType":"no"}],"y":-1.5e3}"#,
            r#"{"resultType":"a","resultType":"b"}"#,
            r#"{"isError":1}"#,
            r#"{"resultType":7}"#,
            r#"{"result\u0054ype":"escaped name"}"#,
            r#"{"k":"\\","isError":true}"#,
            r#"{}"#,
            r#"[{"isError":true}]"#,
            r#""text""#,
            r#"null"#,
            r#"{"a":{"b":[[],{}]},"isError":false,"c":"}"}"#,
            r#"{"text":"a long text, past the first bytes:\n\\\"\\\\","isError":true}"#,
            r#"{"text":"a long text that ends in an escaped backslash\\","resultType":"x"}"#,
        ] {
            assert_eq!(ResultHead::read(text), parsed_head(text), "{text}");
            assert_reply_head_is_the_parsed_head(text);
        }
        // Escapes before, on and after the place where the walk goes from byte by byte to the
        // quote-to-quote search.
        // Also around each eight-byte word of the first 32 bytes.
        for len in (0..=34).chain([40, 41, 64, 80]) {
            for at in 0..len {
                for escape in [r#"\""#, r"\\", r"\n", r"\u0022"] {
                    let mut value = "x".repeat(len);
                    value.insert_str(at, escape);
                    for text in [
                        format!(r#"{{"a":"{value}","isError":true}}"#),
                        format!(r#"{{"a":["{value}",{{"{value}":1}}],"resultType":"{value}"}}"#),
                        format!(r#"{{"a":"{value}"}}"#),
                    ] {
                        assert_eq!(ResultHead::read(&text), parsed_head(&text), "{text}");
                    }
                }
            }
        }
        // Brackets and quotes of a container at every place of the words it is read in.
        for n in 0..=17 {
            let pad = " ".repeat(n);
            let digits = "1".repeat(n + 1);
            for text in [
                format!(
                    r#"{{"a":[{pad}{{{pad}"b"{pad}:{pad}[{pad}]{pad}}}{pad}],"isError":true}}"#
                ),
                format!(r#"{{"a":{{"b":[{digits},[{digits}],{{}}]}},"resultType":"{pad}"}}"#),
                format!(r#"{{"a":[{digits}],"isError":false}}"#),
            ] {
                assert_eq!(ResultHead::read(&text), parsed_head(&text), "{text}");
            }
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z\\\\\"{}\\[\\],:é\n ]{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec!["resultType", "isError", "a", "b"]),
                        inner
                    ),
                    0..5
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn walked_heads_match_parsed_heads(v in json_value(), pretty in proptest::bool::ANY) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            proptest::prop_assert_eq!(ResultHead::read(&text), parsed_head(&text), "{}", text);
            assert_reply_head_is_the_parsed_head(&text);
        }

        #[test]
        fn meta_kept_as_text_reads_and_writes_as_its_tree(
            meta in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["a", "b", "io.modelcontextprotocol/x", "k\\\"", "é"]),
                    json_value(),
                ),
                0..5,
            ),
            pretty in proptest::bool::ANY,
        ) {
            let meta = Value::Object(meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let meta_text = if pretty {
                serde_json::to_string_pretty(&meta).unwrap()
            } else {
                serde_json::to_string(&meta).unwrap()
            };
            let text = call_with_meta(&meta_text);
            let msg = Message::parse(text.as_bytes()).unwrap();
            let tree: Value = serde_json::from_str(&text).unwrap();
            for key in ["a", "b", "io.modelcontextprotocol/x", "k\\\"", "é", "absent"] {
                assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
            }
            let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
            proptest::prop_assert_eq!(&written, &tree);
            let mut changed = msg.clone();
            changed.params_mut();
            proptest::prop_assert_eq!(changed.to_bytes(), msg.to_bytes());
        }

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
