//! How a message is held: its top-level members in order ([`Fields`]), its `result` and its
//! `params._meta` kept as text until read ([`RawResult`], [`RawMeta`]), and the parse of one
//! object into all three ([`Frame`]).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::swar;

pub use params::ParamsAs;
pub(super) use params::RawParams;
use params::{Params, ParamsSeed};

/// A message's top-level members in the order they arrived. A message has a handful of them,
/// so finding one by comparing names costs less than hashing the name (as a JSON map does);
/// that hashing, on every read of `id`, `method` or `params`, was a tenth of a relayed call.
#[derive(Clone, Debug, Default)]
pub(super) struct Fields(pub(super) Vec<(Key, Value)>);

/// A member's name: JSON-RPC's own names are not copied (a message has three or four of them,
/// and each was an allocation of its own).
pub(super) type Key = Cow<'static, str>;

/// The names every message uses, kept without an allocation.
const KNOWN: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

fn key_of(name: &str) -> Key {
    match KNOWN.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_string()),
    }
}

impl Fields {
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    /// Sets `key`, in its place if it is there (a repeated key keeps its first place and its
    /// last value, as in a JSON map), else last.
    pub(super) fn insert(&mut self, key: &str, value: Value) -> &mut Value {
        let i = match self.position(key) {
            Some(i) => {
                self.0[i].1 = value;
                i
            }
            None => {
                self.0.push((key_of(key), value));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    pub(super) fn insert_at(&mut self, at: usize, key: &str, value: Value) {
        self.remove(key);
        self.0.insert(at.min(self.0.len()), (key_of(key), value));
    }

    /// The value of `key`, set (last) to what `make` gives if there is none.
    pub(super) fn get_or_insert_with(
        &mut self,
        key: &str,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        match self.position(key) {
            Some(i) => &mut self.0[i].1,
            None => self.insert(key, make()),
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.0.remove(i).1)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect()
    }
}

/// A `result` not parsed yet, and where it stood among the body's keys.
#[derive(Clone, Debug)]
pub(super) struct RawResult {
    pub(super) at: usize,
    /// Always one JSON value: written from what the parser checked, or checked when set.
    pub(super) text: String,
    pub(super) parsed: OnceLock<Value>,
    /// `resultType` and `isError`, read from the text once: the pipeline asks several times.
    pub(super) head: OnceLock<Option<ResultHead>>,
}

impl RawResult {
    pub(super) fn value(&self) -> &Value {
        // The text was checked to be JSON when the message was parsed.
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    /// `resultType` and `isError` as walked from the text, read once.
    pub(super) fn head(&self) -> &Option<ResultHead> {
        self.head.get_or_init(|| ResultHead::read(&self.text))
    }

    pub(super) fn into_value(self) -> Value {
        match self.parsed.into_inner() {
            Some(v) => v,
            None => serde_json::from_str(&self.text).unwrap_or(Value::Null),
        }
    }
}

/// A seed's visits of a value that is neither an object nor an array: each read as the JSON
/// value it is and handed to `make`.
macro_rules! scalars_as_values {
    ($make:expr) => {
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(($make)(Value::from(v)))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(($make)(Value::from(v)))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(($make)(Value::from(v)))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(($make)(Value::from(v)))
        }

        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(($make)(Value::from(v)))
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(($make)(Value::Null))
        }
    };
}

// After the macro, which it uses.
mod params;
mod scanned;

pub(super) use scanned::frame as scanned_frame;

/// A request's `params._meta`, kept as text until something needs it as a tree.
///
/// A modern request carries the protocol's envelope there on every call (version, client
/// capabilities, client information): five nested objects, each built as a map with its keys
/// hashed, only for the gateway to read two strings of it and write it all out again. Here each
/// top-level member's value is taken as the text the parser checked, and the object is written
/// once from those texts; a tree is built only when something reads past them or changes
/// `_meta`.
///
/// While a message holds one, `params` has a member `_meta` in its place whose value is not the
/// request's (see [`super::Message::params`]).
#[derive(Clone, Debug)]
pub(super) struct RawMeta {
    /// Always one JSON value: written from what the parser checked.
    pub(super) text: String,
    parsed: OnceLock<Value>,
    /// The top-level members as ranges of `text`: each name (without its quotes) and its value.
    /// `None` when their reading is left to the parser: not an object, or a name with an escape.
    members: Option<Vec<(Range<usize>, Range<usize>)>>,
}

/// One top-level member of `_meta` as found: its text, or its value where the text was parsed.
#[derive(Clone, Copy, Debug)]
pub(super) enum MetaMember<'a> {
    Text(&'a str),
    Value(&'a Value),
}

impl RawMeta {
    /// A `_meta` that is not an object, kept as the value it is.
    fn other(value: &Value) -> RawMeta {
        RawMeta {
            text: serde_json::to_string(value).unwrap_or_default(),
            parsed: OnceLock::new(),
            members: None,
        }
    }

    pub(super) fn value(&self) -> &Value {
        // The text is JSON: written from what the parser checked.
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    pub(super) fn into_value(self) -> Value {
        match self.parsed.into_inner() {
            Some(v) => v,
            None => serde_json::from_str(&self.text).unwrap_or(Value::Null),
        }
    }

    /// Whether `_meta` is an object (anything else is as good as no `_meta`).
    pub(super) fn is_object(&self) -> bool {
        self.text.starts_with('{')
    }

    /// The member `key`; a repeated member is its last value, as in a JSON map.
    pub(super) fn member(&self, key: &str) -> Option<MetaMember<'_>> {
        match &self.members {
            // Names compared as bytes: slicing the text as `str` checks both ends of every
            // name for a character boundary, on every lookup.
            Some(members) => members
                .iter()
                .rev()
                .find(|(k, _)| self.text.as_bytes().get(k.clone()) == Some(key.as_bytes()))
                .map(|(_, v)| MetaMember::Text(&self.text[v.clone()])),
            None => self.value().as_object()?.get(key).map(MetaMember::Value),
        }
    }

    /// Whether any member's name passes `test`.
    pub(super) fn any_key(&self, test: impl Fn(&str) -> bool) -> bool {
        match &self.members {
            Some(members) => members.iter().any(|(k, _)| test(&self.text[k.clone()])),
            None => self
                .value()
                .as_object()
                .is_some_and(|m| m.keys().any(|k| test(k))),
        }
    }
}

/// Reads `_meta` into a [`RawMeta`]: an object member by member, each value taken as the text
/// the parser checked (borrowed from the message's text, not copied twice) and each name as it
/// was written; anything else as the value it is.
struct MetaSeed;

impl<'de> DeserializeSeed<'de> for MetaSeed {
    type Value = RawMeta;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RawMeta, D::Error> {
        d.deserialize_any(MetaSeed)
    }
}

impl<'de> Visitor<'de> for MetaSeed {
    type Value = RawMeta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMeta, A::Error> {
        let mut members = Vec::with_capacity(4);
        let (text, plain) = read_members(&mut map, 256, Some(&mut members), |_, map| {
            checked_text(map)
        })?;
        Ok(RawMeta {
            text,
            parsed: OnceLock::new(),
            members: plain.then_some(members),
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawMeta, A::Error> {
        let (value, _) = ParamsSeed(0, ParamsAs::Tree).visit_seq(seq)?;
        Ok(RawMeta::other(&value.into_value()))
    }

    scalars_as_values!(|v: Value| RawMeta::other(&v));
}

/// The ranges of an object's members in its text: each name (without its quotes) and its value.
type MemberRanges = Vec<(Range<usize>, Range<usize>)>;

/// Reads an object member by member into one text: each value as the text `value` gives for it
/// (given the member's unescaped name, it reads the value from `map`: usually the text the
/// parser checked, borrowed from the message's text, see [`checked_text`]), each name as it was
/// written, the members joined without the whitespace between them. `ranges` (if given) gets
/// where each one stands in the text. Returns the text and whether every name was written
/// without an escape.
fn read_members<'de, A: MapAccess<'de>>(
    map: &mut A,
    capacity: usize,
    mut ranges: Option<&mut MemberRanges>,
    mut value: impl FnMut(&str, &mut A) -> Result<&'de str, A::Error>,
) -> Result<(String, bool), A::Error> {
    let mut text = String::with_capacity(capacity);
    let mut plain = true;
    text.push('{');
    while let Some(name) = map.next_key_seed(NameSeed)? {
        if text.len() > 1 {
            text.push(',');
        }
        let start = text.len() + 1;
        let name = match name {
            // Borrowed: the name had no escape, so it is written as it came.
            Name::Plain(name) => {
                text.push('"');
                text.push_str(name);
                text.push('"');
                Cow::Borrowed(name)
            }
            Name::Escaped(name) => {
                plain = false;
                let mut escaped = Vec::with_capacity(name.len() + 8);
                super::write::string(&mut escaped, &name);
                // `write::string` writes UTF-8 text as UTF-8 text.
                text.push_str(std::str::from_utf8(&escaped).unwrap_or("\"\""));
                Cow::Owned(name)
            }
        };
        let key = start..text.len() - 1;
        let value = value(&name, map)?;
        // Room for the value and the closing brace: a long value at the end of an object that
        // outgrew `capacity` is then not copied again for one byte more.
        text.reserve(value.len() + 1);
        text.push(':');
        let at = text.len();
        text.push_str(value);
        if let Some(ranges) = ranges.as_deref_mut() {
            ranges.push((key, at..text.len()));
        }
    }
    text.push('}');
    Ok((text, plain))
}

/// The next value of `map` as the text the parser checked.
fn checked_text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<&'de str, A::Error> {
    Ok(map.next_value::<&'de RawValue>()?.get())
}

/// Reads a `result` as text: an object member by member (see [`read_members`]), its head
/// ([`ResultHead`]) read on the way; anything else as the value it is, its head left for later.
/// It holds the length of the whole message, which the result's text cannot exceed: room for
/// all of it is taken at once, so a long result is copied once.
pub(super) struct ResultSeed(pub(super) usize);

/// A result's text, and its head when it was read with it.
pub(super) type ResultText = (String, Option<Option<ResultHead>>);

impl<'de> DeserializeSeed<'de> for ResultSeed {
    type Value = ResultText;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<ResultText, D::Error> {
        d.deserialize_any(self)
    }
}

impl ResultSeed {
    fn other(value: &Value) -> ResultText {
        (serde_json::to_string(value).unwrap_or_default(), None)
    }
}

impl<'de> Visitor<'de> for ResultSeed {
    type Value = ResultText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResultText, A::Error> {
        let mut head = HeadFields::default();
        let (text, _) = read_members(&mut map, self.0, None, |name, map| {
            let value = checked_text(map)?;
            head.see(name, value);
            Ok(value)
        })?;
        Ok((text, Some(head.finish())))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ResultText, A::Error> {
        // An array is rare here: the parser reads a head from it as the fields in order.
        let mut text = String::from("[");
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(item.get());
        }
        text.push(']');
        Ok((text, None))
    }

    scalars_as_values!(|v: Value| ResultSeed::other(&v));
}

/// The head's fields as a result's members go by, read as the derived parser reads them: a
/// field repeated or of the wrong type makes no head at all.
#[derive(Default)]
struct HeadFields {
    head: Option<ResultHead>,
    seen_type: bool,
    seen_error: bool,
    bad: bool,
}

impl HeadFields {
    fn see(&mut self, name: &str, value: &str) {
        let head = self.head.get_or_insert(ResultHead {
            result_type: None,
            is_error: None,
        });
        match name {
            "resultType" if std::mem::replace(&mut self.seen_type, true) => self.bad = true,
            "isError" if std::mem::replace(&mut self.seen_error, true) => self.bad = true,
            "resultType" => match value.as_bytes().first() {
                Some(b'n') => {}
                // The value was checked: without a backslash, its text is the string.
                Some(b'"') if !value.contains('\\') => {
                    head.result_type = Some(value[1..value.len() - 1].to_string());
                }
                Some(b'"') => match serde_json::from_str::<String>(value) {
                    Ok(t) => head.result_type = Some(t),
                    Err(_) => self.bad = true,
                },
                _ => self.bad = true,
            },
            "isError" => match value {
                "true" => head.is_error = Some(true),
                "false" => head.is_error = Some(false),
                "null" => {}
                _ => self.bad = true,
            },
            _ => {}
        }
    }

    fn finish(self) -> Option<ResultHead> {
        if self.bad {
            return None;
        }
        Some(self.head.unwrap_or(ResultHead {
            result_type: None,
            is_error: None,
        }))
    }
}

/// A member name as the parser gave it: borrowed from the text when it had no escape.
enum Name<'de> {
    Plain(&'de str),
    Escaped(String),
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Name<'de>, D::Error> {
        d.deserialize_str(NameSeed)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
        Ok(Name::Plain(name))
    }

    fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
        Ok(Name::Escaped(name.to_string()))
    }
}

/// A message's top-level object with `result` kept as text.
pub(super) struct Frame {
    pub(super) body: Fields,
    pub(super) params: Option<Box<RawParams>>,
    pub(super) result: Option<Box<RawResult>>,
    /// Boxed here already: the parse moves it several times.
    pub(super) meta: Option<Box<RawMeta>>,
}

/// Reads a message's top-level object into a [`Frame`]: it holds the length of the message's
/// text, and how `params` is to be read.
pub(super) struct FrameSeed(pub(super) usize, pub(super) ParamsAs);

impl<'de> DeserializeSeed<'de> for FrameSeed {
    type Value = Frame;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Frame, D::Error> {
        struct Visit(usize, ParamsAs);
        impl<'de> Visitor<'de> for Visit {
            type Value = Frame;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame, A::Error> {
                let (mut body, mut result, mut meta) = (Fields::default(), None, None);
                let mut params = None;
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    if key == "params" {
                        // A repeated `params` is the last one, as in a JSON map.
                        let (read, raw) = map.next_value_seed(ParamsSeed(self.0, self.1))?;
                        meta = raw;
                        let value = match read {
                            // Its place among the members holds `null` while it is text.
                            Params::Text(text) => {
                                params = Some(text);
                                Value::Null
                            }
                            Params::Value(value) => {
                                params = None;
                                value
                            }
                        };
                        match body.get_mut(&key) {
                            Some(v) => *v = value,
                            None => body.0.push((key, value)),
                        }
                    } else if key == "result" {
                        let (text, head) = map.next_value_seed(ResultSeed(self.0))?;
                        // A repeated result keeps the first one's place.
                        let at = result.as_deref().map_or(body.len(), |r: &RawResult| r.at);
                        let read = OnceLock::new();
                        if let Some(head) = head {
                            _ = read.set(head);
                        }
                        result = Some(Box::new(RawResult {
                            at,
                            text,
                            parsed: OnceLock::new(),
                            head: read,
                        }));
                    } else {
                        let value: Value = map.next_value()?;
                        match body.get_mut(&key) {
                            Some(v) => *v = value,
                            None => body.0.push((key, value)),
                        }
                    }
                }
                Ok(Frame {
                    body,
                    params,
                    result,
                    meta,
                })
            }
        }
        d.deserialize_map(Visit(self.0, self.1))
    }
}

/// Reads a member's name as a [`Key`].
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(key_of(name))
    }
}

/// The fields of a result that say what kind of result it is.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub(super) struct ResultHead {
    #[serde(rename = "resultType")]
    pub(super) result_type: Option<String>,
    #[serde(rename = "isError")]
    pub(super) is_error: Option<bool>,
}

