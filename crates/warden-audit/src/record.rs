//! The audit record: what the gateway writes and the CLI reads.
//!
//! # Canonical form
//!
//! A record's leaf in the Merkle tree is exactly [`Record::to_bytes`]: compact JSON (no
//! whitespace), fields in the declaration order below, `None` fields and a `null` `detail`
//! omitted, `detail` objects in the order they were built (`serde_json`'s `preserve_order`).
//! Those bytes are what a segment frame holds and what the leaf hash covers; readers hash the
//! stored bytes, never a re-serialisation, so an auditor needs no JSON canonicaliser to check
//! a proof. Members of `detail` given as text are written first in `detail`, in the order
//! they were set: one written out where the record was made ([`Record::set_serialized_member`])
//! as `serde_json` writes it, and one that passed through the gateway as text (a tool result,
//! [`Record::set_text_member`]) exactly as it came, which is compact but may spell a string or
//! a number otherwise than `serde_json` would (`\u00e9` for `é`, `1e3` for `1000.0`); read
//! back, it is the same value.
//!
//! ```json
//! {"v":1,"seq":7,"time":"2025-06-01T12:00:00.123Z","kind":"request","call":"c1","name":"bank.transfer"}
//! ```

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::Error;

/// The record format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One entry of the audit log.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The format version, [`FORMAT_VERSION`].
    pub v: u32,
    /// The record's leaf index; the log assigns it at append (callers pass 0).
    pub seq: u64,
    /// When, as RFC 3339 UTC with milliseconds, from the caller's (injected) clock.
    pub time: String,
    /// What happened.
    pub kind: Kind,
    /// The id linking one call's records.
    #[serde(default)]
    pub call: Option<String>,
    /// The user (`sub`) the call runs for.
    #[serde(default)]
    pub principal: Option<String>,
    /// The MCP client (agent).
    #[serde(default)]
    pub agent: Option<String>,
    /// The MCP session.
    #[serde(default)]
    pub session: Option<String>,
    /// The upstream server.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The JSON-RPC method.
    #[serde(default)]
    pub method: Option<String>,
    /// The tool, prompt or resource URI.
    #[serde(default)]
    pub name: Option<String>,
    /// How long the step took, in microseconds.
    #[serde(default)]
    pub latency_us: Option<u64>,
    /// The step's outcome in a word ("allow", "deny", "ok", "upstream_error" …).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Kind-specific detail.
    #[serde(default)]
    pub detail: Value,
    /// Members of `detail` kept as JSON text (a payload that passed through as text, or one
    /// written out once where it was made): written first in `detail`, in the order they were
    /// set, verbatim. Set with [`Record::set_text_member`] and
    /// [`Record::set_serialized_member`]; a record read back has them in `detail` like any
    /// other member.
    #[serde(skip)]
    text_members: Vec<TextMember>,
}

/// A member of `detail` given as compact JSON text.
#[derive(Clone, Debug)]
struct TextMember {
    key: &'static str,
    text: Box<RawValue>,
    /// How deeply its objects and arrays nest (0 for a string, a number…).
    depth: usize,
}

impl PartialEq for TextMember {
    fn eq(&self, other: &TextMember) -> bool {
        self.key == other.key && self.text.get() == other.text.get()
    }
}

/// What a record is about.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A call arrived (written durable before it is forwarded).
    Request,
    /// Policy decided on a call.
    Decision,
    /// A person was asked to approve a call.
    ConsentAsked,
    /// A person approved or declined.
    ConsentDecided,
    /// A standing grant allowed a call.
    GrantUsed,
    /// A grant was revoked.
    GrantRevoked,
    /// The answer that went back (written durable before it is returned).
    Response,
    /// A request refused outside any call (edge, authentication, transport).
    Refusal,
    /// An error.
    Error,
    /// An operator's action (CLI or admin API).
    Admin,
    /// Opening the log cut away a torn tail; `detail` says what.
    LogCut,
    /// The log was opened; the first record after every start.
    Start,
}

impl Record {
    /// A record of `kind` at `time`, every optional field empty.
    pub fn new(kind: Kind, time: String) -> Record {
        Record {
            v: FORMAT_VERSION,
            seq: 0,
            time,
            kind,
            call: None,
            principal: None,
            agent: None,
            session: None,
            upstream: None,
            method: None,
            name: None,
            latency_us: None,
            outcome: None,
            detail: Value::Null,
            text_members: Vec::new(),
        }
    }

