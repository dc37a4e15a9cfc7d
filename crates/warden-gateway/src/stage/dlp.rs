//! The DLP stages: [`DlpArguments`] scans what an agent sends before the request is recorded and
//! forwarded (so neither the upstream nor the audit trail gets a secret that policy blocks or
//! masks); [`DlpReply`] scans every message that comes back, interim and final, before the
//! response record and the client see it.
//!
//! A reply stays valid: strings are rewritten in place and keep their type, and a rewritten
//! `structuredContent` is checked against the tool's `outputSchema` — if it no longer matches,
//! the result is withheld rather than sent invalid. Findings (types and paths, never values) go
//! to the call (for the audit records), the metrics and the log.

use std::sync::Arc;

use serde_json::{Map, Value};
use warden_dlp::{Action, Engine, Outcome};
use warden_mcp::{Message, Method};

use crate::call::{Call, Frame, Next, Refusal, ReplyStage, RequestStage, Staged, Verdict};
use crate::dlp::{Direction, Found};
use crate::gateway::Gateway;

/// Members of `params` that are protocol, not data: never rewritten.
const PROTOCOL_KEYS: &[&str] = &[
    "_meta",
    "name",
    "progressToken",
    "elicitationId",
    "requestId",
];

/// Scans the arguments of calls to upstreams.
pub struct DlpArguments;

impl RequestStage for DlpArguments {
    fn name(&self) -> &'static str {
        "dlp-arguments"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        Staged::Now(arguments(gw, call))
    }
}

fn engine(gw: &Gateway, call: &Call, direction: Direction) -> Option<Arc<Engine>> {
    let dlp = gw.dlp.as_ref()?;
    let target = call.target.as_ref();
    let upstream = target.map(|t| gw.pool.config(t.upstream).name.as_str());
    let tool = target.map(|t| t.exposed.as_str());
    dlp.engine(
        direction,
        upstream,
        tool,
        &call.ctx.principal,
        &call.data_rules,
    )
}

fn arguments(gw: &Gateway, call: &mut Call) -> Next {
    if call.target.is_none() {
        return Next::Continue;
    }
    let Some(engine) = engine(gw, call, Direction::Arguments) else {
        return Next::Continue;
    };
    let outcome = scan_params(&engine, call.msg.data_params_mut());
    match note(gw, call, Direction::Arguments, outcome) {
        Some(refusal) => Next::Refuse(refusal),
        None => Next::Continue,
    }
}

/// Scans the data members of a `params` object in place.
fn scan_params(engine: &Engine, params: &mut Map<String, Value>) -> Outcome {
    let kept: Vec<(String, Value)> = PROTOCOL_KEYS
        .iter()
        .filter_map(|k| params.remove(*k).map(|v| ((*k).to_string(), v)))
        .collect();
    let mut data = Value::Object(std::mem::take(params));
    let outcome = engine.apply(&mut data);
    if let Value::Object(data) = data {
        *params = data;
    }
    params.extend(kept);
    outcome
}

/// Records a scan's findings on the call, in the metrics and in the log; the refusal if a
/// detector set to block matched.
fn note(gw: &Gateway, call: &mut Call, direction: Direction, outcome: Outcome) -> Option<Refusal> {
    if outcome.findings.is_empty() {
        return None;
    }
    let blocked = outcome.blocked;
    let mut blockers: Vec<String> = Vec::new();
    let first = call.dlp.len();
    call.dlp.reserve(outcome.findings.len());
    for f in outcome.findings {
        let found = Found::new(direction, f);
        if found.action == Action::Block && !blockers.contains(&found.detector) {
            blockers.push(found.detector.clone());
        }
        call.dlp.push(found);
    }
    let new = &call.dlp[first..];
    gw.metrics.dlp_findings(new);
    let name = call_name(call);
    // One line per scanned message with findings; the paths only when someone reads them.
    if tracing::enabled!(tracing::Level::INFO) {
        let kinds: Vec<String> = new
            .iter()
            .map(|f| format!("{}@{}", f.detector, f.path))
            .collect();
        tracing::info!(call = %call.audit_id, name = %name, direction = direction.as_str(), findings = ?kinds, blocked, "DLP findings");
    }
    blocked.then(|| {
        blockers.sort();
        Refusal::DataPolicy {
            name,
            direction,
            detectors: blockers,
        }
    })
}

