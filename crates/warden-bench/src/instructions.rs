//! `warden-bench --instructions`: the instructions Warden executes per call, counted by
//! callgrind instead of timed. A count does not move with what else the machine does, so it
//! tells a change of a few per cent apart on a VM whose timings drift by a third between runs.
//!
//! Warden runs under `valgrind --tool=callgrind` (instrumentation off while it starts), in front
//! of the fixture over HTTP with the bench's configuration, audit off. One client on one
//! kept-alive connection makes unmeasured calls, the counters are zeroed
//! (`callgrind_control --zero`), it makes the measured calls, and the counters are dumped
//! (`callgrind_control --dump`): the dump's total over the measured calls is the figure. It
//! counts user space only, every thread of Warden (the kernel's side of a call is not in it).
//!
//! Rows: the bench's echo with DLP off (the core path); a call of 10 KiB each way with DLP off;
//! and DLP's share of such a call (DLP on for results minus off) for the three texts of
//! `--dlp`. With `--audit`, instead: the audit trail's share (a Warden with the durable trail on
//! minus one with it off, DLP off in both) of the echo and of a call of 1 KiB each way, the full
//! pipeline's size. With `--full`, instead: the full pipeline of `--full` with a call of 1 KiB
//! each way, the same less one stage at a time, and the core path, each through its own Warden
//! (a stage's share is the full count less the count without it). One client at a time has its
//! call alone in flight, so each record is committed on the call's own thread
//! (`Log::append_now`); what the log's writer thread adds under load (hand-offs, group commit)
//! is not in these counts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::process::Command;
use warden_mcp::era::Era;

use crate::client::Caller;
use crate::procs::{self, Audit, Service, Upstream};
use crate::{Binaries, Settings, dlp, full, wire};

/// Calls made before the counters are zeroed: connections, caches and lazy DFAs warmed up.
const WARM_CALLS: usize = 200;
/// How long Warden may take to listen under valgrind (it starts many times slower).
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long a dump may take to appear.
const DUMP_LIMIT: Duration = Duration::from_secs(60);

/// One measured row: its label, and the text echoed (the bench's echo text for `None`, else
/// the `--dlp` text with personal data on one line in `every`).
struct Row {
    what: &'static str,
    every: Option<usize>,
}

const ROWS: [Row; 4] = [
    Row {
        what: "echo",
        every: None,
    },
    Row {
        what: "10 KiB, no findings",
        every: Some(0),
    },
    Row {
        what: "10 KiB, 1 line in 32",
        every: Some(32),
    },
    Row {
        what: "10 KiB, 1 line in 8",
        every: Some(8),
    },
];

/// What `--instructions` counts, and what it keeps.
pub struct Counting {
    /// The calls counted per row.
    pub calls: usize,
    /// The echo row alone.
    pub echo_only: bool,
    /// The audit trail's share instead of the DLP rows.
    pub audit: bool,
    /// The full pipeline, and each stage's share of it, instead of the DLP rows.
    pub full: bool,
    /// Where each row's dump is kept (as `<row>-<era>-dlp-<on|off>.callgrind`,
    /// `<row>-<era>-audit-<on|off>.callgrind`, or `full-<era>.callgrind`,
    /// `less-<stage>-<era>.callgrind` and `core-<era>.callgrind`).
    pub keep_dumps: Option<PathBuf>,
}

