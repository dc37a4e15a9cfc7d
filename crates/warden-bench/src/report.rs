//! What a run found, and the tables it is printed as: per scenario every path in every load
//! shape, then one summary against the targets; what Warden's audit trail adds is
//! judged in [`audit`].

use std::fmt::Write as _;
use std::time::Duration;

use warden_mcp::era::Era;

use crate::disk::DiskWork;
use crate::load::Outcome;

mod audit;

pub use audit::AuditRun;

/// Warden's closed-loop throughput must be at least this share of nginx's.
pub const TARGET_THROUGHPUT_VS_NGINX: f64 = 0.85;
/// Warden's added p50 at one client may exceed nginx's by at most this.
pub const TARGET_P50_OVER_NGINX_US: f64 = 40.0;
/// Warden's CPU per call may be at most this multiple of the do-nothing relay's.
pub const TARGET_CPU_VS_RELAY: f64 = 2.0;
pub const TARGET_IDLE_RSS_MIB: f64 = 30.0;

/// An upstream's transport, for `--only`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Transport {
    Http,
    Stdio,
}

/// The kind of upstream a scenario runs against.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Kind {
    /// `warden-fixture --http`: plain JSON replies.
    FixtureJson,
    /// `warden-fixture --http --sse-always`: every legacy reply is a one-event SSE stream.
    FixtureSse,
    /// `rmcp-echo`: the `rmcp` crate's Streamable HTTP server (SSE replies).
    Rmcp,
    /// `warden-fixture --stdio`.
    Stdio,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::FixtureJson, Kind::FixtureSse, Kind::Rmcp, Kind::Stdio];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FixtureJson => "fixture-json",
            Kind::FixtureSse => "fixture-sse",
            Kind::Rmcp => "rmcp",
            Kind::Stdio => "stdio",
        }
    }

    pub fn transport(self) -> Transport {
        match self {
            Kind::Stdio => Transport::Stdio,
            _ => Transport::Http,
        }
    }

    /// Whether `fixture://stats` can tell how many connections the upstream accepted.
    pub fn counts_connections(self) -> bool {
        matches!(self, Kind::FixtureJson | Kind::FixtureSse)
    }
}

/// One way from the load generator to the upstream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Path {
    Direct,
    Nginx,
    /// `warden-relay`, the do-nothing proxy on Warden's stack.
    Relay,
    Warden,
    /// Warden with its audit trail on (a second process, the same config otherwise).
    WardenAudit,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Nginx => "nginx",
            Path::Relay => "relay",
            Path::Warden => "warden",
            Path::WardenAudit => "warden+audit",
        }
    }
}

/// One load phase on one path, with the CPU time each process spent during it.
#[derive(Default)]
pub struct Phase {
    pub outcome: Outcome,
    /// The proxy of the path (none for direct): Warden, nginx (master and workers) or the relay.
    pub cpu_proxy: Duration,
    pub cpu_upstream: Duration,
    pub cpu_bench: Duration,
    /// CPU time of every other process on the machine during the phase: interference.
    pub cpu_others: Duration,
    /// What the audit log's block device did during the phase (all processes' work).
    pub disk: DiskWork,
}

impl Phase {
    /// Adds a slice of the same phase.
    pub fn absorb(&mut self, slice: Phase) {
        self.outcome.merge(slice.outcome);
        self.cpu_proxy += slice.cpu_proxy;
        self.cpu_upstream += slice.cpu_upstream;
        self.cpu_bench += slice.cpu_bench;
        self.cpu_others += slice.cpu_others;
        self.disk.add(slice.disk);
    }

    fn per_call_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.outcome.ok.max(1) as f64)
    }

    pub fn proxy_us(&self) -> f64 {
        self.per_call_us(self.cpu_proxy)
    }

    /// The CPU time per call of every process on the path: the proxy, the upstream and the
    /// bench, which share the machine's cores.
    fn path_us(&self) -> f64 {
        self.per_call_us(self.cpu_proxy + self.cpu_upstream + self.cpu_bench)
    }
}

/// Everything measured on one path of a scenario.
pub struct PathResult {
    pub path: Path,
    /// Closed loop, every client.
    pub closed: Phase,
    /// Closed loop, one client: latency without a queue.
    pub single: Phase,
    /// Open loop at the fixed rate, every client.
    pub open: Phase,
    /// TCP connections the upstream accepted during this path's measured slices, when known.
    pub upstream_connections: Option<u64>,
}

/// Picks one load shape's phase out of a path's results.
type PickPhase = fn(&PathResult) -> &Phase;

