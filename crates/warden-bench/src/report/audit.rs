//! What Warden's audit trail adds to a call: Warden with its trail against Warden without, in
//! the same scenario, and the target for it.

use std::fmt::Write as _;

use super::{Path, Phase, PickPhase, Ran, Scenario, mib, name, verdict};

/// Warden's audit trail may add at most this to the p50 of a call (warden+audit − warden) …
pub const TARGET_AUDIT_P50_US: f64 = 300.0;
/// … in the closed loop with this many clients.
pub const TARGET_AUDIT_CLIENTS: usize = 16;

/// The Warden with its audit trail: its memory, and the log it wrote during the scenario.
pub struct AuditRun {
    pub idle_rss: u64,
    pub peak_rss: u64,
    /// The file system of the log (`ext4` …): `fdatasync` on a memory file system is free.
    pub file_system: String,
    /// Its block device in `/proc/diskstats`, when it is on one.
    pub device: Option<String>,
    /// Bytes and files in the log's directory at the end (warm-up and probe calls included).
    pub log_bytes: u64,
    pub log_files: u64,
    /// One durable record on the log's disk, idle ([`crate::disk::durable_write`]).
    pub durable_write: Option<crate::disk::DurableWrite>,
}

impl Phase {
    fn per_call(&self, n: u64) -> f64 {
        n as f64 / (self.outcome.ok.max(1) as f64)
    }

    /// The disk's work per call: flushes, KiB written, and the mean time of a flush in ms.
    fn disk_per_call(&self) -> String {
        let d = &self.disk;
        format!(
            "{:.2} flushes ({:.2} ms each), {:.1} KiB written",
            self.per_call(d.flushes),
            d.flush_ms as f64 / (d.flushes.max(1) as f64),
            self.per_call(d.bytes_written) / 1024.0
        )
    }
}

impl Scenario {
    /// `path`'s percentile in µs, in the phase `pick` selects.
    fn micros(&self, path: Path, pick: PickPhase, percentile: f64) -> Option<f64> {
        Some(pick(self.path(path)?).outcome.micros(percentile))
    }

    /// What the audit trail adds to the p50 in the phase `pick` selects: warden+audit − warden.
    fn audit_added(&self, pick: PickPhase) -> Option<f64> {
        Some(self.micros(Path::WardenAudit, pick, 50.0)? - self.micros(Path::Warden, pick, 50.0)?)
    }

    /// The audit target's verdict, judged only at the number of clients it names.
    fn audit_verdict(&self) -> String {
        match self.audit_added(|p| &p.closed) {
            _ if self.clients != TARGET_AUDIT_CLIENTS => {
                format!("n/a (judged at {TARGET_AUDIT_CLIENTS} clients)")
            }
            Some(added) => format!("{} ({added:+.0} µs)", verdict(added <= TARGET_AUDIT_P50_US)),
            None => "n/a".into(),
        }
    }

    /// Warden with its audit trail against Warden without: latency, CPU, memory, the log.
    pub(super) fn audit_lines(&self) -> String {
        let mut s = String::new();
        let us = |path, pick: PickPhase, percentile| {
            self.micros(path, pick, percentile).unwrap_or(f64::NAN)
        };
        let shapes: [(String, PickPhase); 2] = [
            (format!("closed {}", self.clients), |p| &p.closed),
            ("closed 1".into(), |p| &p.single),
        ];
        for (mode, pick) in shapes {
            let _ = writeln!(
                s,
                "warden+audit vs warden, {mode}: p50 {:.0} vs {:.0} µs, p99 {:.0} vs {:.0} µs; \
                 audit adds {:+.0} µs at p50",
                us(Path::WardenAudit, pick, 50.0),
                us(Path::Warden, pick, 50.0),
                us(Path::WardenAudit, pick, 99.0),
                us(Path::Warden, pick, 99.0),
                self.audit_added(pick).unwrap_or(f64::NAN),
            );
        }
        let cpu = |path| self.closed_cpu(path).unwrap_or(f64::NAN);
        let a = &self.audit;
        let _ = writeln!(
            s,
            "warden+audit: CPU/call {:.1} vs {:.1} µs ({:+.1} µs, closed {}); RSS idle {:.1} MiB, \
             peak {:.1} MiB; audit log {:.1} MiB in {} files on {}",
            cpu(Path::WardenAudit),
            cpu(Path::Warden),
            cpu(Path::WardenAudit) - cpu(Path::Warden),
            self.clients,
            mib(a.idle_rss),
            mib(a.peak_rss),
            mib(a.log_bytes),
            a.log_files,
            a.file_system,
        );
        if let (Some(device), Some(audited), Some(warden)) = (
            &a.device,
            self.path(Path::WardenAudit),
            self.path(Path::Warden),
        ) {
            let _ = writeln!(
                s,
                "disk {device} per call, closed {}: warden+audit {}; warden {} (the whole \
                 device's work: other processes' too)",
                self.clients,
                audited.closed.disk_per_call(),
                warden.closed.disk_per_call(),
            );
        }
        if let Some(disk) = a.durable_write {
            let _ = writeln!(
                s,
                "this disk, idle: {disk}; a call waits for two in series, so audit adds at \
                 least {:.0} µs at p50 here, before any queueing",
                2.0 * disk.p50
            );
        }
        let _ = writeln!(
            s,
            "audit adds ≤ {TARGET_AUDIT_P50_US:.0} µs p50 at {TARGET_AUDIT_CLIENTS} clients: {}",
            self.audit_verdict()
        );
        s
    }
}

