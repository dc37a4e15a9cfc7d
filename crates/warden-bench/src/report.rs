//! What a run found, and the tables it is printed as.

use std::fmt::Write as _;
use std::time::Duration;

use warden_mcp::era::Era;

use crate::load::Outcome;

/// The targets, for an HTTP upstream.
pub const TARGET_ADDED_P50_US: f64 = 150.0;
pub const TARGET_ADDED_P99_US: f64 = 1000.0;
pub const TARGET_IDLE_RSS_MIB: f64 = 30.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Transport {
    Http,
    Stdio,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        }
    }
}

/// One load phase on one path, with the CPU time each process spent during it.
#[derive(Default)]
pub struct Phase {
    pub outcome: Outcome,
    pub cpu_warden: Duration,
    pub cpu_fixture: Duration,
    pub cpu_bench: Duration,
    /// CPU time of every other process on the machine during the phase: interference.
    pub cpu_others: Duration,
}

impl Phase {
    /// Adds a slice of the same phase.
    pub fn absorb(&mut self, slice: Phase) {
        self.outcome.merge(slice.outcome);
        self.cpu_warden += slice.cpu_warden;
        self.cpu_fixture += slice.cpu_fixture;
        self.cpu_bench += slice.cpu_bench;
        self.cpu_others += slice.cpu_others;
    }

    fn per_call_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.outcome.ok.max(1) as f64)
    }

    pub fn warden_us(&self) -> f64 {
        self.per_call_us(self.cpu_warden)
    }

    pub fn fixture_us(&self) -> f64 {
        self.per_call_us(self.cpu_fixture)
    }

    fn bench_us(&self) -> f64 {
        self.per_call_us(self.cpu_bench)
    }
}

/// Everything measured for one upstream transport in one era.
pub struct Scenario {
    pub transport: Transport,
    pub era: Era,
    pub clients: usize,
    pub rate: f64,
    pub direct_closed: Phase,
    pub warden_closed: Phase,
    pub direct_open: Phase,
    pub warden_open: Phase,
    pub idle_rss: u64,
    pub peak_rss: u64,
    /// Cores of the machine, to express interference as a share of it.
    pub cores: usize,
}

impl Scenario {
    pub fn name(&self) -> String {
        format!("{} {}", self.transport.as_str(), self.era.as_str())
    }

    fn added(&self, percentile: f64) -> f64 {
        self.warden_open.outcome.micros(percentile) - self.direct_open.outcome.micros(percentile)
    }

    fn ratio(&self) -> f64 {
        self.warden_closed.outcome.rps() / self.direct_closed.outcome.rps().max(1e-9)
    }

    /// The per-scenario table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let direct = match self.transport {
            Transport::Http => "direct (bench → fixture over HTTP)",
            Transport::Stdio => "direct (bench → fixture child over its stdin/stdout)",
        };
        let _ = writeln!(
            s,
            "== {} upstream, {} era; {} clients; {} ==",
            self.transport.as_str(),
            self.era.as_str(),
            self.clients,
            direct
        );
        let _ = writeln!(
            s,
            "{:<14} {:<7} {:>9} {:>8} {:>8} {:>9} {:>7} {:>11} {:>12} {:>10}",
            "mode",
            "path",
            "calls/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "errors",
            "warden µs/c",
            "fixture µs/c",
            "bench µs/c"
        );
        let closed = "closed".to_string();
        let open = format!("open {:.0}/s", self.rate);
        for (mode, path, p) in [
            (&closed, "direct", &self.direct_closed),
            (&closed, "warden", &self.warden_closed),
            (&open, "direct", &self.direct_open),
            (&open, "warden", &self.warden_open),
        ] {
            let warden = if path == "warden" {
                format!("{:.1}", p.warden_us())
            } else {
                "-".into()
            };
            let o = &p.outcome;
            let _ = writeln!(
                s,
                "{:<14} {:<7} {:>9.0} {:>8.0} {:>8.0} {:>9.0} {:>7} {:>11} {:>12.1} {:>10.1}",
                mode,
                path,
                o.rps(),
                o.micros(50.0),
                o.micros(99.0),
                o.micros(99.9),
                o.errors,
                warden,
                p.fixture_us(),
                p.bench_us()
            );
        }
        let _ = writeln!(
            s,
            "added latency (open loop): p50 {:+.0} µs, p99 {:+.0} µs, p99.9 {:+.0} µs; \
             throughput ratio (closed, warden/direct) {:.2}",
            self.added(50.0),
            self.added(99.0),
            self.added(99.9),
            self.ratio()
        );
        let _ = writeln!(
            s,
            "warden RSS: idle {:.1} MiB, peak {:.1} MiB",
            mib(self.idle_rss),
            mib(self.peak_rss)
        );
        let phases = [
            &self.direct_closed,
            &self.warden_closed,
            &self.direct_open,
            &self.warden_open,
        ];
        let others: f64 = phases.iter().map(|p| p.cpu_others.as_secs_f64()).sum();
        let wall: f64 = phases.iter().map(|p| p.outcome.elapsed.as_secs_f64()).sum();
        let _ = writeln!(
            s,
            "other processes used {:.1}% of the machine's {} cores during the measured phases",
            100.0 * others / (wall * self.cores as f64).max(1e-9),
            self.cores
        );
        for (what, p) in [
            ("direct closed", &self.direct_closed),
            ("warden closed", &self.warden_closed),
            ("direct open", &self.direct_open),
            ("warden open", &self.warden_open),
        ] {
            if let Some(e) = &p.outcome.first_error {
                let _ = writeln!(s, "first error ({what}): {e}");
            }
        }
        s
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool, applies: bool) -> &'static str {
    match (applies, ok) {
        (false, _) => "",
        (true, true) => " ok",
        (true, false) => " MISS",
    }
}

/// The summary against the targets (which are set for HTTP upstreams).
pub fn summary(scenarios: &[Scenario]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== summary; targets apply to HTTP upstreams: added p50 ≤ {TARGET_ADDED_P50_US} µs and \
         p99 ≤ {TARGET_ADDED_P99_US} µs at the fixed rate, Warden CPU/call ≤ fixture CPU/call at \
         saturation, idle RSS ≤ {TARGET_IDLE_RSS_MIB} MiB =="
    );
    let _ = writeln!(
        s,
        "{:<13} {:>14} {:>14} {:>8} {:>26} {:>14} {:>10}",
        "scenario",
        "added p50",
        "added p99",
        "ratio",
        "CPU/call warden vs fixt.",
        "idle RSS",
        "peak RSS"
    );
    for sc in scenarios {
        let applies = sc.transport == Transport::Http;
        let (p50, p99) = (sc.added(50.0), sc.added(99.0));
        let (w, f) = (sc.warden_closed.warden_us(), sc.warden_closed.fixture_us());
        let idle = mib(sc.idle_rss);
        let _ = writeln!(
            s,
            "{:<13} {:>14} {:>14} {:>8.2} {:>26} {:>14} {:>10}",
            sc.name(),
            format!(
                "{p50:+.0} µs{}",
                verdict(p50 <= TARGET_ADDED_P50_US, applies)
            ),
            format!(
                "{p99:+.0} µs{}",
                verdict(p99 <= TARGET_ADDED_P99_US, applies)
            ),
            sc.ratio(),
            format!("{w:.1} vs {f:.1} µs{}", verdict(w <= f, applies)),
            format!(
                "{idle:.1} MiB{}",
                verdict(idle <= TARGET_IDLE_RSS_MIB, applies)
            ),
            format!("{:.1} MiB", mib(sc.peak_rss)),
        );
    }
    s
}