    /// Puts `text`, one JSON value, into `detail` as member `key`, kept as text: a
    /// payload that arrived as text is written out as it came, without being built into a tree
    /// of values, copied and escaped again (for a tool result, most of what its response record
    /// cost). `detail` must be an object or null (null becomes an object).
    ///
    /// The record's bytes stay canonical: text with whitespace between its tokens is not
    /// compact, and is written out again compact (through a value). A key set again replaces
    /// what it held. Fails, changing nothing, if `text` is not one JSON value.
    pub fn set_text_member(&mut self, key: &'static str, text: &str) -> Result<(), Error> {
        let malformed = |e: serde_json::Error| Error::MalformedRecord(e.to_string());
        self.can_hold_members()?;
        match compact_depth(text) {
            Some(depth) => {
                let text = RawValue::from_string(text.to_string()).map_err(malformed)?;
                self.put_text(TextMember { key, text, depth });
                Ok(())
            }
            None => {
                let value: Value = serde_json::from_str(text).map_err(malformed)?;
                self.set_serialized_member(key, &value)
            }
        }
    }

    /// Puts `value` into `detail` as member `key`, written out here, once, as compact JSON text
    /// (like [`Record::set_text_member`]) instead of being built into a tree of values that the
    /// log's writer writes out and drops.
    pub fn set_serialized_member(
        &mut self,
        key: &'static str,
        value: &(impl Serialize + ?Sized),
    ) -> Result<(), Error> {
        self.can_hold_members()?;
        let text = serde_json::value::to_raw_value(value)
            .map_err(|e| Error::MalformedRecord(e.to_string()))?;
        // serde_json writes compact text.
        let depth = compact_depth(text.get()).unwrap_or(0);
        self.put_text(TextMember { key, text, depth });
        Ok(())
    }

    /// A copy of this record without its `detail` (no members, as values or as text): what a
    /// later record about the same call starts from, without copying the payload.
    pub fn without_detail(&self) -> Record {
        Record {
            v: self.v,
            seq: self.seq,
            time: self.time.clone(),
            kind: self.kind,
            call: self.call.clone(),
            principal: self.principal.clone(),
            agent: self.agent.clone(),
            session: self.session.clone(),
            upstream: self.upstream.clone(),
            method: self.method.clone(),
            name: self.name.clone(),
            latency_us: self.latency_us,
            outcome: self.outcome.clone(),
            detail: Value::Null,
            text_members: Vec::new(),
        }
    }

    /// Why `detail` cannot hold members, if it cannot (it must be an object, or null).
    fn can_hold_members(&self) -> Result<(), Error> {
        match self.detail {
            Value::Object(_) | Value::Null => Ok(()),
            _ => Err(Error::MalformedRecord("detail is not an object".into())),
        }
    }

    /// Sets a text member, `detail` made an object if it was null.
    fn put_text(&mut self, member: TextMember) {
        match &mut self.detail {
            Value::Object(map) => _ = map.shift_remove(member.key),
            detail => *detail = Value::Object(serde_json::Map::new()),
        }
        match self.text_members.iter_mut().find(|m| m.key == member.key) {
            Some(held) => *held = member,
            None => self.text_members.push(member),
        }
    }

