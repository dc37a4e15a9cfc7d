//! `warden-bench --full`: every stage of a call at once, against the floors. The upstream is
//! the fixture over HTTP (JSON replies, and every legacy reply as SSE); the paths are the
//! upstream directly, nginx as a plain reverse proxy, Warden's core path (a test principal,
//! allow-all policy, no audit, no DLP) and the **full pipeline**:
//!
//! - a JWT from a real issuer (Warden's development OpenID provider, in this process: discovery,
//!   JWKS, RS256 tokens), verified on every call;
//! - Cedar with a condition on the call's arguments, which asks for consent — covered by a
//!   standing grant of the caller for the tool, checked on every call;
//! - the durable audit trail (request and response records `fdatasync`ed before they go on);
//! - DLP with its default rules on arguments and results, the result 1 KiB with personal data
//!   on one line in 8 (masked on the way back);
//! - a static credential from the vault injected into every upstream request.
//!
//! Then, to say which stage costs what, the full pipeline again with one stage taken out at a
//! time (`--full-parts`): without JWT (a test principal), without the grant check (a plain
//! permit), without audit, without DLP, without the credential.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use warden_gateway::store::{Grant, GrantKind};
use warden_mcp::era::Era;

use crate::client::Caller;
use crate::load::{self, Outcome};
use crate::procs::{self, Service};
use crate::{Binaries, Settings, nginx};

/// Targets of issue 12.
const THROUGHPUT_VS_NGINX: f64 = 0.60;
const ADDED_P50_US: f64 = 500.0;
const P99_AT_RATE_US: f64 = 2000.0;
/// The echoed text: 1 KiB with personal data on one line in 8.
pub(crate) const PAYLOAD: usize = 1024;
const USER: &str = "bench-user";
const AGENT: &str = "bench-agent";

/// The fixture's two HTTP shapes, as (kind, arguments): JSON replies, and every legacy reply
/// as SSE.
pub(crate) const FIXTURES: [(&str, &[&str]); 2] =
    [("fixture-json", &[]), ("fixture-sse", &["--sse-always"])];

/// The eras of `eras` worth running in front of a fixture started with `args`: `--sse-always`
/// changes only legacy replies.
pub(crate) fn eras_for(args: &[&str], eras: &[Era]) -> Vec<Era> {
    let sse = args.contains(&"--sse-always");
    eras.iter()
        .copied()
        .filter(|&e| !(sse && e == Era::Modern))
        .collect()
}

/// What a Warden of this scenario runs with; the full pipeline is every one of them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stages {
    jwt: bool,
    grant: bool,
    audit: bool,
    dlp: bool,
    credential: bool,
}

pub(crate) const FULL: Stages = Stages {
    jwt: true,
    grant: true,
    audit: true,
    dlp: true,
    credential: true,
};

pub(crate) const CORE: Stages = Stages {
    jwt: false,
    grant: false,
    audit: false,
    dlp: false,
    credential: false,
};

