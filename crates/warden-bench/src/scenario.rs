//! One scenario: an upstream kind in one era, measured directly and through each proxy in
//! front of it (Warden, Warden with its audit trail, and for HTTP upstreams nginx and the
//! do-nothing relay), every path in every load shape, in alternating slices so that a burst of
//! outside activity hits all alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use warden_mcp::era::Era;

use crate::client::{self, Caller, StdioCaller, StdioMux};
use crate::disk::{self, DiskWork, Mount};
use crate::nginx::{self, Nginx};
use crate::procs::{self, Audit, Service, Upstream};
use crate::report::{AuditRun, Kind, Path, PathResult, Phase, Ran, Scenario, Transport};
use crate::{Binaries, Settings, load};

/// The processes whose CPU time a phase reads.
#[derive(Clone)]
struct Pids {
    /// The path's proxy: nothing for direct, nginx's master and workers.
    proxy: Vec<u32>,
    upstream: u32,
}

/// How the bench reaches a path: over HTTP, or sharing a stdio pipe.
enum Entry {
    Http(SocketAddr, String),
    Stdio(Arc<StdioMux>),
}

impl Entry {
    async fn caller(&self, era: Era) -> anyhow::Result<Caller> {
        match self {
            Entry::Http(addr, tool) => Caller::http(*addr, era, tool).await,
            Entry::Stdio(mux) => Ok(Caller::Stdio(StdioCaller {
                mux: Arc::clone(mux),
                era,
            })),
        }
    }
}

/// One way to the upstream, the clients that take it, and what it measured so far.
struct Route {
    pids: Pids,
    callers: Vec<Caller>,
    result: PathResult,
}

/// What keeps a scenario's processes alive until it ends.
#[derive(Default)]
struct Keep {
    upstream: Option<Service>,
    nginx: Option<Nginx>,
    relay: Option<Service>,
}

/// Runs one scenario; a scenario that does not apply, or whose processes fail, is reported
/// as such instead of ending the run.
pub async fn run(settings: &Settings, bins: &Binaries, kind: Kind, era: Era) -> Ran {
    if kind == Kind::FixtureSse && era == Era::Modern {
        return Ran::NotApplicable(
            kind,
            era,
            "--sse-always changes only legacy answers; modern calls are fixture-json modern".into(),
        );
    }
    match measure(settings, bins, kind, era).await {
        Ok(ran) => ran,
        Err(e) => Ran::Failed(kind, era, format!("{e:#}")),
    }
}