    /// The canonical bytes: what the log stores and the leaf hash covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Room for the text members (a payload is most of a record that has one) and the
        // fields around them, so that the bytes are not copied as they grow.
        let texts: usize = self.text_members.iter().map(|m| m.text.get().len()).sum();
        let mut bytes = Vec::with_capacity(texts + 384);
        // Serialising this struct cannot fail: its keys are strings and `Value` holds only
        // JSON (non-finite floats cannot be built into a `Value`).
        serde_json::to_writer(&mut bytes, self).expect("a Record always serialises to JSON");
        bytes
    }

    /// The record written out by whoever appends it, all but its seq, which the log assigns
    /// when it commits ([`Unsequenced`]). Refuses, as the log would, a record that readers
    /// could not read back: one nested deeper than [`MAX_NESTING`] or larger than a frame holds.
    pub(crate) fn unsequenced(mut self) -> Result<Unsequenced, Error> {
        let depth = self.nesting();
        if depth > MAX_NESTING {
            return Err(Error::RecordTooDeep {
                depth,
                max: MAX_NESTING,
            });
        }
        self.v = FORMAT_VERSION;
        self.seq = 0;
        let bytes = self.to_bytes();
        // The hand-written `Serialize` writes `v` and `seq` first.
        assert!(
            bytes.starts_with(SEQ_HEAD) && bytes.get(SEQ_HEAD.len()) == Some(&b'0'),
            "a record's bytes begin with its version and seq"
        );
        // Its seq, when assigned, has at most 20 digits where this one has 1.
        if bytes.len() + 19 > crate::frame::MAX_RECORD_BYTES {
            return Err(Error::RecordTooLarge {
                bytes: bytes.len(),
                max: crate::frame::MAX_RECORD_BYTES,
            });
        }
        Ok(Unsequenced { bytes })
    }

    /// Reads a record's bytes: its version first, so a newer record is reported as such
    /// rather than as unknown fields.
    pub fn from_bytes(b: &[u8]) -> Result<Record, Error> {
        #[derive(Deserialize)]
        struct Version {
            v: u64,
        }
        let version: Version =
            serde_json::from_slice(b).map_err(|e| Error::MalformedRecord(e.to_string()))?;
        if version.v != u64::from(FORMAT_VERSION) {
            return Err(Error::UnsupportedVersion {
                found: version.v,
                known: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(b).map_err(|e| Error::MalformedRecord(e.to_string()))
    }
}

/// What canonical bytes begin with, up to the seq's digits (the format version is 1).
pub(crate) const SEQ_HEAD: &[u8] = b"{\"v\":1,\"seq\":";
const _: () = assert!(FORMAT_VERSION == 1, "SEQ_HEAD spells the format version");

/// A record's canonical bytes written with seq 0, for the log to write with the seq it assigns:
/// [`SEQ_HEAD`], the seq's digits, then [`Unsequenced::rest`]. Written where the record was
/// made, so that the log's writer only copies, checksums and hashes bytes, and the record's
/// values are freed on the thread that built them.
pub(crate) struct Unsequenced {
    bytes: Vec<u8>,
}

impl Unsequenced {
    /// The bytes after the seq.
    pub(crate) fn rest(&self) -> &[u8] {
        &self.bytes[SEQ_HEAD.len() + 1..]
    }
}

/// Written field by field in declaration order, `None` fields and a null `detail` left out, as
/// a derived `Serialize` with those skips would, and the text member first in `detail`.
impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut r = s.serialize_struct("Record", 14)?;
        r.serialize_field("v", &self.v)?;
        r.serialize_field("seq", &self.seq)?;
        r.serialize_field("time", &self.time)?;
        r.serialize_field("kind", &self.kind)?;
        let optional = [
            ("call", &self.call),
            ("principal", &self.principal),
            ("agent", &self.agent),
            ("session", &self.session),
            ("upstream", &self.upstream),
            ("method", &self.method),
            ("name", &self.name),
        ];
        for (key, value) in optional {
            match value {
                Some(v) => r.serialize_field(key, v)?,
                None => r.skip_field(key)?,
            }
        }
        match self.latency_us {
            Some(us) => r.serialize_field("latency_us", &us)?,
            None => r.skip_field("latency_us")?,
        }
        match &self.outcome {
            Some(o) => r.serialize_field("outcome", o)?,
            None => r.skip_field("outcome")?,
        }
        if !self.text_members.is_empty() {
            r.serialize_field("detail", &WithText(&self.text_members, &self.detail))?;
        } else if self.detail.is_null() {
            r.skip_field("detail")?;
        } else {
            r.serialize_field("detail", &self.detail)?;
        }
        r.end()
    }
}

/// `detail` with its text members first.
struct WithText<'a>(&'a [TextMember], &'a Value);

impl Serialize for WithText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let WithText(members, detail) = self;
        let rest = detail.as_object();
        let mut m = s.serialize_map(Some(members.len() + rest.map_or(0, |o| o.len())))?;
        for member in members.iter() {
            m.serialize_entry(member.key, &member.text)?;
        }
        for (k, v) in rest.into_iter().flatten() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// How deeply `text` nests, or `None` when it is not compact (whitespace between tokens).
/// Brackets and whitespace inside strings do not count; the text is checked as JSON apart.
/// The contents of a string are skipped with `memchr` (most of a payload's bytes are in its
/// strings).
fn compact_depth(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(bytes, i)?,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b' ' | b'\t' | b'\n' | b'\r' => return None,
            _ => {}
        }
    }
    Some(deepest)
}

/// Just past the closing quote of the string whose contents begin at `i`, or `None` when it
/// is not closed.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        // A backslash and the byte it escapes.
        i += 2;
    }
}