/// The full pipeline less one stage at a time, each named by the stage taken out.
pub(crate) fn less_one() -> [(&'static str, Stages); 5] {
    [
        ("JWT", Stages { jwt: false, ..FULL }),
        (
            "grant",
            Stages {
                grant: false,
                ..FULL
            },
        ),
        (
            "audit",
            Stages {
                audit: false,
                ..FULL
            },
        ),
        ("DLP", Stages { dlp: false, ..FULL }),
        (
            "credential",
            Stages {
                credential: false,
                ..FULL
            },
        ),
    ]
}

/// The policies: with the grant check, the echo needs consent (covered by a standing grant)
/// and only for texts of the bench; without it, a plain permit with the same condition.
fn policies(grant: bool) -> String {
    let consent = if grant { "@consent(\"8h\")\n" } else { "" };
    format!(
        "@id(\"bench-lists\")\n\
         permit (principal, action in [Action::\"list_tools\", Action::\"list_prompts\", Action::\"list_resources\"], resource);\n\
         @id(\"bench-echo\")\n{consent}\
         permit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.echo\")\n\
         when {{ context.arguments has text && context.arguments.text like \"hello from warden-bench*\" }};\n"
    )
}

/// A Warden with `stages` in front of the fixture at `upstream`, its issuer `issuer`.
pub(crate) async fn warden(
    bins: &Binaries,
    upstream: SocketAddr,
    issuer: &str,
    stages: Stages,
) -> anyhow::Result<(Service, SocketAddr)> {
    let (dir, file, addr) = config(upstream, issuer, stages).await?;
    procs::start_warden(&bins.warden, dir, &file, addr).await
}

/// The directory, configuration file and address of a Warden with `stages` in front of the
/// fixture at `upstream`, its issuer `issuer`, its store prepared (vault secret, grant).
pub(crate) async fn config(
    upstream: SocketAddr,
    issuer: &str,
    stages: Stages,
) -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf, SocketAddr)> {
    let addr = procs::free_port()?;
    let dir = tempfile::tempdir()?;
    let identity = if stages.jwt {
        format!("issuer = \"{issuer}\"\naudience = \"http://{addr}/mcp\"")
    } else {
        format!("test_user = \"{USER}\"")
    };
    let audit = if stages.audit {
        format!("enabled = true\ndir = \"{}\"", procs::AUDIT_DIR)
    } else {
        "enabled = false".into()
    };
    let dlp = if stages.dlp { "" } else { procs::DLP_OFF };
    let headers = if stages.credential {
        "headers = { X-Api-Key = \"${vault:bench_key}\" }"
    } else {
        ""
    };
    let consent = if stages.grant && stages.jwt {
        "[consent]\nclient_id = \"warden-dev-consent\"\nclient_secret = \"unused\"\n"
    } else if stages.grant {
        "[consent]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nclient_secret = \"unused\"\n"
    } else {
        ""
    };
    let workers = procs::workers_line();
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n{workers}\n[identity]\n{identity}\n\n{consent}\n\
         [policy]\ndir = \"policies\"\nreload_every = \"0s\"\n\n\
         [storage]\npath = \".\"\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n\
         [logging]\nlevel = \"warn\"\n\n[audit]\n{audit}\n\n[dlp]\n{dlp}\n\n\
         [upstreams.fx]\nurl = \"http://{upstream}/mcp\"\n{headers}\n"
    );
    std::fs::create_dir(dir.path().join("policies"))?;
    std::fs::write(
        dir.path().join("policies/bench.cedar"),
        policies(stages.grant),
    )?;
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, &config)?;
    prepare_store(&file, &config, stages).await?;
    Ok((dir, file, addr))
}

/// The bearer token of the bench's user and agent for the Warden at `addr`, when it verifies
/// JWTs.
pub(crate) fn token(
    idp: &warden_gateway::devidp::DevIdp,
    addr: SocketAddr,
    stages: Stages,
) -> Option<String> {
    stages.jwt.then(|| {
        let audience = format!("http://{addr}/mcp");
        idp.mint(warden_gateway::devidp::claims(
            USER,
            AGENT,
            &audience,
            86_400,
            serde_json::json!({}),
        ))
    })
}

/// The store as the operator leaves it before starting: the vault secret, the standing grant.
async fn prepare_store(file: &std::path::Path, text: &str, stages: Stages) -> anyhow::Result<()> {
    if !stages.credential && !stages.grant {
        return Ok(());
    }
    let config = warden_gateway::Config::from_toml(file, text)
        .map_err(|e| anyhow::anyhow!("the bench's config: {e}"))?;
    let store = warden_gateway::store::open(&config.storage).await?;
    let mut tx = store.begin().await?;
    if stages.credential {
        let keys = warden_gateway::vault::KeySource::File(config.storage.vault_key.clone());
        let vault = warden_gateway::vault::Vault::open(keys, store.clone())?;
        let row = vault.seal("bench_key", "", "bench-upstream-key-0123456789", 1)?;
        tx.vault_put(&row).await?;
    }
    if stages.grant {
        let now = warden_gateway::store::now();
        tx.insert_grant(&Grant {
            id: "bench-grant".into(),
            user: USER.into(),
            // A test principal names no agent.
            agent: stages.jwt.then(|| AGENT.into()),
            tool: "fx.echo".into(),
            kind: GrantKind::Standing,
            created_at: now,
            expires_at: now + 86_400,
            consumed_at: None,
        })
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One path: where its clients connect, their bearer token, and the processes it runs.
struct Path {
    name: String,
    addr: SocketAddr,
    /// `echo` straight at the fixture (direct, nginx), `fx__echo` through Warden.
    tool: &'static str,
    token: Option<String>,
    pids: Vec<u32>,
    callers: Vec<Caller>,
    saturated: Outcome,
    single: Outcome,
    open: Outcome,
    cpu: Duration,
    /// The CPU time and the context switches of its processes during the one-client slices.
    single_cpu: Duration,
    single_switches: u64,
}

impl Path {
    async fn callers(&self, n: usize, era: Era, text: &Arc<str>) -> anyhow::Result<Vec<Caller>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(
                Caller::http_full(self.addr, era, self.tool, text.clone(), self.token.clone())
                    .await
                    .with_context(|| format!("connecting to {}", self.name))?,
            );
        }
        Ok(out)
    }
}