async fn measure(
    settings: &Settings,
    bins: &Binaries,
    kind: Kind,
    era: Era,
) -> anyhow::Result<Ran> {
    let mut keep = Keep::default();
    let (direct, upstream, upstream_pid) = match kind {
        Kind::Stdio => {
            let mux = StdioMux::spawn(&bins.fixture, era).await?;
            let pid = mux.pid;
            (
                Entry::Stdio(mux),
                Upstream::Stdio(bins.fixture.clone()),
                pid,
            )
        }
        _ => {
            let (program, extra): (_, &[&str]) = match kind {
                Kind::FixtureSse => (&bins.fixture, &["--sse-always"]),
                Kind::Rmcp => (bins.need_rmcp_echo()?, &[]),
                _ => (&bins.fixture, &[]),
            };
            let (service, addr) = procs::http_server(program, extra).await?;
            let pid = service.pid;
            keep.upstream = Some(service);
            (Entry::Http(addr, "echo".into()), Upstream::Http(addr), pid)
        }
    };
    if let Err(e) = probe(&direct, era).await {
        if era == Era::Modern && kind == Kind::Rmcp {
            let why = format!("rmcp-echo does not answer a modern call directly: {e:#}");
            return Ok(Ran::NotApplicable(kind, era, why));
        }
        bail!("the first direct call failed: {e:#}");
    }

    let (mut warden, through_warden) =
        Gateway::start(settings, bins, &upstream, upstream_pid, era, Audit::Off).await?;
    let (mut audited, through_audited) =
        Gateway::start(settings, bins, &upstream, upstream_pid, era, Audit::On).await?;

    let mut entries = vec![
        (
            Path::Direct,
            direct,
            Pids {
                proxy: Vec::new(),
                upstream: upstream_pid,
            },
        ),
        (Path::Warden, through_warden, warden.pids.clone()),
    ];
    if let (Upstream::Http(addr), true) = (&upstream, settings.floors) {
        let (ngx, ngx_addr) = nginx::start(&bins.nginx, *addr).await?;
        let entry = Entry::Http(ngx_addr, "echo".into());
        if let Err(e) = probe(&entry, era).await {
            bail!(
                "the first call through nginx failed: {e:#}\nnginx's log: {}",
                ngx.service.log()
            );
        }
        let pids = Pids {
            proxy: ngx.pids(),
            upstream: upstream_pid,
        };
        entries.insert(1, (Path::Nginx, entry, pids));
        keep.nginx = Some(ngx);
        let (relay, relay_addr) =
            procs::warden(bins.need_relay()?, &upstream, Audit::Off, procs::DLP_OFF).await?;
        let entry = Entry::Http(relay_addr, "echo".into());
        probe(&entry, era)
            .await
            .map_err(|e| e.context("the first call through the relay"))?;
        let pids = Pids {
            proxy: vec![relay.pid],
            upstream: upstream_pid,
        };
        entries.insert(2, (Path::Relay, entry, pids));
        keep.relay = Some(relay);
    }

    // Last in every round, right after the Warden without audit: the two are measured side
    // by side.
    entries.push((Path::WardenAudit, through_audited, audited.pids.clone()));

    let mut routes = Vec::with_capacity(entries.len());
    for (path, entry, pids) in &entries {
        let mut callers = Vec::with_capacity(settings.clients);
        for _ in 0..settings.clients {
            callers.push(entry.caller(era).await?);
        }
        routes.push(Route {
            pids: pids.clone(),
            callers,
            result: PathResult {
                path: *path,
                closed: Phase::default(),
                single: Phase::default(),
                open: Phase::default(),
                upstream_connections: kind.counts_connections().then_some(0),
            },
        });
    }
    let counter = match (&upstream, kind.counts_connections()) {
        (Upstream::Http(addr), true) => Some(*addr),
        _ => None,
    };
    let log = audited
        .service
        .dir()
        .map(|d| d.join(procs::AUDIT_DIR))
        .context("warden+audit has no directory")?;
    let mount = Mount::of(&log);
    let device = mount.as_ref().and_then(Mount::device);
    let watch = Watch {
        counter,
        device: device.as_deref(),
    };

    for route in &mut routes {
        let callers = std::mem::take(&mut route.callers);
        route.callers = load::closed(callers, settings.warmup).await.0;
    }
    let slice = settings.duration / settings.rounds;
    for _ in 0..settings.rounds {
        for route in &mut routes {
            let callers = std::mem::take(&mut route.callers);
            let (callers, p) = slice_of(route, watch, load::closed(callers, slice)).await?;
            route.callers = callers;
            route.result.closed.absorb(p);
        }
    }
    for _ in 0..settings.rounds {
        for route in &mut routes {
            let mut callers = std::mem::take(&mut route.callers);
            let rest = callers.split_off(1);
            let (one, p) = slice_of(route, watch, load::closed(callers, slice)).await?;
            route.callers = one.into_iter().chain(rest).collect();
            route.result.single.absorb(p);
        }
    }
    for _ in 0..settings.rounds {
        for route in &mut routes {
            let callers = std::mem::take(&mut route.callers);
            let shape = load::open(callers, settings.rate, slice);
            let (callers, p) = slice_of(route, watch, shape).await?;
            route.callers = callers;
            route.result.open.absorb(p);
        }
    }

    let peak_rss = warden.peak_rss()?;
    let audit_peak_rss = audited.peak_rss()?;
    let (log_bytes, log_files) = disk::bytes_under(&log);
    // Probed beside the log, after it was measured and counted.
    let durable_write = disk::durable_write(&log)
        .map_err(|e| {
            eprintln!(
                "warden-bench: no durable-write probe in {}: {e}",
                log.display()
            )
        })
        .ok();
    let audit = AuditRun {
        durable_write,
        idle_rss: audited.idle_rss,
        peak_rss: audit_peak_rss,
        file_system: mount.map_or_else(|| "unknown".into(), |m| m.kind),
        device,
        log_bytes,
        log_files,
    };
    drop(keep);
    Ok(Ran::Measured(Box::new(Scenario {
        kind,
        era,
        clients: settings.clients,
        rate: settings.rate,
        paths: routes.into_iter().map(|r| r.result).collect(),
        idle_rss: warden.idle_rss,
        peak_rss,
        audit,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })))
}

/// A `warden serve` of the scenario, with or without its audit trail.
struct Gateway {
    service: Service,
    what: &'static str,
    pids: Pids,
    /// `VmRSS` after start-up and one call.
    idle_rss: u64,
}

