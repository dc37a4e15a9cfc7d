//! `warden-bench`: the end-to-end load bench. In one run it drives MCP upstreams — the fixture
//! answering in JSON, the fixture answering every legacy call in SSE (`--sse-always`), an
//! `rmcp` server (`rmcp-echo`), and the fixture over stdio — directly, through Warden without
//! and with its audit trail, and, for HTTP upstreams, through the floors Warden is held
//! against: nginx as a plain reverse proxy and `warden-relay`, a do-nothing proxy on Warden's
//! own stack. Both protocol eras; closed loop with every client (throughput at saturation) and
//! with one (latency without a queue), and open loop at a fixed rate (latency without
//! coordinated omission). It prints what each proxy adds, CPU time per call of each proxy and
//! of the upstream, Warden's idle and peak memory, what the audit trail adds, and whether the
//! issue's targets are met.
//!
//! Every server runs as a separate process, so `/proc` tells their CPU time and memory
//! apart; the load generator runs in this process on one thread. It only ever talks to
//! loopback addresses, and every loop in it ends by itself. `docs/benchmarks.md` explains the
//! method and keeps the latest figures.

mod client;
mod disk;
mod dlp;
mod full;
mod instructions;
mod load;
mod nginx;
mod procs;
mod report;
mod scenario;
mod train;
mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use warden_mcp::era::Era;

use crate::report::{Kind, Ran, Transport};

#[derive(Parser)]
#[command(
    name = "warden-bench",
    version,
    about = "Load bench: MCP upstreams directly, through Warden, nginx and a do-nothing relay"
)]
struct Args {
    /// Total calls per second of the open-loop phases.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds each measured phase lasts (closed loop, one client, open loop).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Virtual clients (one connection each) in both load shapes.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Slices each phase is cut into, alternating between the paths.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds of unmeasured closed-loop load on each path before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Run only one upstream transport.
    #[arg(long, value_enum)]
    only: Option<Transport>,
    /// Upstream kinds to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    upstream: Vec<Kind>,
    /// Skip nginx and the relay (then the targets cannot be judged).
    #[arg(long)]
    no_floors: bool,
    /// The nginx binary.
    #[arg(long, default_value = nginx::DEFAULT_NGINX)]
    nginx: PathBuf,
    /// The `warden-relay` binary (default: next to this one).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// The `rmcp-echo` binary (default: next to this one).
    #[arg(long)]
    rmcp_echo: Option<PathBuf>,
    /// Which protocol era(s) to run.
    #[arg(long, value_enum, default_value_t = EraChoice::Both)]
    era: EraChoice,
    /// The `warden` binary (default: next to this one).
    #[arg(long)]
    warden: Option<PathBuf>,
    /// Serve every Warden (and the relay) on this many worker threads (`[server] workers`;
    /// default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    warden_workers: Option<u16>,
    /// The tool name through Warden (`fx__echo`); another name lets `--warden` be a different
    /// proxy for calibration.
    #[arg(long, default_value = "fx__echo", hide = true)]
    through_tool: String,
    /// Measure only what DLP adds to a call returning 10 KiB (DLP off against on).
    #[arg(long)]
    dlp: bool,
    /// Measure the full pipeline (JWT, Cedar on arguments, a grant check, durable audit, DLP on
    /// 1 KiB results with findings, a vault credential) against direct, nginx and the core path.
    /// With --instructions: count the full pipeline, the core path and each stage's share (the
    /// full pipeline's count less the count without that stage) instead of the DLP rows.
    #[arg(long)]
    full: bool,
    /// With --full: also the full pipeline less one stage at a time (what each stage costs).
    #[arg(long)]
    full_parts: bool,
    /// Count the instructions Warden executes per call under callgrind (valgrind must be
    /// installed) instead of timing: the echo, 10 KiB each way, and DLP's share.
    #[arg(long)]
    instructions: bool,
    /// With --instructions: the calls counted per row.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// With --instructions: the echo row only (about a minute instead of six).
    #[arg(long)]
    echo_only: bool,
    /// With --instructions: count the audit trail's share (durable audit on minus off) of the
    /// echo and of a 1 KiB call instead of the DLP rows.
    #[arg(long)]
    audit: bool,
    /// With --instructions: keep each row's callgrind dump in this directory, for
    /// `callgrind_annotate` (where the instructions go).
    #[arg(long)]
    keep_dumps: Option<PathBuf>,
    /// Drive the Warden given (an instrumented build) over the core path and the full
    /// pipeline, in the eras of `--era`, with JSON replies and (legacy) SSE replies, for
    /// `--duration` seconds each, and stop each with SIGTERM so that it writes its profile: the
    /// training run of `scripts/release-build`. Nothing is measured.
    #[arg(long)]
    train: bool,
    /// The `warden-fixture` binary (default: next to this one).
    #[arg(long)]
    fixture: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EraChoice {
    Legacy,
    Modern,
    Both,
}

/// The programs a run starts. The relay and `rmcp-echo` are looked for only when needed.
pub struct Binaries {
    pub warden: PathBuf,
    pub fixture: PathBuf,
    pub nginx: PathBuf,
    relay: anyhow::Result<PathBuf>,
    rmcp_echo: anyhow::Result<PathBuf>,
}

impl Binaries {
    pub fn need_relay(&self) -> anyhow::Result<&PathBuf> {
        self.relay.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    pub fn need_rmcp_echo(&self) -> anyhow::Result<&PathBuf> {
        self.rmcp_echo
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }
}

/// The run's settings that every scenario reads.
pub struct Settings {
    pub clients: usize,
    pub rate: f64,
    pub duration: Duration,
    pub rounds: u32,
    pub warmup: Duration,
    pub floors: bool,
    pub through_tool: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.rate > 0.0
        && args.duration > 0.0
        && args.warmup >= 0.0
        && args.clients > 0
        && args.rounds > 0)
    {
        bail!("--rate, --duration, --clients and --rounds must be positive, --warmup not negative");
    }
    if let Some(n) = args.warden_workers {
        procs::set_warden_workers(usize::from(n));
    }
    let bins = binaries(&args)?;
    // One thread for the load generator: it leaves the other core to the processes under test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&args, &bins))
}

fn binaries(args: &Args) -> anyhow::Result<Binaries> {
    let here = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .context("this executable has no directory")?;
    let pick = |given: &Option<PathBuf>, name: &str| -> anyhow::Result<PathBuf> {
        let path = given.clone().unwrap_or_else(|| here.join(name));
        if !path.is_file() {
            bail!(
                "{} not found; build it with `cargo build --release -p warden -p warden-fixture \
                 -p warden-bench` or pass --{}",
                path.display(),
                name.trim_start_matches("warden-")
            );
        }
        Ok(std::fs::canonicalize(path)?)
    };
    let nginx = args.nginx.clone();
    let http_kinds = kinds(args).iter().any(|k| k.transport() == Transport::Http);
    let floors_needed =
        http_kinds && !args.no_floors && !args.dlp && !args.instructions && !args.train;
    if floors_needed && !nginx.is_file() {
        bail!(
            "{} not found; install Debian's nginx, pass --nginx PATH or --no-floors",
            nginx.display()
        );
    }
    Ok(Binaries {
        warden: pick(&args.warden, "warden")?,
        fixture: pick(&args.fixture, "warden-fixture")?,
        nginx,
        relay: pick(&args.relay, "warden-relay"),
        rmcp_echo: pick(&args.rmcp_echo, "rmcp-echo"),
    })
}

/// The upstream kinds asked for, in the order they run.
fn kinds(args: &Args) -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| args.upstream.is_empty() || args.upstream.contains(k))
        .filter(|k| scenario::selected(*k, args.only))
        .collect()
}