/// The deepest JSON nesting a record may have: `serde_json`'s recursion limit, which every
/// reader of the log meets. A deeper record could be written but never read back.
pub const MAX_NESTING: usize = 128;

impl Record {
    /// The nesting depth of the record's JSON text (objects and arrays): its own object and
    /// its detail's, counted no further than `MAX_NESTING + 2`. Read from the values, not the
    /// text: only objects and arrays are visited, never the bytes of a string.
    pub(crate) fn nesting(&self) -> usize {
        let detail = depth(&self.detail, MAX_NESTING);
        // `detail` is an object that holds the text members too.
        let texts = self
            .text_members
            .iter()
            .map(|m| 1 + m.depth.min(MAX_NESTING + 1));
        1 + texts.fold(detail, usize::max)
    }
}

/// How deep `value`'s objects and arrays go, or `left + 1` if deeper.
fn depth(value: &Value, left: usize) -> usize {
    let inner = |items: &mut dyn Iterator<Item = &Value>| {
        if left == 0 {
            return 1;
        }
        1 + items.map(|v| depth(v, left - 1)).max().unwrap_or(0)
    };
    match value {
        Value::Array(a) => inner(&mut a.iter()),
        Value::Object(o) => inner(&mut o.values()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_bytes_are_compact_and_in_declaration_order() {
        let mut r = Record::new(Kind::ConsentAsked, "2025-06-01T12:00:00.123Z".into());
        r.seq = 7;
        r.name = Some("bank.transfer".into());
        r.call = Some("c1".into());
        r.detail = json!({"z": 1, "a": [true]});
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"seq":7,"time":"2025-06-01T12:00:00.123Z","kind":"consent_asked","call":"c1","name":"bank.transfer","detail":{"z":1,"a":[true]}}"#
        );
        assert_eq!(Record::from_bytes(text.as_bytes()).unwrap(), r);
    }

    #[test]
    fn a_record_written_out_before_its_seq_frames_as_its_canonical_bytes() {
        let mut r = Record::new(Kind::Response, "2025-06-01T12:00:00.123Z".into());
        r.call = Some("c1".into());
        r.set_text_member("result", r#"{"content":[{"type":"text","text":"é"}]}"#)
            .unwrap();
        r.detail["era"] = json!("modern");
        r.v = 9; // the log writes its own version
        for seq in [0, 7, 10, 99, 123_456_789, u64::MAX] {
            let unsequenced = r.clone().unsequenced().unwrap();
            let mut framed = Vec::new();
            let at = crate::frame::encode_sequenced(seq, unsequenced.rest(), &mut framed);
            let mut sequenced = r.clone();
            sequenced.v = FORMAT_VERSION;
            sequenced.seq = seq;
            assert_eq!(framed[at], sequenced.to_bytes()[..], "seq {seq}");
            let mut expected = Vec::new();
            crate::frame::encode(&sequenced.to_bytes(), &mut expected);
            assert_eq!(framed, expected, "seq {seq}");
            assert_eq!(
                crate::frame::sequenced_len(seq, unsequenced.rest()),
                expected.len()
            );
        }
    }

    #[test]
    fn a_record_too_deep_to_read_back_is_refused_before_it_is_written_out() {
        let mut deep = Record::new(Kind::Admin, "t".into());
        for _ in 0..MAX_NESTING {
            deep.detail = json!([deep.detail]);
        }
        assert!(matches!(
            deep.unsequenced(),
            Err(Error::RecordTooDeep { depth, max: MAX_NESTING }) if depth == MAX_NESTING + 1
        ));
    }

    #[test]
    fn nesting_counts_objects_and_arrays_not_brackets_in_strings() {
        let with = |detail| {
            let mut r = Record::new(Kind::Admin, "t".into());
            r.detail = detail;
            r.nesting()
        };
        assert_eq!(with(Value::Null), 1);
        assert_eq!(with(json!({"a": [1, {"b": "[[[{"}]})), 4);
        assert_eq!(with(json!({"a": "\"[[", "b": [[]], "c": {}})), 4);
        let mut deep = Record::new(Kind::Admin, "t".into());
        for _ in 0..MAX_NESTING {
            deep.detail = json!([deep.detail]);
        }
        assert_eq!(deep.nesting(), MAX_NESTING + 1);
        assert!(
            Record::from_bytes(&deep.to_bytes()).is_err(),
            "serde_json's limit is real"
        );
        // Deeper than the limit: counted only as far as it matters.
        for _ in 0..1000 {
            deep.detail = json!({ "x": deep.detail });
        }
        assert_eq!(deep.nesting(), MAX_NESTING + 2);
    }

    /// A record with `text` as the first member `result` of `detail` beside `rest`, built both
    /// ways: as text, and as a value.
    fn both_ways(text: &str, rest: Value) -> (Record, Record) {
        let mut as_text = Record::new(Kind::Response, "t".into());
        as_text.call = Some("c1".into());
        as_text.detail = rest.clone();
        as_text.set_text_member("result", text).unwrap();
        let mut as_value = as_text.clone();
        as_value.text_members.clear();
        let mut detail = serde_json::Map::new();
        detail.insert("result".into(), serde_json::from_str(text).unwrap());
        if let Value::Object(rest) = rest {
            detail.extend(rest);
        }
        as_value.detail = Value::Object(detail);
        (as_text, as_value)
    }

    #[test]
    fn a_text_member_is_written_as_it_came_and_reads_back_as_its_value() {
        // Spelled as serde_json writes: the same bytes either way.
        let plain = [
            r#"{"content":[{"type":"text","text":"a b\n[{ \"q\" \\ }]"}],"isError":false}"#,
            r#""just a string with { and [""#,
            "42",
            "{\"content\":[{\"type\":\"text\",\"text\":\"caf\u{e9} \u{1f600}\"}]}",
        ];
        // Spelled otherwise (escapes, exponents): kept as spelled, the same values.
        let spelled = r#"{"k":"\u00e9\ud83d\ude00","n":[1,2.5,-3e7,true,null,{}],"e":[]}"#;
        let rests = [
            Value::Null,
            json!({}),
            json!({"dlp": [{"type": "email"}], "era": "2025-11-25"}),
        ];
        for text in plain.into_iter().chain([spelled]) {
            for rest in &rests {
                let (as_text, as_value) = both_ways(text, rest.clone());
                assert_eq!(as_text.text_members.len(), 1, "{text} is compact");
                let bytes = String::from_utf8(as_text.to_bytes()).unwrap();
                if text == spelled {
                    assert!(
                        bytes.contains(&format!(r#""detail":{{"result":{text}"#)),
                        "{bytes}"
                    );
                } else {
                    let by_value = String::from_utf8(as_value.to_bytes()).unwrap();
                    assert_eq!(bytes, by_value, "{text} beside {rest}");
                }
                assert_eq!(as_text.nesting(), as_value.nesting(), "{text}");
                // Read back, the member is in `detail` like any other.
                assert_eq!(Record::from_bytes(bytes.as_bytes()).unwrap(), as_value);
            }
        }
    }

    #[test]
    fn text_that_is_not_compact_is_kept_as_a_value_and_bad_text_changes_nothing() {
        let spaced = "{ \"content\": [ {\"type\":\"text\", \"text\":\"x y\"} ]\n}";
        let (as_text, as_value) = both_ways(spaced, json!({"era": "x"}));
        assert_eq!(as_text.text_members.len(), 1, "written compact");
        assert_eq!(as_text.to_bytes(), as_value.to_bytes());
        assert_eq!(
            String::from_utf8(as_text.to_bytes()).unwrap(),
            r#"{"v":1,"seq":0,"time":"t","kind":"response","call":"c1","detail":{"result":{"content":[{"type":"text","text":"x y"}]},"era":"x"}}"#
        );

        let mut r = Record::new(Kind::Response, "t".into());
        r.detail = json!({"era": "x"});
        let before = r.clone();
        for bad in [r#"{"a":"#, r#"{"a":1}{"b":2}"#, "", "nope"] {
            assert!(r.set_text_member("result", bad).is_err(), "{bad:?}");
            assert_eq!(r, before);
        }
        r.detail = json!([1]);
        assert!(
            r.set_text_member("result", "1").is_err(),
            "detail not an object"
        );
    }

    #[test]
    fn members_set_as_text_come_first_in_the_order_set_and_replace_their_key() {
        let found =
            json!([{"direction": "results", "detector": "email", "path": "$.x", "action": "mask"}]);
        let mut r = Record::new(Kind::Response, "t".into());
        r.detail = json!({"era": "x", "dlp": "replaced"});
        r.set_text_member("result", r#"{"content":[]}"#).unwrap();
        r.set_serialized_member("dlp", &found).unwrap();
        let bytes = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            bytes.ends_with(r#""detail":{"result":{"content":[]},"dlp":[{"direction":"results","detector":"email","path":"$.x","action":"mask"}],"era":"x"}}"#),
            "{bytes}"
        );
        assert_eq!(
            Record::from_bytes(bytes.as_bytes()).unwrap().detail,
            json!({"result": {"content": []}, "dlp": found, "era": "x"})
        );
        r.set_text_member("result", "7").unwrap();
        let bytes = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            bytes.contains(r#""detail":{"result":7,"dlp":[{"#),
            "{bytes}"
        );
        assert_eq!(r.nesting(), 4, "record, detail, dlp's array, its object");
    }

    #[test]
    fn a_copy_without_detail_has_no_members_of_either_kind() {
        let mut r = Record::new(Kind::Request, "t".into());
        r.call = Some("c1".into());
        r.set_serialized_member("params", &json!({"name": "x"}))
            .unwrap();
        r.detail["era"] = "e".into();
        let bare = r.without_detail();
        assert_eq!(
            String::from_utf8(bare.to_bytes()).unwrap(),
            r#"{"v":1,"seq":0,"time":"t","kind":"request","call":"c1"}"#
        );
        assert!(
            String::from_utf8(r.to_bytes())
                .unwrap()
                .contains(r#""params":{"name":"x"}"#)
        );
    }

    /// Where a string ends, found a byte at a time as `compact_depth` first did: the
    /// reference for [`string_end`].
    fn string_end_bytewise(bytes: &[u8], i: usize) -> Option<usize> {
        let mut rest = bytes.iter().enumerate().skip(i);
        loop {
            match rest.next()? {
                (at, b'"') => return Some(at + 1),
                (_, b'\\') => _ = rest.next()?,
                _ => {}
            }
        }
    }

    /// `string_end` against the reference from every place of `text`.
    fn string_ends_agree(text: &str) -> bool {
        let bytes = text.as_bytes();
        (0..=bytes.len() + 1).all(|i| string_end(bytes, i) == string_end_bytewise(bytes, i))
    }

    #[test]
    fn strings_end_where_the_bytewise_walk_ends_them() {
        for text in [
            "",
            r#""""#,
            r#""\\""#,
            r#""\"""#,
            r#""\""#,
            r#""ab\"#,
            r#"{"a":["x\"]",{"b":"{[ "}]}"#,
            r#"[[["]]]"]]]"#,
            r#"{"a":"unclosed"#,
            "[\"\\\\\",1]",
        ] {
            assert!(string_ends_agree(text), "{text:?}");
        }
        assert_eq!(compact_depth(r#"{"a":["x\"]",{"b":"{[ "}]}"#), Some(3));
        assert_eq!(compact_depth(r#"[[["]]]"]]]"#), Some(3));
        assert_eq!(compact_depth(r#"{"a":1, "b":2}"#), None);
        assert_eq!(compact_depth(r#"{"a":"x y"}"#), Some(1));
        assert_eq!(compact_depth(r#"{"a":"unclosed"#), None);
        assert_eq!(compact_depth(r#""ab\"#), None);
    }

    proptest::proptest! {
        #[test]
        fn string_ends_agree_with_the_bytewise_walk(
            text in proptest::string::string_regex(r#"[\[\]{}":,\\ a\n]{0,40}"#).unwrap()
        ) {
            proptest::prop_assert!(string_ends_agree(&text));
        }
    }

    #[test]
    fn a_text_member_counts_toward_the_nesting_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let (as_text, as_value) = both_ways(&nested(100), Value::Null);
        assert_eq!(as_text.text_members.len(), 1);
        assert_eq!(as_text.nesting(), 102);
        assert_eq!(as_text.nesting(), as_value.nesting());
        // Deeper than any reader accepts: the log refuses the record, as it would as a value.
        let mut r = Record::new(Kind::Response, "t".into());
        r.set_text_member("result", &nested(MAX_NESTING)).unwrap();
        assert_eq!(r.nesting(), MAX_NESTING + 2);
    }

    #[test]
    fn rejects_other_versions_and_unknown_fields() {
        let v2 = br#"{"v":2,"seq":0,"time":"t","kind":"start","new":1}"#;
        assert!(matches!(
            Record::from_bytes(v2),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        let extra = br#"{"v":1,"seq":0,"time":"t","kind":"start","new":1}"#;
        assert!(matches!(
            Record::from_bytes(extra),
            Err(Error::MalformedRecord(_))
        ));
        assert!(matches!(
            Record::from_bytes(b"\x00\x00"),
            Err(Error::MalformedRecord(_))
        ));
    }
}
