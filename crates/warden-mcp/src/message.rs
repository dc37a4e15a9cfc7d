//! JSON-RPC 2.0 messages kept as the JSON object they arrived as.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::member::Members;

pub mod codes;
mod parts;
mod scan;
mod swar;
mod write;

use parts::{Fields, FrameSeed, MetaMember, RawMeta, RawParams, RawResult};

pub use parts::ParamsAs;

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
/// cost of relaying a call. A request's `params` is kept as text in the same way, and so is its
/// `params._meta` (the modern era's envelope), read through [`Message::param_str`],
/// [`Message::meta_str`] and their neighbours.
#[derive(Clone, Debug)]
pub struct Message {
    kind: Kind,
    /// A copy of `body["method"]`, which is read many times per request and never changes.
    method: Option<Box<str>>,
    body: Fields,
    /// `params` as text, while nothing has read it as a tree or changed it (see
    /// [`Message::params`]); `body` holds `null` in its place. Boxed: most replies have none.
    params: Option<Box<RawParams>>,
    /// Boxed: a message is moved between the stages many times, and a message without its
    /// result inline is small enough to be moved without a call to `memcpy`.
    result: Option<Box<RawResult>>,
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
    /// Parses one message from a body. Arrays (batches) and non-objects are refused. A
    /// request's `params` is kept as text until something reads it as a tree.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        Message::parse_with(bytes, ParamsAs::Text)
    }

    /// As [`Message::parse`], `params` read as `params` says.
    pub fn parse_with(bytes: &[u8], params: ParamsAs) -> Result<Message, ParseError> {
        // JSON is UTF-8. Checked once here, the text is parsed as a `str`, and neither the
        // scanner nor serde_json checks each string of it again.
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ParseError::Json(format!("the body is not UTF-8: {e}")))?;
        // The usual message is read with the scanner; anything else, and every text that is
        // not JSON, by serde_json.
        match parts::scanned_frame(text, params) {
            Some(frame) => Message::framed(frame, text.len()),
            None => Message::parse_by_parser(text, params),
        }
    }

    /// As [`Message::parse_with`], by serde_json alone.
    fn parse_by_parser(text: &str, params: ParamsAs) -> Result<Message, ParseError> {
        match Message::frame(text, params) {
            Ok(frame) => Message::framed(frame, text.len()),
            // Not one JSON object: say exactly what it is instead.
            Err(_) => {
                let value: Value =
                    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
                Message::from_value(value)
            }
        }
    }

    /// The message of a frame read from a text of `len` bytes.
    fn framed(frame: parts::Frame, len: usize) -> Result<Message, ParseError> {
        Message::checked(frame.body, frame.params, frame.result).map(|mut m| {
            m.text_len = len;
            m.meta = frame.meta;
            m
        })
    }

    /// Reads one JSON object (and nothing after it) as a frame, as `serde_json::from_str` would.
    fn frame(text: &str, params: ParamsAs) -> Result<parts::Frame, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        let frame = FrameSeed(text.len(), params).deserialize(&mut de)?;
        de.end()?;
        Ok(frame)
    }

    pub fn from_value(value: Value) -> Result<Message, ParseError> {
        match value {
            Value::Object(map) => Message::checked(
                Fields(map.into_iter().map(|(k, v)| (k.into(), v)).collect()),
                None,
                None,
            ),
            Value::Array(_) => Err(ParseError::Batch),
            _ => Err(ParseError::Invalid("the body must be a JSON object")),
        }
    }

    fn checked(
        body: Fields,
        params: Option<Box<RawParams>>,
        result: Option<Box<RawResult>>,
    ) -> Result<Message, ParseError> {
        if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        let kind = if let Some(method) = body.get("method") {
            if !method.is_string() {
                return Err(ParseError::Invalid("\"method\" must be a string"));
            }
            match body.get("params") {
                None | Some(Value::Object(_)) => {}
                // Its place while it is kept as text (only an object is).
                Some(Value::Null) if params.is_some() => {}
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
            params,
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
            params: None,
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

    /// What is left where a request was moved from: a request with its method and no members
    /// (written out, it is `{}`). One allocation, where a built request takes four.
    pub fn method_only(method: &str) -> Message {
        Message {
            kind: Kind::Request,
            method: Some(Box::from(method)),
            body: Fields::default(),
            params: None,
            result: None,
            meta: None,
            text_len: 0,
        }
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

    /// The params object (made from its text the first time it is asked for while it is kept
    /// as text: where one string member is wanted, [`Message::param_str`] costs less). Its
    /// `_meta` member is not to be read here: while `_meta` is kept as text, this map holds a
    /// `null` in its place. Read it with [`Message::meta`], [`Message::meta_str`] and their
    /// neighbours.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        match &self.params {
            Some(raw) => Some(raw.tree()),
            None => self.body.get("params").and_then(Value::as_object),
        }
    }

    /// Puts `params` kept as text into the body as the tree it is, to be changed there.
    fn params_into_body(&mut self) {
        if let Some(raw) = self.params.take() {
            self.body.insert("params", Value::Object(raw.into_tree()));
        }
    }

    /// The params object to change, created empty if the message had none; `_meta` is read
    /// into it first, so all of it can be changed.
    pub fn params_mut(&mut self) -> &mut Map<String, Value> {
        self.params_into_body();
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
        self.params_into_body();
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
        match &self.params {
            Some(raw) => raw.str_member(key),
            None => self.params()?.member(key)?.as_str(),
        }
    }

    /// Sets the string member `key` of `params` (which is created if the message had none),
    /// in its place if it is there, else last. `params` kept as text stays text.
    pub fn set_param_str(&mut self, key: &str, value: &str) {
        if let Some(raw) = &mut self.params
            && !raw.is_read()
            && raw.set_str(key, value)
        {
            return;
        }
        self.data_params_mut().insert(key.into(), value.into());
    }

    /// `params._meta`, if present, as a tree (made from its text the first time it is asked
    /// for: where one member is wanted, [`Message::meta_str`] and its neighbours cost less).
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        match (&self.meta, &self.params) {
            (Some(raw), _) => raw.value().as_object(),
            // `params` kept as text with no `_meta` kept as text has none.
            (None, Some(_)) => None,
            (None, None) => self.params()?.member("_meta")?.as_object(),
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
            // An empty object (as the modern era's capabilities often are) without the parser.
            MetaMember::Text("{}") => Some(Value::Object(Map::new())),
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
        self.result = Some(Box::new(RawResult {
            at,
            text,
            parsed: OnceLock::new(),
            head: OnceLock::new(),
        }));
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
        self.params_into_body();
        if self.meta.is_some() {
            self.params_mut();
        }
        Value::Object(self.body.into_map())
    }

    /// The message as JSON text, with the keys in the order they arrived.
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw = self.result.as_deref();
        // Room for what the stages add (an id, a name's prefix, `_meta` keys) beyond either guess.
        let guess = self.text_len.max(raw.map_or(0, |r| r.text.len()));
        let mut out = Vec::with_capacity(guess + 128);
        out.push(b'{');
        let (meta, params) = (self.meta.as_deref(), self.params.as_deref());
        let put = |out: &mut Vec<u8>, key: &str, value: &Value| {
            if out.len() > 1 {
                out.push(b',');
            }
            write::string(out, key);
            out.push(b':');
            match (params, meta, value) {
                (Some(params), _, _) if key == "params" => params.write(out, meta),
                (None, Some(_), Value::Object(params)) if key == "params" => {
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

/// Writes a params object whose `_meta` is kept as text (if `meta` is there).
fn put_params(out: &mut Vec<u8>, params: &Map<String, Value>, meta: Option<&RawMeta>) {
    out.push(b'{');
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write::string(out, key);
        out.push(b':');
        match meta {
            Some(meta) if key == "_meta" => put_kept(out, &meta.text, || meta.value()),
            _ => write::value(out, value),
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
    put_kept(out, &raw.text, || raw.value());
}

/// Writes a value kept as text: the text itself, or, when it has line breaks between its
/// tokens, the value from its `tree` (stdio and SSE frame messages by line).
fn put_kept<'a>(out: &mut Vec<u8>, text: &str, tree: impl FnOnce() -> &'a Value) {
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
        write::value(out, tree());
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests;