async fn run(args: &Args, bins: &Binaries) -> anyhow::Result<()> {
    let eras: Vec<Era> = match args.era {
        EraChoice::Legacy => vec![Era::Legacy],
        EraChoice::Modern => vec![Era::Modern],
        EraChoice::Both => vec![Era::Legacy, Era::Modern],
    };
    let settings = Settings {
        clients: args.clients,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        rounds: args.rounds,
        warmup: Duration::from_secs_f64(args.warmup),
        floors: !args.no_floors,
        through_tool: args.through_tool.clone(),
    };
    if args.train {
        return train::run(&settings, bins, &eras).await;
    }
    if args.instructions {
        let counting = instructions::Counting {
            calls: args.calls,
            echo_only: args.echo_only,
            audit: args.audit,
            full: args.full,
            keep_dumps: args.keep_dumps.clone(),
        };
        return instructions::run(&settings, bins, &eras, &counting).await;
    }
    println!(
        "warden-bench: {} clients, {:.1} s per phase in {} alternating slices after {:.1} s warm-up, \
         open loop at {:.0} calls/s; load average at start {}\n",
        args.clients,
        args.duration,
        args.rounds,
        args.warmup,
        args.rate,
        procs::load_average()
    );
    if args.dlp {
        return dlp::run(&settings, bins, &eras).await;
    }
    if args.full || args.full_parts {
        return full::run(&settings, bins, &eras, args.full_parts).await;
    }
    let mut ran = Vec::new();
    for kind in kinds(args) {
        for &era in &eras {
            eprintln!("running {} {} ...", kind.as_str(), era.as_str());
            let outcome = scenario::run(&settings, bins, kind, era).await;
            match &outcome {
                Ran::Measured(s) => println!("{}", s.table()),
                Ran::NotApplicable(..) => {}
                Ran::Failed(_, _, why) => eprintln!("  failed: {why}"),
            }
            ran.push(outcome);
        }
    }
    println!("{}", report::summary(&ran));
    if ran.iter().any(|r| matches!(r, Ran::Failed(..))) {
        bail!("some scenarios failed; see the summary");
    }
    Ok(())
}