/// Everything measured for one upstream kind in one era.
pub struct Scenario {
    pub kind: Kind,
    pub era: Era,
    pub clients: usize,
    pub rate: f64,
    pub paths: Vec<PathResult>,
    pub idle_rss: u64,
    pub peak_rss: u64,
    /// What the Warden with its audit trail kept, and its memory.
    pub audit: AuditRun,
    /// Cores of the machine, to express interference as a share of it.
    pub cores: usize,
}

/// What became of one scenario of the run.
pub enum Ran {
    Measured(Box<Scenario>),
    /// The scenario does not apply (said why); not a failure.
    NotApplicable(Kind, Era, String),
    Failed(Kind, Era, String),
}

fn name(kind: Kind, era: Era) -> String {
    format!("{} {}", kind.as_str(), era.as_str())
}

impl Scenario {
    pub fn name(&self) -> String {
        name(self.kind, self.era)
    }

    fn path(&self, path: Path) -> Option<&PathResult> {
        self.paths.iter().find(|p| p.path == path)
    }

    /// `path`'s percentile minus the direct one's, in µs, in the phase `pick` selects.
    fn added(&self, path: Path, pick: PickPhase, percentile: f64) -> Option<f64> {
        let direct = pick(self.path(Path::Direct)?).outcome.micros(percentile);
        Some(pick(self.path(path)?).outcome.micros(percentile) - direct)
    }

    fn closed_rps(&self, path: Path) -> Option<f64> {
        Some(self.path(path)?.closed.outcome.rps())
    }

    fn closed_cpu(&self, path: Path) -> Option<f64> {
        Some(self.path(path)?.closed.proxy_us())
    }

    /// The per-scenario table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let direct = match self.kind.transport() {
            Transport::Http => "direct = bench → upstream over HTTP",
            Transport::Stdio => "direct = bench → fixture child over its stdin/stdout",
        };
        let _ = writeln!(
            s,
            "== {} upstream, {} era; {} clients; {direct} ==",
            self.kind.as_str(),
            self.era.as_str(),
            self.clients,
        );
        let _ = writeln!(
            s,
            "{:<12} {:<12} {:>9} {:>8} {:>8} {:>9} {:>7} {:>11} {:>13} {:>10}",
            "mode",
            "path",
            "calls/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "errors",
            "proxy µs/c",
            "upstream µs/c",
            "bench µs/c"
        );
        let closed = format!("closed {}", self.clients);
        let open = format!("open {:.0}/s", self.rate);
        let shapes: [(&str, PickPhase); 3] = [
            (&closed, |p| &p.closed),
            ("closed 1", |p| &p.single),
            (&open, |p| &p.open),
        ];
        for (mode, pick) in shapes {
            for p in &self.paths {
                let phase = pick(p);
                let o = &phase.outcome;
                let proxy = if p.path == Path::Direct {
                    "-".into()
                } else {
                    format!("{:.1}", phase.proxy_us())
                };
                let _ = writeln!(
                    s,
                    "{:<12} {:<12} {:>9.0} {:>8.0} {:>8.0} {:>9.0} {:>7} {:>11} {:>13.1} {:>10.1}",
                    mode,
                    p.path.as_str(),
                    o.rps(),
                    o.micros(50.0),
                    o.micros(99.0),
                    o.micros(99.9),
                    o.errors,
                    proxy,
                    phase.per_call_us(phase.cpu_upstream),
                    phase.per_call_us(phase.cpu_bench)
                );
            }
        }
        for p in self.paths.iter().filter(|p| p.path != Path::Direct) {
            let path = p.path;
            let _ = writeln!(
                s,
                "{:<12} vs direct: added p50 at 1 client {:+.0} µs; open loop added p50 {:+.0} µs, \
                 p99 {:+.0} µs; closed throughput ratio {:.2}",
                path.as_str(),
                self.added(path, |p| &p.single, 50.0).unwrap_or(f64::NAN),
                self.added(path, |p| &p.open, 50.0).unwrap_or(f64::NAN),
                self.added(path, |p| &p.open, 99.0).unwrap_or(f64::NAN),
                p.closed.outcome.rps() / self.closed_rps(Path::Direct).unwrap_or(1.0).max(1e-9),
            );
        }
        let counted: Vec<String> = self
            .paths
            .iter()
            .filter_map(|p| {
                let n = p.upstream_connections?;
                let calls = p.closed.outcome.ok + p.single.outcome.ok + p.open.outcome.ok;
                Some(format!("{} {n} for {calls} calls", p.path.as_str()))
            })
            .collect();
        if !counted.is_empty() {
            let _ = writeln!(
                s,
                "upstream TCP connections opened while measuring: {}",
                counted.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "warden RSS: idle {:.1} MiB, peak {:.1} MiB",
            mib(self.idle_rss),
            mib(self.peak_rss)
        );
        s.push_str(&self.audit_lines());
        let phases = self
            .paths
            .iter()
            .flat_map(|p| [&p.closed, &p.single, &p.open]);
        let (others, wall) = phases.fold((0.0, 0.0), |(o, w), p| {
            (
                o + p.cpu_others.as_secs_f64(),
                w + p.outcome.elapsed.as_secs_f64(),
            )
        });
        let _ = writeln!(
            s,
            "other processes used {:.1}% of the machine's {} cores during the measured phases",
            100.0 * others / (wall * self.cores as f64).max(1e-9),
            self.cores
        );
        for p in &self.paths {
            for (what, phase) in [
                ("closed", &p.closed),
                ("closed 1", &p.single),
                ("open", &p.open),
            ] {
                if let Some(e) = &phase.outcome.first_error {
                    let _ = writeln!(s, "first error ({} {what}): {e}", p.path.as_str());
                }
            }
        }
        s
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISS" }
}