pub async fn run(
    settings: &Settings,
    bins: &Binaries,
    eras: &[Era],
    parts: bool,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let idp = warden_gateway::devidp::DevIdp::start(listener).await?;
    let text: Arc<str> = Arc::from(crate::dlp::payload_of(PAYLOAD, 8));
    println!(
        "The full pipeline: JWT (RS256, real issuer) + Cedar on arguments + grant check + durable audit + DLP on a {PAYLOAD}-byte result with findings + a vault credential"
    );
    for (kind, extra) in FIXTURES {
        let (_fixture, upstream) = procs::http_server(&bins.fixture, extra).await?;
        for era in eras_for(extra, eras) {
            let mut variants = vec![
                ("warden core".to_string(), CORE),
                ("warden full".into(), FULL),
            ];
            if parts {
                for (name, s) in less_one() {
                    variants.push((format!("full − {name}"), s));
                }
            }
            let mut keep = Vec::new();
            let mut paths = vec![Path::new("direct", upstream, None, Vec::new())];
            let (nginx, nginx_addr) = nginx::start(&bins.nginx, upstream).await?;
            paths.push(Path::new("nginx", nginx_addr, None, nginx.pids()));
            for (name, stages) in variants {
                let (service, addr) = warden(bins, upstream, &idp.issuer, stages).await?;
                let token = token(&idp, addr, stages);
                paths.push(Path::new(&name, addr, token, vec![service.pid]));
                keep.push(service);
            }
            measure(settings, &mut paths, era, &text).await?;
            report(kind, era, &paths);
            // After measuring, beside the full pipeline's audit log (the first audited Warden).
            let full_dir = keep.get(1).and_then(|s| s.dir.as_ref());
            if let Some(dir) = full_dir {
                match crate::disk::durable_write(dir.path()) {
                    Ok(disk) => println!(
                        "  this disk, idle: {disk}; a call waits for two in series: at least {:.0} µs at p50 and about {:.0} µs at p99 from the disk alone",
                        2.0 * disk.p50,
                        disk.p50 + disk.p99
                    ),
                    Err(e) => eprintln!("warden-bench: no durable-write probe: {e}"),
                }
            }
            drop((keep, nginx));
        }
    }
    Ok(())
}

impl Path {
    fn new(name: &str, addr: SocketAddr, token: Option<String>, pids: Vec<u32>) -> Path {
        Path {
            tool: if through_warden(name) {
                "fx__echo"
            } else {
                "echo"
            },
            name: name.to_string(),
            addr,
            token,
            pids,
            callers: Vec::new(),
            saturated: Outcome::default(),
            single: Outcome::default(),
            open: Outcome::default(),
            cpu: Duration::ZERO,
            single_cpu: Duration::ZERO,
            single_switches: 0,
        }
    }
}

fn through_warden(name: &str) -> bool {
    name != "direct" && name != "nginx"
}

/// Closed loop with every client (throughput), with one (latency), open loop at the rate
/// (tail latency), each in slices alternating between the paths.
async fn measure(
    settings: &Settings,
    paths: &mut [Path],
    era: Era,
    text: &Arc<str>,
) -> anyhow::Result<()> {
    let slice = settings.duration / settings.rounds.max(1);
    for p in paths.iter_mut() {
        let callers = p.callers(settings.clients, era, text).await?;
        let (callers, warm) = load::closed(callers, settings.warmup).await;
        if warm.errors > 0 {
            bail!(
                "{}: {} calls failed: {:?}",
                p.name,
                warm.errors,
                warm.first_error
            );
        }
        p.callers = callers;
    }
    for _ in 0..settings.rounds {
        for p in paths.iter_mut() {
            let before = cpu(&p.pids)?;
            let (callers, o) = load::closed(std::mem::take(&mut p.callers), slice).await;
            p.cpu += cpu(&p.pids)? - before;
            p.callers = callers;
            p.saturated.merge(o);
        }
    }
    for _ in 0..settings.rounds {
        for p in paths.iter_mut() {
            let one = p.callers.split_off(p.callers.len() - 1);
            let (cpu_before, switches_before) = (cpu(&p.pids)?, switches(&p.pids)?);
            let (one, o) = load::closed(one, slice).await;
            p.single_cpu += cpu(&p.pids)? - cpu_before;
            // A thread that ended in the slice takes its count with it (see `context_switches`).
            p.single_switches += switches(&p.pids)?.saturating_sub(switches_before);
            p.callers.extend(one);
            p.single.merge(o);
        }
    }
    for _ in 0..settings.rounds {
        for p in paths.iter_mut() {
            let (callers, o) =
                load::open(std::mem::take(&mut p.callers), settings.rate, slice).await;
            p.callers = callers;
            p.open.merge(o);
        }
    }
    for p in paths.iter() {
        for (phase, o) in [
            ("closed", &p.saturated),
            ("one client", &p.single),
            ("open", &p.open),
        ] {
            if o.errors > 0 {
                bail!(
                    "{} ({phase}): {} calls failed: {:?}",
                    p.name,
                    o.errors,
                    o.first_error
                );
            }
        }
    }
    Ok(())
}

