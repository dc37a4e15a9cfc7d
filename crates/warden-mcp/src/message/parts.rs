//! How a message is held: its top-level members in order ([`Fields`]), its `result` kept as text
//! until read ([`RawResult`]), and the parse of one object into both ([`Frame`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::swar;

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
    /// Always one JSON value: checked when it was parsed or set.
    pub(super) text: Box<str>,
    pub(super) parsed: OnceLock<Value>,
    /// `resultType` and `isError`, read from the text once: the pipeline asks several times.
    /// Boxed, so that every message stays as small as before.
    pub(super) head: OnceLock<Box<Option<ResultHead>>>,
}

impl RawResult {
    pub(super) fn value(&self) -> &Value {
        // The text was checked to be JSON when the message was parsed.
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    /// `resultType` and `isError` as walked from the text, read once.
    pub(super) fn head(&self) -> &Option<ResultHead> {
        self.head
            .get_or_init(|| Box::new(ResultHead::read(&self.text)))
    }

    pub(super) fn into_value(self) -> Value {
        match self.parsed.into_inner() {
            Some(v) => v,
            None => serde_json::from_str(&self.text).unwrap_or(Value::Null),
        }
    }
}

/// A message's top-level object with `result` kept as text.
pub(super) struct Frame {
    pub(super) body: Fields,
    pub(super) result: Option<RawResult>,
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Frame, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Frame;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame, A::Error> {
                let (mut body, mut result) = (Fields::default(), None);
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    if key == "result" {
                        let text: Box<RawValue> = map.next_value()?;
                        // A repeated result keeps the first one's place.
                        let at = result.as_ref().map_or(body.len(), |r: &RawResult| r.at);
                        result = Some(RawResult {
                            at,
                            text: text.into(),
                            parsed: OnceLock::new(),
                            head: OnceLock::new(),
                        });
                    } else {
                        let value: Value = map.next_value()?;
                        match body.get_mut(&key) {
                            Some(v) => *v = value,
                            None => body.0.push((key, value)),
                        }
                    }
                }
                Ok(Frame { body, result })
            }
        }
        d.deserialize_map(Visit)
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
    let mut i = skip_space(text, 0);
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
        i = skip_space(text, i);
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
        i = skip_space(text, key_end);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(text, i + 1);
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

fn skip_space(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
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