/// The summary against the targets (HTTP upstreams, measured against the floors).
pub fn summary(ran: &[Ran]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== summary; targets (HTTP upstreams): closed-loop throughput ≥ {:.0} % of nginx's; added \
         p50 at 1 client ≤ nginx's + {TARGET_P50_OVER_NGINX_US} µs; CPU/call ≤ {TARGET_CPU_VS_RELAY}× \
         the do-nothing relay's; idle RSS ≤ {TARGET_IDLE_RSS_MIB} MiB ==",
        TARGET_THROUGHPUT_VS_NGINX * 100.0
    );
    let _ = writeln!(
        s,
        "{:<20} {:>26} {:>26} {:>27} {:>13} {:>18}",
        "scenario",
        "calls/s warden/nginx",
        "added p50 1 cl. w vs ngx",
        "CPU/call warden vs relay",
        "idle RSS",
        "open +p50/+p99 µs"
    );
    for r in ran {
        let sc = match r {
            Ran::Measured(sc) => sc,
            Ran::NotApplicable(kind, era, why) => {
                let _ = writeln!(s, "{:<20} not applicable: {why}", name(*kind, *era));
                continue;
            }
            Ran::Failed(kind, era, why) => {
                let _ = writeln!(s, "{:<20} FAILED: {why}", name(*kind, *era));
                continue;
            }
        };
        let throughput = match (sc.closed_rps(Path::Warden), sc.closed_rps(Path::Nginx)) {
            (Some(w), Some(n)) => {
                let ratio = w / n.max(1e-9);
                format!(
                    "{w:.0}/{n:.0} = {ratio:.2} {}",
                    verdict(ratio >= TARGET_THROUGHPUT_VS_NGINX)
                )
            }
            _ => "n/a".into(),
        };
        let single = |path| sc.added(path, |p| &p.single, 50.0);
        let latency = match (single(Path::Warden), single(Path::Nginx)) {
            (Some(w), Some(n)) => format!(
                "{w:+.0} vs {n:+.0} µs {}",
                verdict(w <= n + TARGET_P50_OVER_NGINX_US)
            ),
            _ => "n/a".into(),
        };
        let cpu = match (sc.closed_cpu(Path::Warden), sc.closed_cpu(Path::Relay)) {
            (Some(w), Some(r)) => format!(
                "{w:.1} vs {r:.1} µs = {:.2}× {}",
                w / r.max(1e-9),
                verdict(w <= TARGET_CPU_VS_RELAY * r)
            ),
            _ => "n/a".into(),
        };
        let idle = mib(sc.idle_rss);
        let open = format!(
            "{:+.0}/{:+.0}",
            sc.added(Path::Warden, |p| &p.open, 50.0)
                .unwrap_or(f64::NAN),
            sc.added(Path::Warden, |p| &p.open, 99.0)
                .unwrap_or(f64::NAN)
        );
        let _ = writeln!(
            s,
            "{:<20} {:>26} {:>26} {:>27} {:>13} {:>18}",
            sc.name(),
            throughput,
            latency,
            cpu,
            format!("{idle:.1} MiB {}", verdict(idle <= TARGET_IDLE_RSS_MIB)),
            open
        );
    }
    let _ = writeln!(
        s,
        "nginx and the relay are era-agnostic: they pass the same bytes in both eras. stdio \
         scenarios have no floor (n/a); their added latency includes the HTTP hop to Warden."
    );
    s.push_str(&budget(ran));
    s.push_str(&audit::summary(ran));
    s
}