impl Gateway {
    /// Starts Warden in front of `upstream` and makes one call through it (then the idle
    /// footprint is known, and for stdio Warden's child exists); returns how to reach it.
    async fn start(
        settings: &Settings,
        bins: &Binaries,
        upstream: &Upstream,
        upstream_pid: u32,
        era: Era,
        audit: Audit,
    ) -> anyhow::Result<(Gateway, Entry)> {
        let what = match audit {
            Audit::Off => Path::Warden.as_str(),
            Audit::On => Path::WardenAudit.as_str(),
        };
        let (mut service, addr) =
            procs::warden(&bins.warden, upstream, audit, procs::DLP_OFF).await?;
        let entry = Entry::Http(addr, settings.through_tool.clone());
        if let Err(e) = probe(&entry, era).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            service.check_alive(what)?;
            bail!(
                "the first call through {what} failed: {e:#}\n{what}'s log: {}",
                service.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        service.check_alive(what)?;
        let idle_rss = procs::memory(service.pid, "VmRSS")?;
        let upstream = match upstream {
            // Warden runs a fixture child of its own.
            Upstream::Stdio(_) => stdio_child(&service)?,
            Upstream::Http(_) => upstream_pid,
        };
        let pids = Pids {
            proxy: vec![service.pid],
            upstream,
        };
        let gateway = Gateway {
            service,
            what,
            pids,
            idle_rss,
        };
        Ok((gateway, entry))
    }

    /// `VmHWM` at the end of the scenario; fails if Warden died on the way.
    fn peak_rss(&mut self) -> anyhow::Result<u64> {
        self.service.check_alive(self.what)?;
        procs::memory(self.service.pid, "VmHWM")
    }
}

/// One call on a fresh client of `entry`: the path works before it is measured.
async fn probe(entry: &Entry, era: Era) -> anyhow::Result<()> {
    let mut caller = entry.caller(era).await?;
    tokio::time::timeout(Duration::from_secs(10), caller.call())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 10 s"))?
}

/// What a slice watches besides CPU time.
#[derive(Clone, Copy)]
struct Watch<'a> {
    /// A fixture whose accepted connections are counted.
    counter: Option<SocketAddr>,
    /// The block device of the audit log, in `/proc/diskstats`.
    device: Option<&'a str>,
}

/// Runs one slice of a load phase on `route`, charging the CPU time each process spent, the
/// work of the audit log's disk and, when `watch` names a fixture, the TCP connections it
/// accepted meanwhile.
async fn slice_of(
    route: &mut Route,
    watch: Watch<'_>,
    load: impl Future<Output = (Vec<Caller>, load::Outcome)>,
) -> anyhow::Result<(Vec<Caller>, Phase)> {
    let counter = watch.counter;
    let disk = || watch.device.and_then(DiskWork::read).unwrap_or_default();
    let before_conns = match counter {
        Some(addr) => Some(client::fixture_connections(addr).await?),
        None => None,
    };
    let me = std::process::id();
    let pids = &route.pids;
    let read = || -> anyhow::Result<[Duration; 4]> {
        let mut proxy = Duration::ZERO;
        for pid in &pids.proxy {
            proxy += procs::cpu_time(*pid)?;
        }
        Ok([
            proxy,
            procs::cpu_time(pids.upstream)?,
            procs::cpu_time(me)?,
            procs::machine_busy()?,
        ])
    };
    let (before, disk_before) = (read()?, disk());
    let (callers, outcome) = load.await;
    let (after, disk_after) = (read()?, disk());
    if let (Some(before), Some(addr)) = (before_conns, counter) {
        // The second question came on a connection of its own.
        let opened = client::fixture_connections(addr)
            .await?
            .saturating_sub(before + 1);
        if let Some(n) = route.result.upstream_connections.as_mut() {
            *n += opened;
        }
    }
    let spent = |i: usize| after[i].saturating_sub(before[i]);
    let ours = spent(0) + spent(1) + spent(2);
    let phase = Phase {
        outcome,
        cpu_proxy: spent(0),
        cpu_upstream: spent(1),
        cpu_bench: spent(2),
        cpu_others: spent(3).saturating_sub(ours),
        disk: disk_after.since(disk_before),
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

/// Whether a kind's transport is among those asked for.
pub fn selected(kind: Kind, only: Option<Transport>) -> bool {
    only.is_none_or(|t| t == kind.transport())
}
