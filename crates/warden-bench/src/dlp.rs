//! `warden-bench --dlp`: the latency DLP adds to a call returning 10 KiB. One upstream (the
//! fixture over HTTP, JSON replies), two Wardens side by side — DLP off, and DLP on with its
//! default rules for results (arguments off: the echo tool sends the same 10 KiB out, and the
//! figure is that of the result) — audit off in both, and one client calling `echo` with
//! 10 KiB of prose and log lines. Three texts: without findings, and with personal data
//! (e-mail addresses, card numbers, phone numbers, IPv4 addresses) on one line in 32 and on one
//! line in 8. The reply comes back masked.
//!
//! Slices of the closed loop alternate between the two Wardens so that drift of the machine
//! hits both; the difference of their median latencies is what DLP adds. The median of the
//! differences between neighbouring slices is printed too (less moved by drift that outlasts a
//! slice), and the CPU time per call each Warden process spent.

use std::sync::Arc;

use anyhow::bail;
use warden_mcp::era::Era;

use crate::client::Caller;
use crate::procs::{self, Audit, Upstream};
use crate::{Binaries, Settings, load, wire};

/// The size of the echoed text.
const PAYLOAD: usize = 10 * 1024;
/// What DLP may add to the median latency of such a call (issue 11).
const TARGET_US: f64 = 50.0;
/// The `[dlp]` of the Warden with DLP: defaults for results, nothing on arguments.
pub const DLP_RESULTS: &str = "arguments = { default = \"off\" }";

/// 10 KiB of mixed text that starts with [`wire::ECHO_TEXT`] (which masking leaves alone), with
/// personal data on one line in `every` (none for 0).
pub fn payload(every: usize) -> String {
    payload_of(PAYLOAD, every)
}

/// `size` bytes of such text.
pub fn payload_of(size: usize, every: usize) -> String {
    let findings = [
        "contact jane.doe@example.com about the renewal",
        "card on file 4111 1111 1111 1111 expires 09/29",
        "call back on +44 20 7946 0958 after lunch",
        "request from 10.24.8.17 was throttled",
    ];
    let plain = [
        "The quarterly report is attached; numbers are final after review.",
        "2026-12-02T08:00:00Z INFO worker-3 processed batch 8812 in 41 ms",
        "Please update the onboarding checklist before Friday's session.",
        "GET /api/v2/items?page=7 200 12ms user-agent=curl/8.5",
        "Meeting notes: agreed to ship the migration behind a flag.",
        "2026-12-02T08:00:01Z WARN cache miss ratio above 0.30 for shard 5",
        "The build finished; artifacts are in the usual bucket.",
    ];
    let mut text = format!("{}\n", wire::ECHO_TEXT);
    let mut i = 0;
    while text.len() < size {
        let line = if every > 0 && i % every == every - 1 {
            findings[(i / every) % findings.len()]
        } else {
            plain[i % plain.len()]
        };
        text.push_str(line);
        text.push('\n');
        i += 1;
    }
    let cut = text[..size].trim_end_matches(|c: char| c != '\n').len();
    text.truncate(cut);
    text
}

pub async fn run(settings: &Settings, bins: &Binaries, eras: &[Era]) -> anyhow::Result<()> {
    println!("DLP on a call returning 10 KiB (results: default rules), one client");
    let (_fixture, addr) = procs::http_server(&bins.fixture, &[]).await?;
    let upstream = Upstream::Http(addr);
    let (off_service, off_addr) =
        procs::warden(&bins.warden, &upstream, Audit::Off, procs::DLP_OFF).await?;
    let (on_service, on_addr) =
        procs::warden(&bins.warden, &upstream, Audit::Off, DLP_RESULTS).await?;
    let (off_pid, on_pid) = (off_service.pid, on_service.pid);
    for (every, what) in [(0, "no findings"), (32, "1 line in 32"), (8, "1 line in 8")] {
        let text: Arc<str> = Arc::from(payload(every));
        for &era in eras {
            let tool = &settings.through_tool;
            let mut off = vec![Caller::http_with_text(off_addr, era, tool, text.clone()).await?];
            let mut on = vec![Caller::http_with_text(on_addr, era, tool, text.clone()).await?];
            (off, _) = load::closed(off, settings.warmup).await;
            (on, _) = load::closed(on, settings.warmup).await;
            let slice = settings.duration / settings.rounds.max(1);
            let (mut without, mut with) = (load::Outcome::default(), load::Outcome::default());
            let (mut cpu_off, mut cpu_on) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
            // The difference of the medians of each pair of neighbouring slices: drift of the
            // machine that outlasts a slice does not enter it.
            let mut paired = Vec::new();
            for _ in 0..settings.rounds {
                let before = procs::cpu_time(off_pid)?;
                let (callers, o_off) = load::closed(off, slice).await;
                cpu_off += procs::cpu_time(off_pid)? - before;
                off = callers;
                let before = procs::cpu_time(on_pid)?;
                let (callers, o_on) = load::closed(on, slice).await;
                cpu_on += procs::cpu_time(on_pid)? - before;
                on = callers;
                paired.push(o_on.micros(50.0) - o_off.micros(50.0));
                without.merge(o_off);
                with.merge(o_on);
            }
            paired.sort_by(f64::total_cmp);
            let paired = paired.get(paired.len() / 2).copied().unwrap_or(f64::NAN);
            let per_call = |cpu: std::time::Duration, o: &load::Outcome| {
                cpu.as_secs_f64() * 1e6 / o.ok.max(1) as f64
            };
            let cpu_added = per_call(cpu_on, &with) - per_call(cpu_off, &without);
            for (name, o) in [("dlp off", &without), ("dlp on", &with)] {
                if o.errors > 0 {
                    bail!("{name}: {} calls failed: {:?}", o.errors, o.first_error);
                }
            }
            let added = with.micros(50.0) - without.micros(50.0);
            let verdict = if added <= TARGET_US { "ok" } else { "MISS" };
            println!(
                "  {what:<13} {:<6} off p50 {:>6.1} µs | on p50 {:>6.1} µs p99 {:>7.1} µs | DLP adds {added:>6.1} µs p50 (target ≤ {TARGET_US} µs): {verdict}; median of paired slices {paired:+.1} µs; CPU per call +{cpu_added:.1} µs",
                era.as_str(),
                without.micros(50.0),
                with.micros(50.0),
                with.micros(99.0),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payloads_are_10_kib_of_echo_text() {
        for every in [0, 32, 8] {
            let p = payload(every);
            assert!(p.len() <= PAYLOAD && p.len() > PAYLOAD - 80, "{}", p.len());
            assert!(p.starts_with(wire::ECHO_TEXT));
            assert_eq!(p.contains("4111 1111 1111 1111"), every > 0);
        }
    }
}