pub async fn run(
    settings: &Settings,
    bins: &Binaries,
    eras: &[Era],
    counting: &Counting,
) -> anyhow::Result<()> {
    let calls = counting.calls;
    ensure!(calls > 0, "--calls must be positive");
    if let Some(dir) = &counting.keep_dumps {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for tool in ["valgrind", "callgrind_control"] {
        which(tool).with_context(|| {
            format!("{tool} not found; install Debian's valgrind (apt-get install valgrind)")
        })?;
    }
    println!(
        "Instructions per call (callgrind, Warden's user space; one client, {WARM_CALLS} calls \
         unmeasured, then {calls} counted)"
    );
    let (_fixture, addr) = procs::http_server(&bins.fixture, &[]).await?;
    let upstream = Upstream::Http(addr);
    if counting.full {
        return full_shares(bins, addr, eras, counting).await;
    }
    if counting.audit {
        return audit_share(settings, bins, &upstream, eras, counting).await;
    }
    // counts[dlp on][row][era]
    let mut counts = [[[None; 2]; ROWS.len()]; 2];
    let dlp_settings: &[(usize, &str)] = if counting.echo_only {
        &[(0, procs::DLP_OFF)]
    } else {
        &[(0, procs::DLP_OFF), (1, dlp::DLP_RESULTS)]
    };
    for &(on, dlp_table) in dlp_settings {
        let mut warden = Counted::start(&bins.warden, &upstream, Audit::Off, dlp_table).await?;
        for (r, row) in ROWS.iter().enumerate() {
            let echo = row.every.is_none();
            // The core path's echo is counted with DLP off only.
            if (on == 1 && echo) || (counting.echo_only && !echo) {
                continue;
            }
            let text: Arc<str> = match row.every {
                None => Arc::from(wire::ECHO_TEXT),
                Some(every) => Arc::from(dlp::payload(every)),
            };
            for &era in eras {
                let keep = (counting.keep_dumps.as_ref())
                    .map(|dir| dir.join(dump_name(row.what, era, "dlp", on == 1)));
                let per_call = warden
                    .per_call(settings, era, &text, calls, keep.as_deref())
                    .await?;
                counts[on][r][era_index(era)] = Some(per_call);
            }
        }
    }
    println!("{}", table(&counts, eras));
    Ok(())
}

/// The texts the audit trail's share is counted for: the bench's echo, and 1 KiB each way (the
/// full pipeline's size; its lines are `--dlp`'s, personal data on one in 8).
const AUDIT_ROWS: [(&str, Option<usize>); 2] = [("echo", None), ("1 KiB", Some(1024))];

/// `--instructions --audit`: each row counted through a Warden with the audit trail off, then
/// through one with it on (DLP off in both), and the difference.
async fn audit_share(
    settings: &Settings,
    bins: &Binaries,
    upstream: &Upstream,
    eras: &[Era],
    counting: &Counting,
) -> anyhow::Result<()> {
    // counts[audit on][row][era]
    let mut counts = [[[None; 2]; AUDIT_ROWS.len()]; 2];
    for (on, audit) in [(0, Audit::Off), (1, Audit::On)] {
        let mut warden = Counted::start(&bins.warden, upstream, audit, procs::DLP_OFF).await?;
        for (r, &(what, size)) in AUDIT_ROWS.iter().enumerate() {
            let text: Arc<str> = match size {
                None => Arc::from(wire::ECHO_TEXT),
                Some(size) => Arc::from(dlp::payload_of(size, 8)),
            };
            for &era in eras {
                let keep = (counting.keep_dumps.as_ref())
                    .map(|dir| dir.join(dump_name(what, era, "audit", on == 1)));
                let per_call = warden
                    .per_call(settings, era, &text, counting.calls, keep.as_deref())
                    .await?;
                counts[on][r][era_index(era)] = Some(per_call);
            }
        }
    }
    println!("{}", audit_table(&counts, eras));
    Ok(())
}

/// `--instructions --full`: the full pipeline of `--full` (JWT, Cedar on arguments, a grant
/// check, durable audit, DLP on 1 KiB with findings, a vault credential), the same less one stage
/// at a time, and the core path, each counted through its own Warden; a stage's share is the
/// full pipeline's count less the count without it.
async fn full_shares(
    bins: &Binaries,
    fixture: std::net::SocketAddr,
    eras: &[Era],
    counting: &Counting,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let idp = warden_gateway::devidp::DevIdp::start(listener).await?;
    let text: Arc<str> = Arc::from(dlp::payload_of(full::PAYLOAD, 8));
    let mut variants = vec![("full", full::FULL)];
    variants.extend(full::less_one());
    variants.push(("core", full::CORE));
    // counts[variant][era]
    let mut counts = vec![[None; 2]; variants.len()];
    for (v, &(name, stages)) in variants.iter().enumerate() {
        let (dir, file, addr) = full::config(fixture, &idp.issuer, stages).await?;
        let mut warden = Counted::start_in(&bins.warden, dir, &file, addr).await?;
        let token = full::token(&idp, addr, stages);
        for &era in eras {
            let mut caller =
                Caller::http_full(addr, era, "fx__echo", text.clone(), token.clone()).await?;
            // `full-modern.callgrind`, `less-DLP-modern.callgrind`, `core-modern.callgrind`.
            let label = match name {
                "full" | "core" => name.to_string(),
                stage => format!("less-{stage}"),
            };
            let keep = (counting.keep_dumps.as_ref())
                .map(|dir| dir.join(format!("{label}-{}.callgrind", era.as_str())));
            let total = warden
                .count(&mut caller, counting.calls, keep.as_deref())
                .await?;
            counts[v][era_index(era)] = Some(total as f64 / counting.calls as f64);
        }
    }
    let mut out = Printed::new("call (1 KiB each way)", eras);
    let full = counts[0];
    out.line("full pipeline", full);
    for (v, &(name, _)) in variants.iter().enumerate().skip(1) {
        if name == "core" {
            out.line("core path", counts[v]);
        } else {
            out.line(
                &format!("{name}'s share"),
                [0, 1].map(|e| Some(full[e]? - counts[v][e]?)),
            );
        }
    }
    println!("{}", out.text);
    Ok(())
}

/// The printed table of `--audit`: each row off, on, and the share (on minus off).
fn audit_table(counts: &[[[Option<f64>; 2]; AUDIT_ROWS.len()]; 2], eras: &[Era]) -> String {
    let mut out = Printed::new("call", eras);
    for (r, &(what, _)) in AUDIT_ROWS.iter().enumerate() {
        out.line(&format!("{what}, audit off"), counts[0][r]);
        out.line(&format!("{what}, audit on"), counts[1][r]);
        out.line(
            &format!("audit's share, {what}"),
            [0, 1].map(|e| Some(counts[1][r][e]? - counts[0][r][e]?)),
        );
    }
    out.text
}

/// A printed table of counts: a header naming the eras, then a line per row.
struct Printed<'a> {
    text: String,
    eras: &'a [Era],
}

