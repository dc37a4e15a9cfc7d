//! A request's `params` kept as text ([`RawParams`]) until something reads it as a tree, and
//! the parse that makes it ([`ParamsSeed`]).

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{MemberRanges, MetaSeed, RawMeta, checked_text, read_members};

/// How a request's `params` is read: kept as text until something reads it as a tree, or read
/// as a tree at once, for a caller that knows something will (a policy on the arguments, DLP,
/// the audit trail): text first would then be read twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsAs {
    Text,
    Tree,
}

/// `params` as read: an object kept as text, or anything else as the value it is.
pub(super) enum Params {
    Text(Box<RawParams>),
    Value(Value),
}

impl Params {
    pub(super) fn into_value(self) -> Value {
        match self {
            Params::Text(raw) => Value::Object(raw.into_tree()),
            Params::Value(value) => value,
        }
    }
}

/// Reads `params`: an object's members as text ([`RawParams`]), except `_meta`, which is kept
/// as text of its own ([`RawMeta`]) with a `null` in its place. An object whose member names
/// have an escape or repeat is read into a JSON map instead (the same `null` in place of
/// `_meta`), and so is every object when asked to ([`ParamsAs::Tree`]). Anything else is read
/// as the value it is (and refused later: `params` must be an object). It holds the length of
/// the message's text, which `params` cannot exceed.
pub(super) struct ParamsSeed(pub(super) usize, pub(super) ParamsAs);

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = (Params, Option<Box<RawMeta>>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = (Params, Option<Box<RawMeta>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut meta = None;
        if self.1 == ParamsAs::Tree {
            let mut params = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if key == "_meta" {
                    meta = Some(Box::new(map.next_value_seed(MetaSeed)?));
                    Value::Null
                } else {
                    map.next_value()?
                };
                params.insert(key, value);
            }
            return Ok((Params::Value(Value::Object(params)), meta));
        }
        let mut members = Vec::with_capacity(4);
        let (text, plain) = read_members(&mut map, self.0, Some(&mut members), |name, map| {
            if name == "_meta" {
                // A repeated `_meta` is the last one, as in a JSON map.
                meta = Some(Box::new(map.next_value_seed(MetaSeed)?));
                Ok("null")
            } else {
                checked_text(map)
            }
        })?;
        if plain && names_differ(&text, &members) {
            let meta_at = members
                .iter()
                .find(|(k, _)| &text[k.clone()] == "_meta")
                .map(|(_, v)| v.clone());
            let raw = RawParams::new(text, members, meta_at);
            return Ok((Params::Text(Box::new(raw)), meta));
        }
        // The text is one JSON object, written from what the parser checked; read as a map, a
        // repeated name keeps its first place and its last value.
        let params: Map<String, Value> =
            serde_json::from_str(&text).map_err(serde::de::Error::custom)?;
        Ok((Params::Value(Value::Object(params)), meta))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok((Params::Value(Value::Array(items)), None))
    }

    scalars_as_values!(|v: Value| (Params::Value(v), None));
}

/// Whether no two members have the same name (compared as written: the names have no escape).
/// Objects of more than [`NAMES_COMPARED_UP_TO`] members are not compared, and count as not.
pub(super) fn names_differ(text: &str, members: &MemberRanges) -> bool {
    let name = |i: usize| &text.as_bytes()[members[i].0.clone()];
    members.len() <= NAMES_COMPARED_UP_TO
        && (1..members.len()).all(|i| (0..i).all(|j| name(i) != name(j)))
}

/// Up to this many members, `params` is kept as text (see [`names_differ`]).
const NAMES_COMPARED_UP_TO: usize = 16;

/// A request's `params` object, kept as text until something reads it as a tree or changes a
/// member other than by [`RawParams::set_str`].
///
/// Most calls' `params` are routed on (by `name` or `uri`, read from the text) and passed on
/// with the name changed: building every member as a tree of values (a map with hashed keys, a
/// string for each name and value), writing it all out again and dropping it was the largest
/// part of reading a request. Only an object whose member names are written without an escape
/// and differ from each other is kept so: a reader that keeps the first of a repeated name and
/// one that keeps the last then find the same members, so the upstream cannot act on a `name`
/// the gateway did not route and decide on. A member's value may itself repeat a name (the
/// arguments, say); nothing has read it then, and once something reads `params` as a tree (a
/// policy on the arguments, DLP, the audit trail), the message is written from the tree: what
/// the gateway read is what goes on.
#[derive(Clone, Debug)]
pub(in crate::message) struct RawParams {
    /// One JSON object: written from what the parser checked, `_meta`'s value as `null`.
    text: String,
    /// Each member's name (without its quotes) and value, as ranges of `text`.
    members: MemberRanges,
    /// Where `_meta`'s value stands in `text`; the message's [`RawMeta`] is written there.
    meta_at: Option<Range<usize>>,
    tree: OnceLock<Map<String, Value>>,
}

