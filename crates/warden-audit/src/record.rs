//! The audit record: what the gateway writes and the CLI reads.
//!
//! # Canonical form
//!
//! A record's leaf in the Merkle tree is exactly [`Record::to_bytes`]: compact JSON (no
//! whitespace), fields in the declaration order below, `None` fields and a `null` `detail`
//! omitted, `detail` objects in the order they were built (`serde_json`'s `preserve_order`).
//! Those bytes are what a segment frame holds and what the leaf hash covers; readers hash the
//! stored bytes, never a re-serialisation, so an auditor needs no JSON canonicaliser to check
//! a proof.
//!
//! ```json
//! {"v":1,"seq":7,"time":"2025-06-01T12:00:00.123Z","kind":"request","call":"c1","name":"bank.transfer"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// The record format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One entry of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub call: Option<String>,
    /// The user (`sub`) the call runs for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub principal: Option<String>,
    /// The MCP client (agent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    /// The MCP session.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session: Option<String>,
    /// The upstream server.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub upstream: Option<String>,
    /// The JSON-RPC method.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method: Option<String>,
    /// The tool, prompt or resource URI.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// How long the step took, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_us: Option<u64>,
    /// The step's outcome in a word ("allow", "deny", "ok", "upstream_error" …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome: Option<String>,
    /// Kind-specific detail.
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub detail: Value,
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
        }
    }

    /// The canonical bytes: what the log stores and the leaf hash covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising this struct cannot fail: its keys are strings and `Value` holds only
        // JSON (non-finite floats cannot be built into a `Value`).
        serde_json::to_vec(self).expect("a Record always serialises to JSON")
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

/// The deepest JSON nesting a record may have: `serde_json`'s recursion limit, which every
/// reader of the log meets. A deeper record could be written but never read back.
pub const MAX_NESTING: usize = 128;

impl Record {
    /// The nesting depth of the record's JSON text (objects and arrays): its own object and
    /// its detail's, counted no further than `MAX_NESTING + 2`. Read from the values, not the
    /// text: only objects and arrays are visited, never the bytes of a string.
    pub(crate) fn nesting(&self) -> usize {
        1 + depth(&self.detail, MAX_NESTING)
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