impl<'a> Printed<'a> {
    fn new(title: &str, eras: &'a [Era]) -> Printed<'a> {
        let mut text = format!("  {title:<36}");
        for era in eras {
            text.push_str(&format!(" {:>12}", era.as_str()));
        }
        Printed { text, eras }
    }

    /// A row's counts per era (`counts[era_index(era)]`), `-` where there is none.
    fn line(&mut self, label: &str, counts: [Option<f64>; 2]) {
        self.text.push_str(&format!("\n  {label:<36}"));
        for &era in self.eras {
            let n = counts[era_index(era)];
            self.text
                .push_str(&format!(" {:>12}", n.map_or("-".into(), thousands)));
        }
    }
}

fn era_index(era: Era) -> usize {
    match era {
        Era::Legacy => 0,
        Era::Modern => 1,
    }
}

/// The printed table: each row with DLP off, then DLP's share of the 10 KiB rows.
fn table(counts: &[[[Option<f64>; 2]; ROWS.len()]; 2], eras: &[Era]) -> String {
    let mut out = Printed::new("call", eras);
    let mut line = |label: String, row: [Option<f64>; 2]| {
        if counted(row, eras) {
            out.line(&label, row);
        }
    };
    for (r, row) in ROWS.iter().enumerate() {
        line(format!("{}, DLP off", row.what), counts[0][r]);
    }
    for (r, row) in ROWS
        .iter()
        .enumerate()
        .filter(|(_, row)| row.every.is_some())
    {
        line(
            format!("DLP's share, {}", row.what),
            [0, 1].map(|e| Some(counts[1][r][e]? - counts[0][r][e]?)),
        );
    }
    out.text
}

/// Whether any of `eras` has a count in `counts` (a row of `--echo-only` that was not counted
/// is left out of its table).
fn counted(counts: [Option<f64>; 2], eras: &[Era]) -> bool {
    eras.iter().any(|&era| counts[era_index(era)].is_some())
}

/// The name a kept dump gets: `echo-legacy-dlp-off.callgrind`, say, or with `stage` "audit",
/// `1-KiB-modern-audit-on.callgrind`.
fn dump_name(row: &str, era: Era, stage: &str, on: bool) -> String {
    let row = row.replace([' ', ','], "-").replace("--", "-");
    let on = if on { "on" } else { "off" };
    format!("{row}-{}-{stage}-{on}.callgrind", era.as_str())
}

/// `n` rounded, with a comma between groups of three digits.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A Warden running under callgrind.
struct Counted {
    service: Service,
    addr: std::net::SocketAddr,
    /// callgrind's output file; dumps are written beside it with `.1`, `.2`, … appended.
    out: PathBuf,
    dumps: usize,
}

impl Counted {
    async fn start(
        warden: &Path,
        upstream: &Upstream,
        audit: Audit,
        dlp: &str,
    ) -> anyhow::Result<Counted> {
        let (dir, file, addr) = procs::warden_config(upstream, audit, dlp)?;
        Counted::start_in(warden, dir, &file, addr).await
    }