impl RawParams {
    /// `params` kept as `text` (one JSON object as [`ParamsSeed`] writes it), its members at
    /// `members`, `_meta`'s placeholder at `meta_at`.
    pub(super) fn new(text: String, members: MemberRanges, meta_at: Option<Range<usize>>) -> Self {
        RawParams {
            text,
            members,
            meta_at,
            tree: OnceLock::new(),
        }
    }

    /// The object as a tree, made from the text the first time it is asked for.
    pub(in crate::message) fn tree(&self) -> &Map<String, Value> {
        self.tree
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or_default())
    }

    pub(in crate::message) fn into_tree(self) -> Map<String, Value> {
        match self.tree.into_inner() {
            Some(tree) => tree,
            None => serde_json::from_str(&self.text).unwrap_or_default(),
        }
    }

    /// Whether something has read it as a tree.
    pub(in crate::message) fn is_read(&self) -> bool {
        self.tree.get().is_some()
    }

    fn position(&self, key: &str) -> Option<usize> {
        // Names compared as bytes, as in `RawMeta::member`.
        self.members
            .iter()
            .position(|(k, _)| self.text.as_bytes().get(k.clone()) == Some(key.as_bytes()))
    }

    /// The member `key` if it is a string: read from the text when it has no escape.
    pub(in crate::message) fn str_member(&self, key: &str) -> Option<&str> {
        let (_, value) = &self.members[self.position(key)?];
        let text = &self.text[value.clone()];
        match text.strip_prefix('"')?.strip_suffix('"') {
            Some(inner) if !inner.contains('\\') => Some(inner),
            // An escaped string: read by the parser.
            _ => self.tree().get(key)?.as_str(),
        }
    }

    /// Sets the member `key` to the string `value` in the text: in its place if it is there,
    /// else last. Only while nothing has read the tree (which would then be out of date).
    /// Returns `false`, changing nothing, for a new name that would need an escape.
    pub(in crate::message) fn set_str(&mut self, key: &str, value: &str) -> bool {
        debug_assert!(!self.is_read(), "set in the text after the tree was read");
        use crate::message::write;
        let at = self.position(key);
        if at.is_none() && key.bytes().any(write::needs_escape) {
            return false;
        }
        let plain = !value.bytes().any(write::needs_escape);
        if let Some(i) = at
            && plain
            && self.text[self.members[i].1.clone()].starts_with('"')
        {
            // A string for a string, with nothing to escape: the new text between the old quotes.
            let old = self.members[i].1.clone();
            self.replace(i, old.start + 1..old.end - 1, value);
            return true;
        }
        let mut literal = Vec::with_capacity(value.len() + 2);
        write::string(&mut literal, value);
        // `write::string` writes UTF-8 text as UTF-8 text.
        let literal = std::str::from_utf8(&literal).unwrap_or("\"\"");
        match at {
            Some(i) => {
                let old = self.members[i].1.clone();
                self.replace(i, old, literal);
            }
            None => {
                self.text.pop();
                if !self.members.is_empty() {
                    self.text.push(',');
                }
                self.text.push('"');
                let name = self.text.len()..self.text.len() + key.len();
                self.text.push_str(key);
                self.text.push_str("\":");
                let at = self.text.len();
                self.text.push_str(literal);
                self.members.push((name, at..self.text.len()));
                self.text.push('}');
            }
        }
        true
    }

    /// Replaces `range` of `text`, within the value of member `i`, with `with`; the ranges
    /// after it move with the text.
    fn replace(&mut self, i: usize, range: Range<usize>, with: &str) {
        self.text.replace_range(range.clone(), with);
        let end = range.start + with.len();
        let value = &mut self.members[i].1;
        *value = value.start..value.end + end - range.end;
        let shift = |r: &mut Range<usize>| {
            if r.start >= range.end {
                *r = r.start + end - range.end..r.end + end - range.end;
            }
        };
        for (k, v) in &mut self.members[i + 1..] {
            shift(k);
            shift(v);
        }
        if let Some(at) = &mut self.meta_at {
            shift(at);
        }
    }

    /// Writes the object, `meta` in the place of `_meta`: its text, or, when it has line breaks
    /// between its tokens or something has read it as a tree, the tree.
    pub(in crate::message) fn write(&self, out: &mut Vec<u8>, meta: Option<&RawMeta>) {
        if self.is_read() || memchr::memchr2(b'\n', b'\r', self.text.as_bytes()).is_some() {
            return crate::message::put_params(out, self.tree(), meta);
        }
        match (&self.meta_at, meta) {
            (Some(at), Some(meta)) => {
                out.extend_from_slice(&self.text.as_bytes()[..at.start]);
                crate::message::put_kept(out, &meta.text, || meta.value());
                out.extend_from_slice(&self.text.as_bytes()[at.end..]);
            }
            _ => out.extend_from_slice(self.text.as_bytes()),
        }
    }
}