fn call_name(call: &Call) -> String {
    call.target
        .as_ref()
        .map_or_else(|| call.method.as_str().to_string(), |t| t.exposed.clone())
}

/// Scans every message of a reply.
pub struct DlpReply;

impl ReplyStage for DlpReply {
    fn name(&self) -> &'static str {
        "dlp-reply"
    }

    fn see<'a>(
        &'a self,
        gw: &'a Gateway,
        call: &'a mut Call,
        frame: &'a mut Frame,
    ) -> Staged<'a, Verdict> {
        Staged::Now(reply(gw, call, frame))
    }
}

/// The methods whose results carry upstream data (lists are for tool integrity).
fn carries_data(method: Method) -> bool {
    matches!(
        method,
        Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead | Method::Complete
    )
}

fn reply(gw: &Gateway, call: &mut Call, frame: &mut Frame) -> Verdict {
    // Only what came from an upstream: Warden's own answers (a refusal, a consent link while
    // the call waits) are not upstream data.
    if call.target.is_none() || call.upstream_era.is_none() {
        return Verdict::Pass;
    }
    let Some(engine) = engine(gw, call, Direction::Results) else {
        return Verdict::Pass;
    };
    let outcome = match frame {
        Frame::Final(m) if carries_data(call.method) => scan_final(&engine, m),
        Frame::Final(_) => return Verdict::Pass,
        Frame::Interim(m) => {
            if m.params().is_none() {
                return Verdict::Pass;
            }
            scan_params(&engine, m.data_params_mut())
        }
    };
    let rewrote_structured = outcome
        .findings
        .iter()
        .any(|f| f.action != Action::Report && f.path.starts_with("$.structuredContent"));
    if let Some(refusal) = note(gw, call, Direction::Results, outcome) {
        return Verdict::Refuse(refusal);
    }
    if rewrote_structured
        && let Frame::Final(m) = frame
        && let Some(refusal) = check_schema(gw, call, m)
    {
        return Verdict::Refuse(refusal);
    }
    Verdict::Pass
}

/// Scans a final message: its result, or its error's message and data. A result still held as
/// text is scanned as text (see [`Engine::apply_json`]) and stays text: only the strings with
/// rewritten findings change.
fn scan_final(engine: &Engine, m: &mut Message) -> Outcome {
    if let Some(raw) = m.raw_result()
        && let Some(scanned) = engine.apply_json(raw)
    {
        if let Some(text) = scanned.rewritten {
            // Only the contents of string literals were replaced, each escaped as JSON.
            m.set_rewritten_result(text);
        }
        return scanned.outcome;
    }
    if let Some(result) = m.result_mut() {
        return engine.apply(result);
    }
    match m.error_mut() {
        Some(Value::Object(e)) => {
            let code = e.remove("code");
            let mut data = Value::Object(std::mem::take(e));
            let outcome = engine.apply(&mut data);
            if let Value::Object(data) = data {
                *e = data;
            }
            if let Some(code) = code {
                e.insert("code".into(), code);
            }
            outcome
        }
        _ => Outcome::default(),
    }
}

/// The refusal when a rewritten `structuredContent` no longer matches the tool's `outputSchema`.
fn check_schema(gw: &Gateway, call: &Call, m: &Message) -> Option<Refusal> {
    let target = call.target.as_ref()?;
    let schema = gw.catalog.output_schema(&target.exposed)?;
    let structured = m.result()?.get("structuredContent")?;
    let why = match jsonschema::validator_for(&schema) {
        // The path and the rule broken, not the error's text: that quotes the value.
        Ok(v) => {
            let e = v.validate(structured).err()?;
            format!(
                "structuredContent{} breaks {}",
                e.instance_path(),
                e.schema_path()
            )
        }
        Err(e) => {
            tracing::warn!(tool = %target.exposed, error = %e, "outputSchema does not compile; redacted result sent unchecked");
            return None;
        }
    };
    let mut detectors: Vec<String> = call
        .dlp
        .iter()
        .filter(|f| f.direction == Direction::Results && f.path.starts_with("$.structuredContent"))
        .map(|f| f.detector.clone())
        .collect();
    detectors.sort();
    detectors.dedup();
    Some(Refusal::RedactionBreaksSchema {
        name: target.exposed.clone(),
        detectors,
        why,
    })
}