/// The summary of what the audit trail adds, against its target (every scenario, stdio too).
pub(super) fn summary(ran: &[Ran]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n== audit; target: audit adds ≤ {TARGET_AUDIT_P50_US:.0} µs p50 at {TARGET_AUDIT_CLIENTS} \
         clients (closed loop, warden+audit p50 − warden p50) =="
    );
    let _ = writeln!(
        s,
        "{:<20} {:>22} {:>22} {:>20} {:>28} {:>18}",
        "scenario",
        "w+audit closed p50/p99",
        "w+audit 1 cl. p50/p99",
        "audit +p50 all/1 cl.",
        "CPU/call w+audit vs warden",
        "target"
    );
    for r in ran {
        let sc = match r {
            Ran::Measured(sc) => sc,
            Ran::NotApplicable(kind, era, _) | Ran::Failed(kind, era, _) => {
                let _ = writeln!(s, "{:<20} not measured (see above)", name(*kind, *era));
                continue;
            }
        };
        let us = |pick: PickPhase, percentile| {
            sc.micros(Path::WardenAudit, pick, percentile)
                .unwrap_or(f64::NAN)
        };
        let pair = |pick: PickPhase| format!("{:.0}/{:.0} µs", us(pick, 50.0), us(pick, 99.0));
        let added = format!(
            "{:+.0}/{:+.0} µs",
            sc.audit_added(|p| &p.closed).unwrap_or(f64::NAN),
            sc.audit_added(|p| &p.single).unwrap_or(f64::NAN)
        );
        let cpu = match (
            sc.closed_cpu(Path::WardenAudit),
            sc.closed_cpu(Path::Warden),
        ) {
            (Some(a), Some(w)) => format!("{a:.1} vs {w:.1} µs ({:+.1})", a - w),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            s,
            "{:<20} {:>22} {:>22} {:>20} {:>28} {:>18}",
            sc.name(),
            pair(|p| &p.closed),
            pair(|p| &p.single),
            added,
            cpu,
            sc.audit_verdict()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use warden_mcp::era::Era;

    use super::*;
    use crate::report::{self, Kind, PathResult};

    /// A phase whose every call took `us` microseconds.
    fn phase(us: u64) -> Phase {
        let mut phase = Phase::default();
        for _ in 0..100 {
            phase.outcome.latency.record(us * 1000).unwrap();
        }
        phase.outcome.ok = 100;
        phase.outcome.elapsed = Duration::from_secs(1);
        phase.cpu_proxy = Duration::from_micros(100 * us / 10);
        phase
    }

    fn path(path: Path, closed_us: u64, single_us: u64) -> PathResult {
        PathResult {
            path,
            closed: phase(closed_us),
            single: phase(single_us),
            open: phase(single_us),
            upstream_connections: None,
        }
    }

    fn scenario(clients: usize, warden_us: u64, audited_us: u64) -> Scenario {
        Scenario {
            kind: Kind::FixtureJson,
            era: Era::Modern,
            clients,
            rate: 2000.0,
            paths: vec![
                path(Path::Direct, 400, 100),
                path(Path::Warden, warden_us, 200),
                path(Path::WardenAudit, audited_us, 450),
            ],
            idle_rss: 20 << 20,
            peak_rss: 21 << 20,
            audit: AuditRun {
                idle_rss: 22 << 20,
                peak_rss: 23 << 20,
                file_system: "ext4".into(),
                device: None,
                log_bytes: 5 << 20,
                log_files: 3,
                durable_write: Some(crate::disk::DurableWrite {
                    p50: 150.0,
                    p90: 210.0,
                    p99: 400.0,
                    max: 900.0,
                }),
            },
            cores: 2,
        }
    }

    #[test]
    fn the_audit_target_is_what_audit_adds_to_warden_at_16_clients() {
        let met = scenario(16, 600, 880);
        let table = met.table();
        assert!(
            table.contains("audit adds ≤ 300 µs p50 at 16 clients: ok (+280 µs)"),
            "{table}"
        );
        assert!(table.contains("closed 1: p50 450 vs 200 µs"), "{table}");
        assert!(table.contains("on ext4"), "{table}");
        assert!(
            table.contains("p50 150 µs, p90 210 µs, p99 400 µs, max 900 µs; a call waits for two in series, so audit adds at least 300 µs"),
            "{table}"
        );
        let missed = scenario(16, 600, 1000);
        assert!(missed.table().contains("at 16 clients: MISS (+400 µs)"));
        let elsewhere = scenario(4, 600, 1000);
        assert!(elsewhere.table().contains("n/a (judged at 16 clients)"));
    }

    #[test]
    fn the_summary_has_a_row_for_every_scenario_in_the_audit_block() {
        let ran = [
            Ran::Measured(Box::new(scenario(16, 600, 880))),
            Ran::NotApplicable(Kind::FixtureSse, Era::Modern, "legacy only".into()),
        ];
        let summary = report::summary(&ran);
        let audit = summary.split("== audit;").nth(1).expect("an audit block");
        assert!(audit.contains("+280/+250 µs"), "{audit}");
        assert!(
            audit.contains("fixture-sse modern   not measured"),
            "{audit}"
        );
        // The existing targets are still judged above it.
        assert!(summary.contains("calls/s warden/nginx"));
    }
}
