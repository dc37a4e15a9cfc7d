//! Durable appends per second and append-to-durable latency, with 1 KiB records from 16
//! concurrent appenders, on a real directory on disk (under the target directory), with the
//! default options (so checkpoints are signed and written as in production).
//!
//! Three shapes of appender:
//! - `16x_closed_loop`: each appender waits for its record to be durable before the next (a
//!   gateway with 16 calls in flight);
//! - `16x_window64`: each appender keeps 64 appends in flight (a gateway with 1024 calls in
//!   flight, 16 threads driving them);
//! - `1x_closed_loop`: one appender waiting for each record (a gateway with one call in flight:
//!   what one durable point costs in the log itself, hand-offs included).
//!
//! The closed loops run twice: appending with `Log::append` (every record handed to the
//! writer thread) and with `Log::append_now` (`_now`: an appender that finds the log idle
//! commits its record itself).
//!
//! `cargo bench -p warden-audit --bench append`; `WARDEN_BENCH_SECS` sets each run's length
//! (default 5).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use warden_audit::{Kind, Log, Options, Record, Signer};

const APPENDERS: usize = 16;
const RECORD_BYTES: usize = 1024;

fn record(i: u64) -> Record {
    let mut r = Record::new(Kind::Response, "2025-06-01T12:00:00.000Z".to_string());
    r.call = Some(format!("call-{i:016x}"));
    r.principal = Some("alice@example.com".into());
    r.upstream = Some("bank".into());
    r.method = Some("tools/call".into());
    r.name = Some("bank.transfer".into());
    r.latency_us = Some(1234);
    r.outcome = Some("ok".into());
    r.detail = json!({ "result": "" });
    let padding = RECORD_BYTES.saturating_sub(r.to_bytes().len() + 5); // seqs reach 6 digits
    r.detail = json!({ "result": "x".repeat(padding) });
    r
}

struct Run {
    records: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

fn run(appenders: usize, window: usize, now: bool, secs: u64) -> Run {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tmp = tempfile::tempdir_in(base).expect("a temp dir on disk");
    let signer = Signer::from_seed("bench.warden/audit", [5; 32]).expect("key");
    let log = Arc::new(
        Log::open(tmp.path(), signer, "bench.warden/audit", Options::default()).expect("open"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut in_flight = VecDeque::with_capacity(window);
                let mut i = (t as u64) << 40;
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let durable = if now {
                        log.append_now(record(i))
                    } else {
                        log.append(record(i))
                    };
                    in_flight.push_back((at, durable));
                    i += 1;
                    if in_flight.len() >= window {
                        let (at, durable) = in_flight.pop_front().expect("non-empty");
                        durable.wait().expect("durable");
                        latencies.push(at.elapsed().as_micros() as u64);
                    }
                }
                for (at, durable) in in_flight {
                    durable.wait().expect("durable");
                    latencies.push(at.elapsed().as_micros() as u64);
                }
                latencies
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("appender"))
        .collect();
    let elapsed = started.elapsed();
    let records = latencies_us.len() as u64;
    Arc::try_unwrap(log)
        .expect("appenders done")
        .close()
        .expect("close");
    latencies_us.sort_unstable();
    Run {
        records,
        elapsed,
        latencies_us,
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or(0) as f64 / 1000.0
}

fn main() {
    let secs = std::env::var("WARDEN_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("record_bytes: {} bytes", record(1 << 50).to_bytes().len());
    for (appenders, name, window, now) in [
        (APPENDERS, "closed_loop", 1, false),
        (APPENDERS, "closed_loop_now", 1, true),
        (APPENDERS, "window64", 64, false),
        (1, "closed_loop", 1, false),
        (1, "closed_loop_now", 1, true),
    ] {
        let r = run(appenders, window, now, secs);
        let rate = r.records as f64 / r.elapsed.as_secs_f64();
        let name = format!("append_1k_{appenders}x_{name}");
        println!("{name}_durable: {rate:.0} records/s");
        println!("{name}_p50: {:.3} ms", percentile(&r.latencies_us, 0.50));
        println!("{name}_p99: {:.3} ms", percentile(&r.latencies_us, 0.99));
        println!("{name}_records: {} records", r.records);
    }
}
