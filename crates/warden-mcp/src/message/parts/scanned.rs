//! The frame of the usual message read with the strict scanner ([`crate::message::scan`])
//! instead of serde_json's visitors: the same [`Frame`] that [`super::FrameSeed`] makes, at
//! less than half the cost.
//!
//! It takes the shapes nearly every message has: an object whose member names hold no escape
//! and do not repeat, a `params` and a `result` that are objects (`params` with names that
//! [`super::params::ParamsSeed`] keeps as text, and a `_meta` that is an object with plain
//! names). For anything else — and for every text that is not JSON — it gives up, and the
//! message is read by serde_json as before, so that what is refused, and why, is serde_json's
//! word.

use std::ops::Range;
use std::sync::OnceLock;

use serde_json::Value;

use super::params::{ParamsAs, RawParams, names_differ};
use super::{Fields, Frame, HeadFields, MemberRanges, RawMeta, RawResult, key_of};
use crate::message::scan;

/// Reads `text` as a frame, or `None` for what it leaves to [`super::FrameSeed`].
pub(in crate::message) fn frame(text: &str, params_as: ParamsAs) -> Option<Frame> {
    let b = text.as_bytes();
    let open = scan::space(b, 0);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut body = Fields(Vec::with_capacity(4));
    let (mut params, mut result, mut meta) = (None, None, None);
    let (end, _) = scan::object(b, open, 0, |name, escaped, at| {
        let name = &text[name];
        // A repeated name has the parser's own rules (which one wins, and where).
        if escaped || body.get(name).is_some() || (name == "result" && result.is_some()) {
            return None;
        }
        let end = match name {
            "params" if params_as == ParamsAs::Tree => return None,
            "params" => {
                let (raw, end, raw_meta) = read_params(text, at)?;
                params = Some(raw);
                meta = raw_meta;
                // Its place among the members holds `null` while it is text.
                body.0.push((key_of(name), Value::Null));
                end
            }
            "result" => {
                let (raw, end) = read_result(text, at, body.len())?;
                result = Some(raw);
                end
            }
            _ => {
                let end = scan::value(b, at, 1)?;
                body.0.push((key_of(name), leaf(&text[at..end])?));
                end
            }
        };
        Some(end)
    })?;
    (scan::space(b, end) == b.len()).then_some(Frame {
        body,
        params,
        result,
        meta,
    })
}

/// A top-level member's value (checked): the usual ones made directly, the rest by the parser.
fn leaf(value: &str) -> Option<Value> {
    let b = value.as_bytes();
    match b.first()? {
        b'"' if !b.contains(&b'\\') => Some(Value::String(value[1..value.len() - 1].to_string())),
        // Up to 18 digits always fit a `u64`, as the parser reads them; a sign, a fraction or an
        // exponent are its own.
        b'0'..=b'9' if b.len() <= 18 && b.iter().all(u8::is_ascii_digit) => {
            value.parse::<u64>().ok().map(Value::from)
        }
        b't' => Some(Value::Bool(true)),
        b'f' => Some(Value::Bool(false)),
        b'n' => Some(Value::Null),
        _ => serde_json::from_str(value).ok(),
    }
}

/// `params` at `at` as [`RawParams`] (its end, and `_meta` as [`RawMeta`]), if it is an
/// object that `ParamsSeed` keeps as text.
fn read_params(text: &str, at: usize) -> Option<(Box<RawParams>, usize, Option<Box<RawMeta>>)> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::with_capacity(4);
    let (mut meta, mut meta_index) = (None, None);
    let (end, compact) = scan::object(b, at, 1, |name, escaped, value| {
        if escaped {
            return None;
        }
        let end = if &text[name.clone()] == "_meta" {
            let (raw, end) = read_meta(text, value)?;
            (meta, meta_index) = (Some(Box::new(raw)), Some(members.len()));
            end
        } else {
            scan::value(b, value, 2)?
        };
        members.push((name, value..end));
        Some(end)
    })?;
    if !names_differ(text, &members) {
        return None;
    }
    let (joined, ranges) = join(text, at..end, members, compact, meta_index);
    let meta_at = meta_index.map(|i| ranges[i].1.clone());
    Some((Box::new(RawParams::new(joined, ranges, meta_at)), end, meta))
}

