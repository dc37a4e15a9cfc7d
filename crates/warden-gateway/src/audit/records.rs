//! What each record holds, built from the call (never from its headers, so no credential can
//! reach a record): who, which agent, which session and upstream, the method and name, the
//! arguments and the payload as much as `audit.payload` says, the decision, the outcome.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use warden_audit::{Kind, Record};
use warden_mcp::Message;

use crate::call::Call;
use crate::call::life::outcome_of;
use crate::config::Capture;
use crate::dlp::{Direction, Found};
use crate::gateway::Gateway;
use crate::identity::Principal;

/// The policy decision a call went through with, for its request record.
#[derive(Clone, Debug, Default)]
pub struct Decided {
    /// `allow` or `consent` (a denied call is refused before it is forwarded).
    pub outcome: &'static str,
    /// The policies that decided it.
    pub policies: Vec<String>,
    /// The grant that let a call needing consent through.
    pub grant: Option<String>,
}

/// A record about `principal`.
pub fn about(kind: Kind, principal: &Principal) -> Record {
    let mut r = super::record(kind);
    r.principal = Some(principal.user.to_string());
    r.agent = principal.agent.as_deref().map(str::to_string);
    r
}

/// A record of `kind` about `call`, with the fields every record of a call has.
fn of_call(gw: &Gateway, call: &Call, kind: Kind) -> Record {
    let mut r = about(kind, &call.ctx.principal);
    r.call = Some(call.audit_id.clone());
    r.session = call.ctx.session.as_ref().map(|s| s.id.to_string());
    r.method = call.msg.method().map(str::to_string);
    if let Some(t) = &call.target {
        r.upstream = Some(gw.pool.config(t.upstream).name.clone());
        r.name = Some(t.exposed.clone());
    }
    r
}

/// How much of this call's payloads to keep.
fn capture_of(gw: &Gateway, call: &Call) -> Capture {
    let upstream = call
        .target
        .as_ref()
        .map(|t| gw.pool.config(t.upstream).name.as_str());
    let tool = call.target.as_ref().map(|t| t.exposed.as_str());
    gw.audit.capture(upstream, tool)
}

/// The decision a call went through with, as its records hold it (`null` for none), written
/// straight from the call.
struct DecisionOf<'a>(&'a Call);

impl serde::Serialize for DecisionOf<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let call = self.0;
        let Some(d) = &call.decided else {
            return s.serialize_unit();
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("outcome", d.outcome)?;
        m.serialize_entry("policies", &d.policies)?;
        m.serialize_entry("grant", &d.grant)?;
        if !call.data_rules.is_empty() {
            let rules: Vec<&str> = call.data_rules.policies().collect();
            m.serialize_entry("data_rules", &rules)?;
        }
        m.end()
    }
}

/// Puts what every call's records hold once about its request — the parameters, the decision,
/// the era — into `r`, each written out once, as text.
fn put_request(r: &mut Record, call: &Call, how: Capture) {
    put_params(r, call, how);
    put(r, "decision", &DecisionOf(call));
    put(r, "era", call.ctx.era.as_str());
}

/// Puts `value` into `r`'s `detail` as member `key`, written out once, as text.
fn put(r: &mut Record, key: &'static str, value: &(impl serde::Serialize + ?Sized)) {
    settle(key, r.set_serialized_member(key, value));
}

/// Logs a member that could not be put into a record. Not reached: records are given JSON
/// values, strings, and text a message checked as JSON.
fn settle(key: &str, put: Result<(), warden_audit::Error>) {
    if let Err(e) = put {
        tracing::error!(member = key, error = %e, "audit record: a member could not be written");
    }
}

/// Puts a call's DLP findings into `r`, when there are any.
fn put_findings(r: &mut Record, found: &[&Found]) {
    if !found.is_empty() {
        put(r, "dlp", found);
    }
}

/// The record written before a call is forwarded: the exact request and the decision.
pub fn request(gw: &Gateway, call: &Call) -> Record {
    let mut r = of_call(gw, call, Kind::Request);
    let how = capture_of(gw, call);
    put_request(&mut r, call, how);
    // The address's text, written out without a `String` made of it first.
    put(&mut r, "peer", &call.ctx.peer);
    put_findings(&mut r, &dlp_findings(call, |_| true));
    r
}

/// A call's DLP findings that `keep` selects. Records hold their types, paths and actions,
/// never values (see `Found`'s `Serialize`).
fn dlp_findings(call: &Call, keep: impl Fn(&Found) -> bool) -> Vec<&Found> {
    call.dlp.iter().filter(|f| keep(f)).collect()
}

