//! `warden-bench --train`: runs one Warden after another over the call paths that matter for speed,
//! so that a build made with `-Cprofile-generate` records a profile of them. The
//! profile-guided build in `scripts/release-build` uses it. The paths are the core path (a test
//! principal, no audit, no DLP) and the full pipeline of `--full` (JWT, a grant check, durable
//! audit, DLP with findings, a vault credential). Each runs in front of the fixture with JSON
//! replies, in the eras of `--era` (both by default), and with every legacy reply as SSE. Each
//! Warden is stopped with SIGTERM, as a service manager stops it: an instrumented build writes
//! its profile when it exits, and one that does not stop cleanly fails the run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use warden_mcp::era::Era;

use crate::client::Caller;
use crate::full::{self, CORE, FULL, Stages};
use crate::{Binaries, Settings, load, procs};

/// How long a Warden may take to stop on SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);

pub async fn run(settings: &Settings, bins: &Binaries, eras: &[Era]) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let idp = warden_gateway::devidp::DevIdp::start(listener).await?;
    let payload: Arc<str> = Arc::from(crate::dlp::payload_of(full::PAYLOAD, 8));
    let echo: Arc<str> = Arc::from(crate::wire::ECHO_TEXT);
    println!(
        "Training {}: {} clients, {:.1} s per path",
        bins.warden.display(),
        settings.clients,
        settings.duration.as_secs_f64()
    );
    for (kind, extra) in full::FIXTURES {
        let (_fixture, upstream) = procs::http_server(&bins.fixture, extra).await?;
        for era in full::eras_for(extra, eras) {
            for (what, stages, text) in [("core", CORE, &echo), ("full", FULL, &payload)] {
                let path = format!("{kind}, {}, {what}", era.as_str());
                let outcome = drive(settings, bins, upstream, &idp, era, stages, text)
                    .await
                    .with_context(|| format!("training on {path}"))?;
                if let Some(e) = outcome.first_error {
                    bail!("a call through Warden ({path}) failed: {e}");
                }
                println!("  {path}: {} calls", outcome.ok);
            }
        }
    }
    Ok(())
}

/// One Warden with `stages`, under every client for the phase's duration, then stopped.
async fn drive(
    settings: &Settings,
    bins: &Binaries,
    upstream: std::net::SocketAddr,
    idp: &warden_gateway::devidp::DevIdp,
    era: Era,
    stages: Stages,
    text: &Arc<str>,
) -> anyhow::Result<load::Outcome> {
    let (service, addr) = full::warden(bins, upstream, &idp.issuer, stages).await?;
    let token = full::token(idp, addr, stages);
    let driven = async {
        let mut callers = Vec::with_capacity(settings.clients);
        for _ in 0..settings.clients {
            let caller = Caller::http_full(addr, era, "fx__echo", text.clone(), token.clone());
            callers.push(caller.await?);
        }
        anyhow::Ok(load::closed(callers, settings.duration).await.1)
    }
    .await;
    // Stopped in any case: killed instead (on drop), an instrumented Warden writes no profile.
    let stopped = service.stop(STOP_WITHIN).await.context("stopping Warden");
    let outcome = driven?;
    stopped?;
    Ok(outcome)
}
