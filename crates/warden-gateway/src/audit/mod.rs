//! The audit trail as the gateway keeps it: one [`warden_audit::Log`] per data directory, fed by
//! the pipeline's audit stages ([`crate::stage::audit`]), the edge and identity refusals, consent
//! and grants, and the admin actions. What a record holds is built in [`records`].
//!
//! Audit comes before effect: a call's request record is durable before the call is forwarded,
//! and its response record before the client gets the final message. When the log cannot be
//! written, calls are refused ([`FailMode::Closed`], the default); the configured fail-open mode
//! lets them through but logs every miss, counts it in `warden_audit_missed` and turns `/readyz`
//! into an error that says so.
//!
//! What it must never do: put a bearer token, an API key or a vault secret into a record (the
//! records are built from the principal and the call, never from headers).

pub mod http;
pub mod records;
mod signing;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use warden_audit::{Kind, Linger, Log, Options, Record};

use crate::call::Refusal;
use crate::config::{AuditConfig, Capture, Config, FailMode};

pub use signing::{create_key, load_or_create_key, verifier_key};

/// Why the audit trail could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log in {dir} cannot be opened: {source}")]
    Open {
        dir: String,
        source: warden_audit::Error,
    },
    #[error(
        "the audit log in {0} is in use by another Warden (one writer per log: give each gateway its own audit.dir)"
    )]
    Locked(String),
    #[error("the audit signing key {path}: {why}")]
    Key { path: String, why: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The gateway's audit trail; off when the config says `audit.enabled = false`.
pub struct Audit {
    log: Option<Arc<Log>>,
    config: AuditConfig,
    /// Records made durable, and records that could not be and were let go (fail-open mode).
    pub written: Counter,
    pub missed: Counter,
    /// Held for the gateway's life: one writer per log directory.
    _lock: Option<File>,
    /// Disk faults for tests; never armed in a gateway that serves.
    faults: warden_audit::FaultInjector,
    /// Calls' audit ids are this prefix (new at every start) and a counter.
    prefix: String,
    calls: AtomicU64,
}

/// The calls in flight at which the log counts as busy. The records of that many calls are
/// about to come (each call makes two, a request's and a response's), so the writer waiting a
/// moment carries several with one fdatasync. Fewer than this (a lone call commits its own
/// records, see [`Audit::write_alone`]; the bench's open loop of 2,000 calls a second has one
/// to three in flight) and the wait would only add to the calls' latency.
pub const BUSY_CALLS: i64 = 4;

/// The writer's wait for company: `delay` while `BUSY_CALLS` or more calls are in flight.
fn linger(delay: Duration, in_flight: &Gauge) -> Option<Linger> {
    if delay.is_zero() {
        return None;
    }
    let in_flight = in_flight.clone();
    Some(Linger {
        delay,
        busy: Arc::new(move || in_flight.get() >= BUSY_CALLS),
    })
}

impl Audit {
    /// Opens the log of `config.audit`, recovering it after a crash, with the signing key
    /// (created when missing). `in_flight` is the gateway's count of calls in flight: while it
    /// is at [`BUSY_CALLS`] or more, the log's writer waits `commit_delay` before a commit.
    pub fn open(config: &Config, in_flight: &Gauge) -> Result<Audit, AuditError> {
        let audit = &config.audit;
        if !audit.enabled {
            return Ok(Audit::off(audit.clone()));
        }
        std::fs::create_dir_all(&audit.dir)?;
        let lock = File::create(audit.dir.join("writer.lock"))?;
        if lock.try_lock().is_err() {
            return Err(AuditError::Locked(audit.dir.display().to_string()));
        }
        let signer = load_or_create_key(&audit.key, &audit.origin)?;
        // The verifier key, public, beside the signing key: what auditors are given.
        let vkey = audit.key.with_extension("vkey");
        if std::fs::read_to_string(&vkey)
            .ok()
            .as_deref()
            .map(str::trim)
            != Some(&signer.verifier_key())
        {
            std::fs::write(&vkey, format!("{}\n", signer.verifier_key()))?;
        }
        let faults = warden_audit::FaultInjector::new();
        let options = Options {
            checkpoint_every: audit.checkpoint_every,
            checkpoint_interval: audit.checkpoint_interval,
            faults: faults.clone(),
            linger: linger(audit.commit_delay, in_flight),
            ..Options::default()
        };
        let log = Log::open(&audit.dir, signer, &audit.origin, options).map_err(|source| {
            AuditError::Open {
                dir: audit.dir.display().to_string(),
                source,
            }
        })?;
        tracing::info!(dir = %audit.dir.display(), records = log.size(), "audit log open");
        Ok(Audit {
            log: Some(Arc::new(log)),
            _lock: Some(lock),
            faults,
            prefix: format!("{:08x}", rand::random::<u32>()),
            ..Audit::off(audit.clone())
        })
    }

    fn off(config: AuditConfig) -> Audit {
        Audit {
            log: None,
            config,
            written: Counter::default(),
            missed: Counter::default(),
            _lock: None,
            faults: warden_audit::FaultInjector::new(),
            prefix: String::new(),
            calls: AtomicU64::new(0),
        }
    }

    pub fn is_on(&self) -> bool {
        self.log.is_some()
    }

    /// A new id linking the records of one call (empty when the trail is off).
    pub fn call_id(&self) -> String {
        if self.log.is_none() {
            return String::new();
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }

    /// Makes the log's disk fail on demand: for tests of the failure modes.
    pub fn faults(&self) -> &warden_audit::FaultInjector {
        &self.faults
    }

    pub fn log(&self) -> Option<&Arc<Log>> {
        self.log.as_ref()
    }

    /// How much of the payloads of a call to `tool` of `upstream` records keep.
    pub fn capture(&self, upstream: Option<&str>, tool: Option<&str>) -> Capture {
        self.config.capture(upstream, tool)
    }

    /// Appends `record` and waits until it is durable, with the writer thread's next group
    /// commit. In fail-closed mode a record that cannot be written refuses the call; in
    /// fail-open mode the miss is logged and counted.
    pub async fn write(&self, record: Record) -> Result<(), Refusal> {
        let Some(log) = &self.log else { return Ok(()) };
        let kind = record.kind;
        self.settle(kind, log.append(record).await)
    }

    /// Like [`Audit::write`], for the record of a call that is the only one in flight: when the
    /// log is idle the record is written and synced on this worker thread ([`Log::append_now`])
    /// rather than handed to the writer thread and back. That blocks the worker for one
    /// fdatasync, which costs nothing when no other call is there to use it, and saves the
    /// thread hand-offs that are most of a durable point's latency beyond the disk's own time.
    pub async fn write_alone(&self, record: Record) -> Result<(), Refusal> {
        let Some(log) = &self.log else { return Ok(()) };
        let kind = record.kind;
        self.settle(kind, log.append_now(record).await)
    }

    fn settle(&self, kind: Kind, outcome: Result<u64, warden_audit::Error>) -> Result<(), Refusal> {
        match outcome {
            Ok(_) => {
                self.written.inc();
                Ok(())
            }
            Err(e) => self.missed(kind, &e),
        }
    }

    /// Appends `record` without waiting: for events that have no effect to hold back (a
    /// refusal at the edge) or that are noticed where nothing can wait (a call's end after its
    /// client went away). It is durable with the next group commit.
    pub fn write_later(&self, record: Record) {
        let Some(log) = &self.log else { return };
        let kind = record.kind;
        // Queued now; the group commit writes it whether or not anyone waits. Only a failure
        // needs a word, where there is a runtime to wait for it.
        let pending = log.append(record);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            std::mem::drop(rt.spawn(async move {
                if let Err(e) = pending.await {
                    tracing::error!(?kind, error = %e, "audit record lost");
                }
            }));
        }
    }

    fn missed(&self, kind: Kind, e: &warden_audit::Error) -> Result<(), Refusal> {
        match self.config.on_failure {
            FailMode::Closed => {
                tracing::error!(?kind, error = %e, "audit log cannot be written: call refused");
                Err(Refusal::AuditUnavailable(e.to_string()))
            }
            FailMode::Open => {
                let n = self.missed.inc() + 1;
                tracing::error!(?kind, error = %e, missed = n, "audit log cannot be written: call goes on unrecorded (audit.on_failure = \"open\")");
                Ok(())
            }
        }
    }

    /// Records let go so far (fail-open mode).
    pub fn missed_count(&self) -> u64 {
        self.missed.get()
    }

    /// For `/readyz`: `Err` when calls are refused because the trail cannot take records
    /// (fail-closed), `Ok(Some(warning))` when they go on unrecorded (fail-open).
    pub fn readiness(&self) -> Result<Option<String>, String> {
        match &self.log {
            Some(log) if !log.is_healthy() => match self.config.on_failure {
                FailMode::Closed => {
                    Err("not ready: the audit log cannot be written, so calls are refused".into())
                }
                FailMode::Open => Ok(Some(format!(
                    "ready, but the audit log cannot be written: calls go on UNRECORDED (audit.on_failure = \"open\"); {} records missed",
                    self.missed_count()
                ))),
            },
            _ => Ok(None),
        }
    }

    /// Moves the records the CLI queued in the store's outbox into the log: each one durable
    /// before it leaves the outbox, so a crash in between records it twice, never not at all.
    pub async fn drain_outbox(&self, store: &dyn crate::store::Store) {
        let Some(log) = &self.log else { return };
        let drained = async {
            loop {
                let err = |e: crate::store::StoreError| e.to_string();
                let mut tx = store.begin().await.map_err(err)?;
                let queued = tx.queued_audit(OUTBOX_BATCH).await.map_err(err)?;
                drop(tx);
                let Some(&(last, _)) = queued.last() else {
                    return Ok::<_, String>(());
                };
                for (id, text) in &queued {
                    let record = Record::from_bytes(text.as_bytes()).unwrap_or_else(|e| {
                        // Kept as evidence, marked as what it is.
                        let mut r = record(Kind::Error);
                        r.detail = serde_json::json!({ "outbox": id, "unreadable": e.to_string(), "text": text });
                        r
                    });
                    log.append(record).await.map_err(|e| e.to_string())?;
                }
                let mut tx = store.begin().await.map_err(err)?;
                tx.unqueue_audit(last).await.map_err(err)?;
                tx.commit().await.map_err(err)?;
                if queued.len() < OUTBOX_BATCH as usize {
                    return Ok(());
                }
            }
        };
        if let Err(e) = drained.await {
            tracing::warn!(error = %e, "the CLI's audit records wait in the store's outbox");
        }
    }

    /// Signs a last checkpoint over everything written, when the gateway stops.
    pub fn close(&self) {
        if let Some(log) = &self.log
            && let Err(e) = log.checkpoint_now()
        {
            tracing::warn!(error = %e, "no final audit checkpoint");
        }
    }
}

/// Now, as records write it (RFC 3339, UTC, milliseconds).
pub fn now_rfc3339() -> String {
    warden_audit::rfc3339_millis(std::time::SystemTime::now())
}

/// Records moved from the store's outbox per round trip.
const OUTBOX_BATCH: i64 = 100;

/// A record of `kind` stamped now.
pub fn record(kind: Kind) -> Record {
    Record::new(kind, now_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_lingers_only_with_a_delay_and_busy_calls_in_flight() {
        let in_flight = Gauge::default();
        assert!(linger(Duration::ZERO, &in_flight).is_none());
        let lingering = linger(Duration::from_micros(75), &in_flight).unwrap();
        assert_eq!(lingering.delay, Duration::from_micros(75));
        for (calls, busy) in [
            (0, false),
            (1, false),
            (BUSY_CALLS - 1, false),
            (BUSY_CALLS, true),
        ] {
            in_flight.set(calls);
            assert_eq!((lingering.busy)(), busy, "{calls} calls in flight");
        }
        in_flight.set(BUSY_CALLS + 12);
        assert!((lingering.busy)());
    }
}
