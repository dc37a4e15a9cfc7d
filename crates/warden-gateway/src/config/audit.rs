//! `[audit]`: the tamper-evident audit trail — where it is kept, what it holds of each payload,
//! and what happens to calls when it cannot be written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::ServerConfig;
use super::raw::{Check, duration_text, relative_to};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    enabled: Option<bool>,
    dir: Option<String>,
    key: Option<String>,
    origin: Option<String>,
    payload: Option<Spanned<String>>,
    #[serde(default)]
    payloads: BTreeMap<String, Spanned<String>>,
    on_failure: Option<Spanned<String>>,
    checkpoint_every: Option<u64>,
    checkpoint_interval: Option<String>,
    commit_delay: Option<String>,
}

/// The writer's wait for company by default: on the 2-core VM of `docs/benchmarks.md` ("Fewer
/// fdatasyncs under load") it halved the full pipeline's fdatasyncs per call under load and
/// took 3-5 µs of the writer thread's CPU off each call, at no loss of throughput the runs could
/// see; 150 µs saved few more fdatasyncs, and 300 µs cost a fifth of the throughput.
const DEFAULT_COMMIT_DELAY: Duration = Duration::from_micros(75);
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(10);

/// How much of a request's arguments and a reply's payload a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// The exact JSON, as it went through.
    Full,
    /// The JSON's shape: keys, numbers, booleans and nulls kept, every string replaced by its
    /// length (until DLP masks values, nothing of a string's content is kept).
    Redacted,
    /// Only the SHA-256 of the JSON, so a copy held elsewhere can be matched.
    Digest,
}

/// What a call does when its record cannot be made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// The call is refused (the default): nothing happens that the trail does not hold.
    Closed,
    /// The call goes on; every miss is logged, counted and shown in `/readyz`.
    Open,
}

#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// Off only when the config says `enabled = false` in plain words.
    pub enabled: bool,
    /// The log's directory (segments, checkpoints, tiles).
    pub dir: PathBuf,
    /// The Ed25519 signing key of checkpoints (created, mode 0600, when missing).
    pub key: PathBuf,
    /// The checkpoints' origin line, and the key's name when Warden creates the key.
    pub origin: String,
    pub payload: Capture,
    /// Per upstream name or exposed tool name (the tool's entry wins).
    pub payloads: BTreeMap<String, Capture>,
    pub on_failure: FailMode,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    /// How long the log's writer waits for more records before a commit while the gateway is
    /// busy (zero: never).
    pub commit_delay: Duration,
}

impl AuditConfig {
    /// How much of the payloads of a call to `tool` of `upstream` to keep.
    pub fn capture(&self, upstream: Option<&str>, tool: Option<&str>) -> Capture {
        tool.and_then(|t| self.payloads.get(t))
            .or_else(|| upstream.and_then(|u| self.payloads.get(u)))
            .copied()
            .unwrap_or(self.payload)
    }
}

fn capture(check: &mut Check, raw: Option<&Spanned<String>>) -> Option<Capture> {
    let raw = raw?;
    match raw.as_ref().as_str() {
        "full" => Some(Capture::Full),
        "redacted" => Some(Capture::Redacted),
        "digest" => Some(Capture::Digest),
        other => {
            check.err(
                raw.span().start,
                format!("{other:?} is not a payload capture"),
                "use \"full\", \"redacted\" or \"digest\"",
            );
            None
        }
    }
}

pub(super) fn audit(
    check: &mut Check,
    raw: Option<Spanned<RawAudit>>,
    storage_dir: &Path,
    server: &ServerConfig,
    file: &Path,
) -> AuditConfig {
    let at = raw.as_ref().map_or(0, |r| r.span().start);
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let in_storage = |p: Option<&str>, default: &str| match p {
        Some(p) => relative_to(file, p),
        None => storage_dir.join(default),
    };
    let on_failure = match raw.on_failure.as_ref() {
        None => FailMode::Closed,
        Some(m) if m.as_ref() == "closed" => FailMode::Closed,
        Some(m) if m.as_ref() == "open" => FailMode::Open,
        Some(m) => {
            check.err(
                m.span().start,
                format!("on_failure = {:?} is not known", m.as_ref()),
                "use \"closed\" (refuse calls) or \"open\" (carry on, loudly)",
            );
            FailMode::Closed
        }
    };
    let payloads = raw
        .payloads
        .iter()
        .filter_map(|(name, c)| Some((name.clone(), capture(check, Some(c))?)))
        .collect();
    // By default the interval alone decides: a fixed count would sign (and keep a file for)
    // a checkpoint every so many records, 17 a second at the full pipeline's 17,000 records.
    let checkpoint_every = raw.checkpoint_every.unwrap_or(u64::MAX);
    if checkpoint_every == 0 {
        check.err(
            at,
            "audit.checkpoint_every must be at least 1",
            "sign a checkpoint every 1000 records, say",
        );
    }
    let checkpoint_interval = duration_text(check, at, raw.checkpoint_interval.as_deref(), 1);
    if checkpoint_interval.is_zero() {
        check.err(
            at,
            "audit.checkpoint_interval must be longer than zero",
            "write a duration like \"1s\"",
        );
    }
    let commit_delay = raw
        .commit_delay
        .as_deref()
        .map_or(DEFAULT_COMMIT_DELAY, |d| {
            duration_text(check, at, Some(d), 0)
        });
    if commit_delay > MAX_COMMIT_DELAY {
        check.err(
            at,
            "audit.commit_delay is longer than 10ms: every call under load would wait that long twice",
            "write a short duration like \"75us\", or \"0us\" to commit at once",
        );
    }
    // The public URL as configured (before a test's port 0 is bound), so the origin of a log
    // stays the same across restarts.
    let origin = raw.origin.unwrap_or_else(|| {
        let url = &server.public_url;
        let bare = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        format!("{bare}/audit")
    });
    AuditConfig {
        enabled: raw.enabled.unwrap_or(true),
        dir: in_storage(raw.dir.as_deref(), "audit"),
        key: in_storage(raw.key.as_deref(), "audit-signing.key"),
        origin,
        payload: capture(check, raw.payload.as_ref()).unwrap_or(Capture::Full),
        payloads,
        on_failure,
        checkpoint_every: checkpoint_every.max(1),
        checkpoint_interval,
        commit_delay,
    }
}