    /// Warden under callgrind with the configuration `file` in `dir`, listening on `addr`.
    async fn start_in(
        warden: &Path,
        dir: tempfile::TempDir,
        file: &Path,
        addr: std::net::SocketAddr,
    ) -> anyhow::Result<Counted> {
        let out = dir.path().join("callgrind.out");
        let launcher = [
            "valgrind".to_string(),
            "--tool=callgrind".to_string(),
            "--instr-atstart=no".to_string(),
            "--dump-instr=no".to_string(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        let service =
            procs::start_warden_under(&launcher, warden, dir, file, addr, START_LIMIT).await?;
        let pid = service.pid;
        control(pid, "--instr=on").await?;
        Ok(Counted {
            service,
            addr,
            out,
            dumps: 0,
        })
    }

    /// The instructions per call of `calls` calls echoing `text` in `era` on a new connection,
    /// after its unmeasured ones; the dump is copied to `keep` when given.
    async fn per_call(
        &mut self,
        settings: &Settings,
        era: Era,
        text: &Arc<str>,
        calls: usize,
        keep: Option<&Path>,
    ) -> anyhow::Result<f64> {
        let mut caller =
            Caller::http_with_text(self.addr, era, &settings.through_tool, text.clone()).await?;
        let total = self.count(&mut caller, calls, keep).await?;
        Ok(total as f64 / calls as f64)
    }

    /// The instructions of `calls` calls by `caller`, after its unmeasured ones; the dump is
    /// copied to `keep` when given.
    async fn count(
        &mut self,
        caller: &mut Caller,
        calls: usize,
        keep: Option<&Path>,
    ) -> anyhow::Result<u64> {
        for _ in 0..WARM_CALLS {
            caller.call().await?;
        }
        control(self.service.pid, "--zero").await?;
        for _ in 0..calls {
            caller.call().await?;
        }
        control(self.service.pid, "--dump").await?;
        self.dumps += 1;
        let dump = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        let deadline = tokio::time::Instant::now() + DUMP_LIMIT;
        loop {
            // A dump is complete once its totals line is written.
            if let Some(total) = std::fs::read_to_string(&dump).ok().and_then(|t| totals(&t)) {
                if let Some(keep) = keep {
                    std::fs::copy(&dump, keep)
                        .with_context(|| format!("cannot copy the dump to {}", keep.display()))?;
                    println!("  kept {}", keep.display());
                }
                return Ok(total);
            }
            self.service.check_alive("warden under callgrind")?;
            if tokio::time::Instant::now() > deadline {
                bail!("no callgrind dump at {} within 60 s", dump.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends a command to the callgrind run of `pid`.
async fn control(pid: u32, command: &str) -> anyhow::Result<()> {
    let done = Command::new("callgrind_control")
        .arg(command)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run callgrind_control")?;
    ensure!(
        done.status.success(),
        "callgrind_control {command} {pid} failed: {}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    Ok(())
}

/// The events counted in a callgrind dump: its `totals:` line (or `summary:`, which older
/// versions write alone); `None` for a dump not yet complete.
fn totals(dump: &str) -> Option<u64> {
    dump.lines().rev().find_map(|line| {
        let rest = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_a_complete_dump_only() {
        let dump = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
                    events: Ir\nfn=(1) main\n5 120\nsummary: 2048223\ntotals: 2048223\n";
        assert_eq!(totals(dump), Some(2_048_223));
        assert_eq!(totals("events: Ir\nsummary: 77\n"), Some(77));
        assert_eq!(
            totals("# callgrind format\nevents: Ir\nfn=(1) main\n5 120\n"),
            None
        );
        assert_eq!(totals(""), None);
    }

    #[test]
    fn kept_dumps_are_named_by_row_era_and_dlp() {
        assert_eq!(
            dump_name("echo", Era::Legacy, "dlp", false),
            "echo-legacy-dlp-off.callgrind"
        );
        assert_eq!(
            dump_name("10 KiB, 1 line in 32", Era::Modern, "dlp", true),
            "10-KiB-1-line-in-32-modern-dlp-on.callgrind"
        );
        assert_eq!(
            dump_name("1 KiB", Era::Modern, "audit", true),
            "1-KiB-modern-audit-on.callgrind"
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(99_780.2), "99,780");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-26_940.0), "-26,940");
    }

    /// The last two cells of the row of `table` that begins with `label`, last first.
    fn last_two<'t>(table: &'t str, label: &str) -> Vec<&'t str> {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label} in\n{table}"))
            .split_whitespace()
            .rev()
            .take(2)
            .collect()
    }

    #[test]
    fn the_audit_table_shows_the_trails_share_as_on_minus_off() {
        let mut counts = [[[None; 2]; AUDIT_ROWS.len()]; 2];
        counts[0][1] = [Some(91_731.0), Some(103_198.0)];
        counts[1][1] = [Some(350_216.0), None];
        let t = audit_table(&counts, &[Era::Legacy, Era::Modern]);
        let row = |label: &str| last_two(&t, label);
        assert_eq!(row("audit's share, 1 KiB"), ["-", "258,485"]);
        assert_eq!(row("1 KiB, audit off"), ["103,198", "91,731"]);
        assert_eq!(row("audit's share, echo"), ["-", "-"]);
    }

    #[test]
    fn the_table_shows_dlps_share_as_on_minus_off() {
        let mut counts = [[[None; 2]; ROWS.len()]; 2];
        counts[0][0] = [Some(86_546.0), Some(99_780.0)];
        counts[0][3] = [Some(250_000.0), Some(260_000.0)];
        counts[1][3] = [Some(508_550.0), Some(529_136.0)];
        let t = table(&counts, &[Era::Legacy, Era::Modern]);
        let row = |label: &str| last_two(&t, label);
        assert_eq!(row("echo, DLP off"), ["99,780", "86,546"]);
        assert_eq!(
            row("DLP's share, 10 KiB, 1 line in 8"),
            ["269,136", "258,550"]
        );
        // A share missing either count shows a dash; a row not counted at all is left out.
        counts[0][1] = [Some(1.0), None];
        counts[1][1] = [Some(5.0), Some(7.0)];
        let t = table(&counts, &[Era::Legacy, Era::Modern]);
        let row = |label: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(label))
                .map(|l| l.split_whitespace().rev().take(2).collect::<Vec<_>>())
        };
        assert_eq!(
            row("DLP's share, 10 KiB, no findings"),
            Some(vec!["-", "4"])
        );
        assert_eq!(row("10 KiB, no findings, DLP off"), Some(vec!["-", "1"]));
        assert_eq!(row("10 KiB, 1 line in 32"), None);
        assert!(!t.contains("DLP's share, echo"));
    }
}