impl ResultHead {
    /// Reads the head of a result's JSON text (one JSON value, already checked): `None` when
    /// the text is not an object with these fields of the right types, each at most once, as
    /// the derived parser reads it.
    pub(super) fn read(text: &str) -> Option<ResultHead> {
        match walk_head(text.as_bytes()) {
            Some(head) => head,
            None => serde_json::from_str(text).ok(),
        }
    }
}

/// The two fields of a result read by walking its top-level members and skipping their
/// values, without building anything. On a small result it costs a little less than the parser;
/// on one of 10 KiB a twentieth (callgrind: 2,000 instructions against 41,000), because a long
/// string is skipped from quote to quote. `text` must be one JSON value; the walk does not
/// check it. `None` for what it leaves to the parser: not an object, a member name with an
/// escape, a field repeated or of the wrong type.
fn walk_head(text: &[u8]) -> Option<Option<ResultHead>> {
    let mut i = super::scan::space(text, 0);
    if text.get(i) != Some(&b'{') {
        // Not an object (the parser reads an array as the fields in order): rare, and its own.
        return None;
    }
    i += 1;
    let mut head = ResultHead {
        result_type: None,
        is_error: None,
    };
    let (mut seen_type, mut seen_error) = (false, false);
    loop {
        i = super::scan::space(text, i);
        match *text.get(i)? {
            b'}' => return Some(Some(head)),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(text, i)?;
        let key = &text[i + 1..key_end - 1];
        i = super::scan::space(text, key_end);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i = super::scan::space(text, i + 1);
        let end = value_end(text, i)?;
        let value = &text[i..end];
        i = end;
        if key.contains(&b'\\') {
            return None;
        }
        match key {
            b"resultType" if std::mem::replace(&mut seen_type, true) => return None,
            b"isError" if std::mem::replace(&mut seen_error, true) => return None,
            b"resultType" => match value.first() {
                Some(b'n') => {}
                Some(b'"') if !value.contains(&b'\\') => {
                    let inner = std::str::from_utf8(&value[1..value.len() - 1]).ok()?;
                    head.result_type = Some(inner.to_string());
                }
                Some(b'"') => head.result_type = Some(serde_json::from_slice(value).ok()?),
                _ => return None,
            },
            b"isError" => match value {
                b"true" => head.is_error = Some(true),
                b"false" => head.is_error = Some(false),
                b"null" => {}
                _ => return None,
            },
            _ => {}
        }
    }
}

/// Where the string starting at `i` (its opening quote) ends: just past its closing quote.
fn string_end(text: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    // Names and short values eight bytes at a time: a search costs more to start than they
    // take, and byte by byte cost eight instructions a byte.
    let short = text.len().min(j + 32);
    while j + 8 <= short {
        let word = swar::load(text, j);
        let Some(k) = swar::first(swar::equal(word, b'"') | swar::equal(word, b'\\')) else {
            j += 8;
            continue;
        };
        j += k;
        if text[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
    while j < short {
        match text[j] {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    // Then from quote to quote: a quote after an odd number of backslashes is escaped. (Other
    // escapes, such as the `\n` of every line of a text, do not stop the search.)
    loop {
        let quote = j + memchr::memchr(b'"', text.get(j..)?)?;
        let escapes = text[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if escapes % 2 == 0 {
            return Some(quote + 1);
        }
        j = quote + 1;
    }
}

/// Where the value starting at `i` ends.
fn value_end(text: &[u8], i: usize) -> Option<usize> {
    match *text.get(i)? {
        b'"' => string_end(text, i),
        b'{' | b'[' => {
            let (mut depth, mut j) = (0usize, i);
            loop {
                match *text.get(j)? {
                    b'"' => {
                        j = string_end(text, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let rest = text.get(i..)?;
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            Some(i + len)
        }
    }
}
