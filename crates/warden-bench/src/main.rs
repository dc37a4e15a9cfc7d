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
    if !(args.rate > 0.0 && args.duration > 0.0 && args.warmup >= 0.0 && args.clients > 0) {
        bail!("--rate, --duration and --clients must be positive, --warmup not negative");
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
        "warden-bench: {} clients, {:.1} s per phase after {:.1} s warm-up, open loop at {:.0} calls/s; \
         load average at start {}\n",
        args.clients,
        args.duration,
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

async fn scenario(
    args: &Args,
    bins: &Binaries,
    transport: Transport,
    era: Era,
) -> anyhow::Result<Scenario> {
    let (http_fixture, upstream, mux) = match transport {
        Transport::Http => {
            let (service, addr) = procs::http_fixture(&bins.fixture).await?;
            (Some(service), Upstream::Http(addr), None)
        }
        Transport::Stdio => {
            let mux = StdioMux::spawn(&bins.fixture, era).await?;
            (None, Upstream::Stdio(bins.fixture.clone()), Some(mux))
        }
    };
    let (mut warden, warden_addr) = procs::warden(&bins.warden, &upstream).await?;

    // Startup plus one call: the idle footprint, and (for stdio) Warden's child exists.
    let mut probe = Caller::http(warden_addr, era, "fx__echo").await?;
    probe
        .call()
        .await
        .context("the first call through Warden failed")?;
    drop(probe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    warden.check_alive("warden")?;
    let idle_rss = procs::memory(warden.pid, "VmRSS")?;

    let (direct_pids, warden_pids) = match (&http_fixture, &mux) {
        (Some(f), _) => {
            let p = Pids {
                warden: warden.pid,
                fixture: f.pid,
            };
            (p, p)
        }
        (None, Some(m)) => {
            let behind = stdio_child(&warden)?;
            (
                Pids {
                    warden: warden.pid,
                    fixture: m.pid,
                },
                Pids {
                    warden: warden.pid,
                    fixture: behind,
                },
            )
        }
        (None, None) => unreachable!("every transport starts a fixture"),
    };

    let mut direct = Vec::with_capacity(args.clients);
    let mut through = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        direct.push(match (&upstream, &mux) {
            (Upstream::Http(addr), _) => Caller::http(*addr, era, "echo").await?,
            (Upstream::Stdio(_), Some(m)) => Caller::Stdio(StdioCaller {
                mux: Arc::clone(m),
                era,
            }),
            (Upstream::Stdio(_), None) => unreachable!("a stdio scenario has a mux"),
        });
        through.push(Caller::http(warden_addr, era, "fx__echo").await?);
    }

    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let (direct, _) = load::closed(direct, warmup).await;
    let (through, _) = load::closed(through, warmup).await;
    let (direct, direct_closed) = phase(direct_pids, load::closed(direct, duration)).await?;
    let (through, warden_closed) = phase(warden_pids, load::closed(through, duration)).await?;
    let (direct, direct_open) = phase(direct_pids, load::open(direct, args.rate, duration)).await?;
    let (through, warden_open) =
        phase(warden_pids, load::open(through, args.rate, duration)).await?;
    drop((direct, through));

    warden.check_alive("warden")?;
    let peak_rss = procs::memory(warden.pid, "VmHWM")?;
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