/// The CPU time of the processes `pids`, together.
fn cpu(pids: &[u32]) -> anyhow::Result<Duration> {
    pids.iter().map(|&pid| procs::cpu_time(pid)).sum()
}

/// The context switches of the processes `pids`, together.
fn switches(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|&pid| procs::context_switches(pid)).sum()
}

fn report(kind: &str, era: Era, paths: &[Path]) {
    println!("\n{kind} {}:", era.as_str());
    println!(
        "  {:<18} {:>9} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8}",
        "path",
        "calls/s",
        "p50 1 cl",
        "p50 load",
        "p99 open",
        "p50 open",
        "CPU/call",
        "CPU 1 cl",
        "cs 1 cl"
    );
    for p in paths {
        // The proxy's own processes: none for direct.
        let (cpu, single_cpu, single_switches) = if p.pids.is_empty() {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else {
            let single = p.single.ok.max(1) as f64;
            (
                format!(
                    "{:.0} µs",
                    p.cpu.as_secs_f64() * 1e6 / p.saturated.ok.max(1) as f64
                ),
                format!("{:.0} µs", p.single_cpu.as_secs_f64() * 1e6 / single),
                format!("{:.1}", p.single_switches as f64 / single),
            )
        };
        println!(
            "  {:<18} {:>9.0} {:>6.0} µs {:>7.0} µs {:>7.0} µs {:>7.0} µs {:>9} {:>9} {:>8}",
            p.name,
            p.saturated.rps(),
            p.single.micros(50.0),
            p.saturated.micros(50.0),
            p.open.micros(99.0),
            p.open.micros(50.0),
            cpu,
            single_cpu,
            single_switches
        );
    }
    let find = |n: &str| paths.iter().find(|p| p.name == n);
    let (Some(direct), Some(nginx), Some(full)) =
        (find("direct"), find("nginx"), find("warden full"))
    else {
        return;
    };
    let ratio = full.saturated.rps() / nginx.saturated.rps().max(1.0);
    let added = full.single.micros(50.0) - direct.single.micros(50.0);
    let p99 = full.open.micros(99.0);
    let verdict = |ok: bool| if ok { "ok" } else { "MISS" };
    println!(
        "  full pipeline: throughput {:.2} of nginx's (target ≥ {THROUGHPUT_VS_NGINX}): {}; adds {added:.0} µs p50 at one client (target ≤ {ADDED_P50_US}): {}; p99 {p99:.0} µs at the open-loop rate (target ≤ {P99_AT_RATE_US}): {}",
        ratio,
        verdict(ratio >= THROUGHPUT_VS_NGINX),
        verdict(added <= ADDED_P50_US),
        verdict(p99 <= P99_AT_RATE_US),
    );
    if paths.len() > 4 {
        println!(
            "  what each stage costs (p50 at one client and CPU per call of the full pipeline, less the same without it):"
        );
        let per_call = |p: &Path| p.cpu.as_secs_f64() * 1e6 / p.saturated.ok.max(1) as f64;
        for p in paths.iter().filter(|p| p.name.starts_with("full −")) {
            println!(
                "    {:<12} {:>6.0} µs p50, {:>6.0} µs CPU",
                p.name.trim_start_matches("full − "),
                full.single.micros(50.0) - p.single.micros(50.0),
                per_call(full) - per_call(p)
            );
        }
    }
}
