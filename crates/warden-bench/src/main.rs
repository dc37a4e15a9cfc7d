//! `warden-bench`: the end-to-end load bench. In one run it drives the fixture MCP server
//! directly and through Warden, for both protocol eras and for an HTTP and a stdio upstream,
//! closed loop (throughput at saturation) and open loop at a fixed rate (latency without
//! coordinated omission), and prints what Warden adds: latency, the throughput ratio, CPU time
//! per call of Warden and of the upstream, and Warden's idle and peak memory.
//!
//! Warden and the fixture run as separate processes, so `/proc` tells their CPU time and memory
//! apart; the load generator runs in this process on one thread. It only ever talks to
//! loopback addresses, and every loop in it ends by itself. `docs/benchmarks.md` explains the
//! method and keeps the latest figures.

mod client;
mod load;
mod procs;
mod report;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use warden_mcp::era::Era;

use crate::client::{Caller, StdioCaller, StdioMux};
use crate::procs::{Service, Upstream};
use crate::report::{Phase, Scenario, Transport};

#[derive(Parser)]
#[command(
    name = "warden-bench",
    version,
    about = "Load bench: the fixture MCP server directly and through Warden"
)]
struct Args {
    /// Total calls per second of the open-loop phases.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds each measured phase lasts.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Virtual clients (one connection each) in both load shapes.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Slices each phase is cut into, alternating direct and through Warden.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds of unmeasured closed-loop load on each path before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Run only one upstream transport.
    #[arg(long, value_enum)]
    only: Option<Transport>,
    /// Which protocol era(s) to run.
    #[arg(long, value_enum, default_value_t = EraChoice::Both)]
    era: EraChoice,
    /// The `warden` binary (default: next to this one).
    #[arg(long)]
    warden: Option<PathBuf>,
    /// The tool name through Warden (`fx__echo`); another name lets `--warden` be a different
    /// proxy for calibration.
    #[arg(long, default_value = "fx__echo", hide = true)]
    through_tool: String,
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

struct Binaries {
    warden: PathBuf,
    fixture: PathBuf,
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
                "{} not found; build it with `cargo build --release -p warden -p warden-fixture` \
                 or pass --{}",
                path.display(),
                name.trim_start_matches("warden-")
            );
        }
        Ok(std::fs::canonicalize(path)?)
    };
    Ok(Binaries {
        warden: pick(&args.warden, "warden")?,
        fixture: pick(&args.fixture, "warden-fixture")?,
    })
}

async fn run(args: &Args, bins: &Binaries) -> anyhow::Result<()> {
    let transports: Vec<Transport> = match args.only {
        Some(t) => vec![t],
        None => vec![Transport::Http, Transport::Stdio],
    };
    let eras: Vec<Era> = match args.era {
        EraChoice::Legacy => vec![Era::Legacy],
        EraChoice::Modern => vec![Era::Modern],
        EraChoice::Both => vec![Era::Legacy, Era::Modern],
    };
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
    let mut scenarios = Vec::new();
    for &transport in &transports {
        for &era in &eras {
            eprintln!("running {} {} ...", transport.as_str(), era.as_str());
            let s = scenario(args, bins, transport, era)
                .await
                .with_context(|| {
                    format!("{} upstream, {} era", transport.as_str(), era.as_str())
                })?;
            println!("{}", s.table());
            scenarios.push(s);
        }
    }
    println!("{}", report::summary(&scenarios));
    Ok(())
}

/// The processes whose CPU time a phase reads.
#[derive(Clone, Copy)]
struct Pids {
    warden: u32,
    fixture: u32,
}

/// The direct path of a scenario: the fixture the bench talks to itself.
enum Direct {
    Http(Box<Service>, SocketAddr),
    Stdio(Arc<StdioMux>),
}

impl Direct {
    fn pid(&self) -> u32 {
        match self {
            Direct::Http(service, _) => service.pid,
            Direct::Stdio(mux) => mux.pid,
        }
    }

    async fn caller(&self, era: Era) -> anyhow::Result<Caller> {
        match self {
            Direct::Http(_, addr) => Caller::http(*addr, era, "echo").await,
            Direct::Stdio(mux) => Ok(Caller::Stdio(StdioCaller {
                mux: Arc::clone(mux),
                era,
            })),
        }
    }
}