/// The record of a call's final message, before it goes to the client. A call that was never
/// forwarded (refused, or answered by Warden itself) has no request record, so this one holds
/// the request too.
pub fn response(gw: &Gateway, call: &Call, message: &Message) -> Record {
    let refused = message.rpc_error().is_some() && call.upstream_era.is_none();
    let kind = if refused {
        Kind::Refusal
    } else {
        Kind::Response
    };
    let mut r = of_call(gw, call, kind);
    let how = capture_of(gw, call);
    r.outcome = Some(
        call.refused_as
            .unwrap_or_else(|| outcome_of(message))
            .to_string(),
    );
    r.latency_us = Some(micros(call.life.elapsed()));
    // The payload and the findings are written out here, once, as text (first in `detail`): a
    // result held as text and kept whole goes in as that text, exactly as the client gets it.
    if let Some(e) = message.rpc_error() {
        put(
            &mut r,
            "error",
            &json!({ "code": e.code, "message": e.message }),
        );
    } else if let (Capture::Full, Some(text)) = (how, message.raw_result()) {
        settle("result", r.set_text_member("result", text));
    } else if let Some(result) = message.result() {
        put(&mut r, "result", &capture(result, how));
    }
    // With a request record, that record holds the findings in the arguments.
    let requested = call.audit_requested;
    put_findings(
        &mut r,
        &dlp_findings(call, |f| !requested || f.direction == Direction::Results),
    );
    if !requested {
        put_request(&mut r, call, how);
    }
    r
}

/// The record of a forwarded call that ended without a final message (cancelled, or the client
/// went away).
pub fn ended_early(
    call_id: String,
    base: Record,
    outcome: &str,
    latency: std::time::Duration,
) -> Record {
    let mut r = base;
    r.kind = Kind::Response;
    r.time = super::now_rfc3339();
    r.call = Some(call_id);
    r.outcome = Some(outcome.to_string());
    r.latency_us = Some(micros(latency));
    r.detail = Value::Null;
    r
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The record of policies loaded (at start, and when the files change): which files, by their
/// SHA-256, so an auditor can tell which rules decided the calls that follow.
pub fn policies(dir: &std::path::Path, loaded: Result<usize, String>) -> Record {
    let mut r = super::record(Kind::Admin);
    r.name = Some("policies.load".to_string());
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, hex::encode(Sha256::digest(&bytes))))
        })
        .collect();
    files.sort();
    let files: Map<String, Value> = files.into_iter().map(|(n, d)| (n, d.into())).collect();
    let (outcome, detail) = match loaded {
        Ok(n) => (
            "loaded",
            json!({ "dir": dir.display().to_string(), "policies": n, "files": files }),
        ),
        Err(e) => (
            "refused",
            json!({ "dir": dir.display().to_string(), "error": e, "files": files }),
        ),
    };
    r.outcome = Some(outcome.to_string());
    r.detail = detail;
    r
}

/// `value` as much as `how` keeps of it.
pub fn capture(value: &Value, how: Capture) -> Value {
    match how {
        Capture::Full => value.clone(),
        Capture::Redacted => redact(value),
        Capture::Digest => {
            let bytes = serde_json::to_vec(value).unwrap_or_default();
            json!({ "sha256": hex::encode(Sha256::digest(&bytes)) })
        }
    }
}

/// Puts the call's parameters (without `_meta`) into the record as much as `how` keeps of them,
/// written out once as text: kept whole, straight from the message, without a copy.
fn put_params(r: &mut Record, call: &Call, how: Capture) {
    let params = Params(call.msg.params());
    match how {
        Capture::Full => put(r, "params", &params),
        _ => match serde_json::to_value(params) {
            Ok(p) => put(r, "params", &capture(&p, how)),
            Err(e) => settle(
                "params",
                Err(warden_audit::Error::MalformedRecord(e.to_string())),
            ),
        },
    }
}

/// A request's parameters without `_meta` (the protocol's bookkeeping, not the caller's ask),
/// written as they are.
struct Params<'a>(Option<&'a Map<String, Value>>);

impl serde::Serialize for Params<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(params) = self.0 else {
            return s.serialize_unit();
        };
        let mut m = s.serialize_map(None)?;
        for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "_meta") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The shape of `value`: every string replaced by a note of its length.
fn redact(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(format!("<redacted {} chars>", s.chars().count())),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_keep_what_they_say() {
        let v = json!({ "card": "4111 1111 1111 1111", "n": 3, "list": ["ab"] });
        assert_eq!(capture(&v, Capture::Full), v);
        assert_eq!(
            capture(&v, Capture::Redacted),
            json!({ "card": "<redacted 19 chars>", "n": 3, "list": ["<redacted 2 chars>"] })
        );
        let digest = capture(&v, Capture::Digest);
        let text = digest["sha256"].as_str().unwrap();
        assert_eq!(text.len(), 64);
        assert!(!digest.to_string().contains("4111"));
    }
}