/// `params._meta` at `at` as [`RawMeta`], and its end, if it is an object with plain names.
fn read_meta(text: &str, at: usize) -> Option<(RawMeta, usize)> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::with_capacity(4);
    let (end, compact) = scan::object(b, at, 2, |name, escaped, value| {
        let end = scan::value(b, value, 3).filter(|_| !escaped)?;
        members.push((name, value..end));
        Some(end)
    })?;
    let (joined, ranges) = join(text, at..end, members, compact, None);
    let meta = RawMeta {
        text: joined,
        parsed: OnceLock::new(),
        members: Some(ranges),
    };
    Some((meta, end))
}

/// `result` at `at` as [`RawResult`] standing at `position` among the members, and its end,
/// its head read on the way, if it is an object with plain names.
fn read_result(text: &str, at: usize, position: usize) -> Option<(Box<RawResult>, usize)> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let mut head = HeadFields::default();
    let (end, compact) = scan::object(b, at, 1, |name, escaped, value| {
        let end = scan::value(b, value, 2).filter(|_| !escaped)?;
        head.see(&text[name], &text[value..end]);
        Some(end)
    })?;
    let joined = match compact {
        true => text[at..end].to_string(),
        // With whitespace between its tokens (rarer): walked again for where its members are.
        false => {
            let mut members = Vec::new();
            scan::object(b, at, 1, |name, _, value| {
                let end = scan::value(b, value, 2)?;
                members.push((name, value..end));
                Some(end)
            })?;
            join(text, at..end, members, false, None).0
        }
    };
    let result = RawResult {
        at: position,
        text: joined,
        parsed: OnceLock::new(),
        head: OnceLock::from(head.finish()),
    };
    Some((Box::new(result), end))
}

/// An object's text as the seeds write it — `{`, each member as `"name":value` with `,`
/// between them, `}`, without the whitespace between tokens — with the value of member
/// `null_at` (if any) written as `null`; and each member's name (inside its quotes) and value
/// as ranges of that text. `object` is the object's range in `text`, `members` the ranges of
/// its members there, and `compact` says whether it had no whitespace between its tokens: then
/// its own text is taken in one piece.
fn join(
    text: &str,
    object: Range<usize>,
    mut members: MemberRanges,
    compact: bool,
    null_at: Option<usize>,
) -> (String, MemberRanges) {
    const NULL: &str = "null";
    if compact {
        let cut = null_at.map_or(object.end..object.end, |i| members[i].1.clone());
        let with = if null_at.is_some() { NULL } else { "" };
        let mut out = String::with_capacity(object.len() - cut.len() + with.len());
        out.push_str(&text[object.start..cut.start]);
        out.push_str(with);
        out.push_str(&text[cut.end..object.end]);
        let moved = |p: usize| match p >= cut.end {
            true => p - object.start - cut.len() + with.len(),
            false => p - object.start,
        };
        for (name, value) in &mut members {
            *name = moved(name.start)..moved(name.end);
            *value = moved(value.start)..moved(value.end);
        }
        return (out, members);
    }
    let mut out = String::with_capacity(object.len() + NULL.len());
    out.push('{');
    for (i, (name, value)) in members.iter_mut().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        let name_at = out.len();
        out.push_str(&text[name.clone()]);
        let name_end = out.len();
        out.push_str("\":");
        let value_at = out.len();
        out.push_str(if null_at == Some(i) {
            NULL
        } else {
            &text[value.clone()]
        });
        (*name, *value) = (name_at..name_end, value_at..out.len());
    }
    out.push('}');
    (out, members)
}