async fn scenario(
    args: &Args,
    bins: &Binaries,
    transport: Transport,
    era: Era,
) -> anyhow::Result<Scenario> {
    let (direct, upstream) = match transport {
        Transport::Http => {
            let (service, addr) = procs::http_fixture(&bins.fixture).await?;
            (Direct::Http(Box::new(service), addr), Upstream::Http(addr))
        }
        Transport::Stdio => {
            let mux = StdioMux::spawn(&bins.fixture, era).await?;
            (Direct::Stdio(mux), Upstream::Stdio(bins.fixture.clone()))
        }
    };
    let (mut warden, warden_addr) = procs::warden(&bins.warden, &upstream).await?;

    // Startup plus one call: the idle footprint, and (for stdio) Warden's child exists.
    let first = async {
        let mut probe = Caller::http(warden_addr, era, &args.through_tool).await?;
        probe.call().await
    };
    if let Err(e) = first.await {
        tokio::time::sleep(Duration::from_millis(200)).await;
        warden.check_alive("warden")?;
        bail!(
            "the first call through Warden failed: {e:#}\nWarden's log: {}",
            warden.log()
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    warden.check_alive("warden")?;
    let idle_rss = procs::memory(warden.pid, "VmRSS")?;

    let direct_pids = Pids {
        warden: warden.pid,
        fixture: direct.pid(),
    };
    let warden_pids = Pids {
        warden: warden.pid,
        fixture: match &direct {
            // One fixture serves both paths.
            Direct::Http(service, _) => service.pid,
            // Warden runs a fixture child of its own.
            Direct::Stdio(_) => stdio_child(&warden)?,
        },
    };

    let mut direct_callers = Vec::with_capacity(args.clients);
    let mut warden_callers = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        direct_callers.push(direct.caller(era).await?);
        warden_callers.push(Caller::http(warden_addr, era, &args.through_tool).await?);
    }
    let mut paths = [
        Route {
            pids: direct_pids,
            callers: direct_callers,
        },
        Route {
            pids: warden_pids,
            callers: warden_callers,
        },
    ];

    let warmup = Duration::from_secs_f64(args.warmup);
    for path in &mut paths {
        let (callers, _) = load::closed(std::mem::take(&mut path.callers), warmup).await;
        path.callers = callers;
    }
    // Direct and through-Warden slices alternate, so a burst of outside activity hits both.
    let slice = Duration::from_secs_f64(args.duration / args.rounds as f64);
    let mut closed = [Phase::default(), Phase::default()];
    let mut open = [Phase::default(), Phase::default()];
    for _ in 0..args.rounds {
        for (path, total) in paths.iter_mut().zip(&mut closed) {
            let callers = std::mem::take(&mut path.callers);
            let (callers, p) = phase(path.pids, load::closed(callers, slice)).await?;
            path.callers = callers;
            total.absorb(p);
        }
    }
    for _ in 0..args.rounds {
        for (path, total) in paths.iter_mut().zip(&mut open) {
            let callers = std::mem::take(&mut path.callers);
            let (callers, p) = phase(path.pids, load::open(callers, args.rate, slice)).await?;
            path.callers = callers;
            total.absorb(p);
        }
    }
    drop(paths);

    warden.check_alive("warden")?;
    let peak_rss = procs::memory(warden.pid, "VmHWM")?;
    let [direct_closed, warden_closed] = closed;
    let [direct_open, warden_open] = open;
    Ok(Scenario {
        transport,
        era,
        clients: args.clients,
        rate: args.rate,
        direct_closed,
        warden_closed,
        direct_open,
        warden_open,
        idle_rss,
        peak_rss,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// One way to the fixture and the clients that take it.
struct Route {
    pids: Pids,
    callers: Vec<Caller>,
}

/// Runs one load phase and charges the CPU time each process spent during it.
async fn phase(
    pids: Pids,
    load: impl Future<Output = (Vec<Caller>, load::Outcome)>,
) -> anyhow::Result<(Vec<Caller>, Phase)> {
    let me = std::process::id();
    let read = || -> anyhow::Result<[std::time::Duration; 4]> {
        Ok([
            procs::cpu_time(pids.warden)?,
            procs::cpu_time(pids.fixture)?,
            procs::cpu_time(me)?,
            procs::machine_busy()?,
        ])
    };
    let before = read()?;
    let (callers, outcome) = load.await;
    let after = read()?;
    let spent = |i: usize| after[i].saturating_sub(before[i]);
    let ours = spent(0) + spent(1) + spent(2);
    let phase = Phase {
        outcome,
        cpu_warden: spent(0),
        cpu_fixture: spent(1),
        cpu_bench: spent(2),
        cpu_others: spent(3).saturating_sub(ours),
    };
    Ok((callers, phase))
}

/// The fixture child Warden started for its stdio upstream.
fn stdio_child(warden: &Service) -> anyhow::Result<u32> {
    match procs::children_of(warden.pid).as_slice() {
        [one] => Ok(*one),
        [] => bail!("warden started no stdio child"),
        many => bail!("warden has {} children; expected one", many.len()),
    }
}