/// What the throughput target asks of Warden's CPU. In the closed loop the bench, the upstream
/// and the proxy share the machine's cores, so the calls/s of a path follow the CPU time per
/// call of all three together; from nginx's path and Warden's upstream and bench shares this
/// derives how much CPU per call Warden itself may use to reach the target.
fn budget(ran: &[Ran]) -> String {
    let mut rows = String::new();
    for r in ran {
        let Ran::Measured(sc) = r else { continue };
        let (Some(w), Some(n)) = (sc.path(Path::Warden), sc.path(Path::Nginx)) else {
            continue;
        };
        let (w_path, n_path) = (w.closed.path_us(), n.closed.path_us());
        let others = w_path - w.closed.proxy_us();
        let allowed = n_path / TARGET_THROUGHPUT_VS_NGINX - others;
        let relay = sc
            .closed_cpu(Path::Relay)
            .map(|r| format!(" = {:.2}× the relay's", allowed / r.max(1e-9)))
            .unwrap_or_default();
        // The floor of Warden's own stack: what a proxy on tokio and hyper that does nothing
        // reaches against nginx in the same run.
        let floor = sc
            .path(Path::Relay)
            .map(|r| {
                format!(
                    "; the relay reaches {:.2} of nginx's calls/s",
                    r.closed.outcome.rps() / n.closed.outcome.rps().max(1e-9)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            rows,
            "{:<20} whole path nginx {n_path:.1} µs, warden {w_path:.1} µs per call: predicts \
             warden/nginx {:.2} (measured {:.2}); the target needs warden's path ≤ {:.1} µs, \
             Warden itself ≤ {allowed:.1} µs per call{relay} (now {:.1}){floor}",
            sc.name(),
            n_path / w_path.max(1e-9),
            w.closed.outcome.rps() / n.closed.outcome.rps().max(1e-9),
            n_path / TARGET_THROUGHPUT_VS_NGINX,
            w.closed.proxy_us(),
        );
    }
    if rows.is_empty() {
        // Without nginx (`--no-floors`) there is nothing to derive.
        return rows;
    }
    format!(
        "== what {:.0} % of nginx's throughput asks of Warden's CPU (closed loop, every client; the \
         proxy, the upstream and the bench share the cores, so calls/s follow their CPU per call \
         together) ==\n{rows}",
        TARGET_THROUGHPUT_VS_NGINX * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed-loop phase of `calls` calls in one second, with the CPU time of each process.
    fn closed(calls: u64, proxy_us: u64, upstream_us: u64, bench_us: u64) -> PathResult {
        let mut closed = Phase::default();
        closed.outcome.ok = calls;
        closed.outcome.elapsed = Duration::from_secs(1);
        closed.cpu_proxy = Duration::from_micros(calls * proxy_us);
        closed.cpu_upstream = Duration::from_micros(calls * upstream_us);
        closed.cpu_bench = Duration::from_micros(calls * bench_us);
        PathResult {
            path: Path::Direct,
            closed,
            single: Phase::default(),
            open: Phase::default(),
            upstream_connections: None,
        }
    }

    #[test]
    fn the_throughput_target_is_turned_into_a_cpu_budget_for_warden() {
        let on = |path, r: PathResult| PathResult { path, ..r };
        let scenario = |paths| Scenario {
            kind: Kind::FixtureJson,
            era: Era::Legacy,
            clients: 16,
            rate: 2000.0,
            paths,
            idle_rss: 0,
            peak_rss: 0,
            audit: AuditRun {
                idle_rss: 0,
                peak_rss: 0,
                file_system: String::new(),
                device: None,
                log_bytes: 0,
                log_files: 0,
                durable_write: None,
            },
            cores: 2,
        };
        let sc = scenario(vec![
            on(Path::Nginx, closed(30_000, 20, 20, 11)),
            on(Path::Relay, closed(28_000, 22, 20, 11)),
            on(Path::Warden, closed(20_000, 44, 24, 15)),
        ]);
        let text = budget(&[Ran::Measured(Box::new(sc))]);
        // nginx's path 51 µs, Warden's 83 µs (39 of it the upstream's and the bench's):
        // 51 / 0.85 = 60 µs for the whole path leaves Warden 21 µs.
        assert!(
            text.contains("whole path nginx 51.0 µs, warden 83.0 µs per call: predicts warden/nginx 0.61 (measured 0.67)"),
            "{text}"
        );
        assert!(
            text.contains("warden's path ≤ 60.0 µs, Warden itself ≤ 21.0 µs per call = 0.95× the relay's (now 44.0); the relay reaches 0.93 of nginx's calls/s"),
            "{text}"
        );
        assert!(
            text.starts_with("== what 85 % of nginx's throughput asks"),
            "{text}"
        );
        // Without nginx (`--no-floors`) there is no budget, not even its heading.
        let no_floors = scenario(vec![on(Path::Warden, closed(20_000, 44, 24, 15))]);
        assert_eq!(budget(&[Ran::Measured(Box::new(no_floors))]), "");
    }
}
