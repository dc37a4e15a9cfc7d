//! Throughput of the DLP engine on one core, in MB/s (10^6 bytes per second).
//!
//! `cargo bench -p warden-dlp --bench scan` prints, for every built-in detector enabled:
//! - a 1 MiB mixed corpus (prose, code, logs, JSON) where one line in 8 (a finding every ~430
//!   bytes) or one line in 32 holds findings, scanned as one string and rewritten as a JSON array
//!   of lines (the clone of the array is included in the time);
//! - 1 MiB of text with no findings (prose and code);
//! - a tool result of 10 KiB of such text, as a gateway gets it: parsed, applied and written out
//!   again, against [`Engine::apply_json`] on its text, and that again with the thread idle for
//!   300 µs before each scan (as between a gateway's calls: the same work then takes longer).

use std::hint::black_box;
use std::time::{Duration, Instant};
use warden_dlp::{Engine, Rules};

const MIB: usize = 1 << 20;

const CLEAN: &[&str] = &[
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
    "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea.",
    "fn handle(request: Request) -> Result<Response, Error> { let body = request.body(); }",
    "    for (i, item) in items.iter().enumerate() { if item.len() > 42 { return None; } }",
    "{\"type\": \"text\", \"text\": \"The tool returned 3 results for the query about weather.\"}",
    "2026-12-02T06:00:00Z INFO warden_gateway: call finished status=200 latency_ms=12",
    "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat.",
    "import os; from pathlib import Path; config = load(Path.home() / \".config\" / \"app\")",
];

const FINDINGS: &[&str] = &[
    "Contact ann.smith@example.com or call +44 20 7946 0958 for the invoice.",
    "Card on file: 4111 1111 1111 1111, billing IBAN DE89 3704 0044 0532 0130 00.",
    "client connected from 192.168.10.20 with SSN 219-09-9988 in the form",
    "export AWS_ACCESS_KEY_ID=AKIAZ7VQ4XH2LMN3PQRS",
    "DATABASE_URL=postgres://app:S3cr3tPass@db.internal:5432/app",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "GITHUB_TOKEN=ghp_C3J27XDCG2LmlZGEONYlgCtjfIZ4SOcMz9CP and api_key: HrKFmAIhGaMybIcH6zIZKhFf",
];

/// A deterministic 1 MiB corpus: one line in `every` is a line with findings.
fn corpus(every: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut size, mut state, mut n) = (0, 0x2545_F491_u64, 0usize);
    while size < MIB {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pick = (state >> 33) as usize;
        let line = if every > 0 && n % every == 0 {
            FINDINGS[pick % FINDINGS.len()]
        } else {
            CLEAN[pick % CLEAN.len()]
        };
        size += line.len() + 1;
        lines.push(line.to_string());
        n += 1;
    }
    lines
}

fn measure(name: &str, bytes: usize, f: impl FnMut() -> usize) {
    measure_paced(name, bytes, Duration::ZERO, f);
}

/// Like [`measure`], with the thread asleep for `pause` before each run: in a gateway a scan
/// follows a wait for the network, and a core that was idle runs it slower than a loop does.
fn measure_paced(name: &str, bytes: usize, pause: Duration, mut f: impl FnMut() -> usize) {
    // `cargo bench -p warden-dlp --bench scan -- <filter>` runs only matching measurements.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    if filter.is_some_and(|f| !name.contains(&f)) {
        return;
    }
    let mut found = f();
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let t = Instant::now();
        found = black_box(f());
        times.push(t.elapsed().as_secs_f64());
    }
    // The machine may be shared: the median is what a loaded core gives, the best run what an
    // idle one gives.
    times.sort_by(f64::total_cmp);
    let mbps = |secs: f64| bytes as f64 / secs / 1e6;
    let (median, best) = (mbps(times[times.len() / 2]), mbps(times[0]));
    println!(
        "{name:<56} median {median:>6.0} MB/s  best {best:>6.0} MB/s  ({} runs, {found} findings)",
        times.len()
    );
}

fn main() {
    let engine = Engine::new(Rules::builtin([7; 32])).unwrap_or_else(|e| panic!("{e}"));
    let corpora = [
        ("mixed 1 MiB, 1 line in 8 with findings", 8),
        ("mixed 1 MiB, 1 line in 32 with findings", 32),
        ("no findings 1 MiB", 0),
    ];
    for (name, every) in corpora {
        let lines = corpus(every);
        let text = lines.join("\n");
        measure(&format!("{name}, scan_text"), text.len(), || {
            engine.scan_text(&text).len()
        });
        let mut reply = String::new();
        for line in &lines {
            if reply.len() + line.len() + 1 > 10 * 1024 {
                break;
            }
            reply.push_str(line);
            reply.push('\n');
        }
        let result = serde_json::json!({"content": [{"type": "text", "text": reply}]}).to_string();
        measure(
            &format!("{name}, 10 KiB result: parse, apply, write"),
            result.len(),
            || {
                let mut v: serde_json::Value = serde_json::from_str(&result).unwrap_or_default();
                let n = engine.apply(&mut v).findings.len();
                black_box(v.to_string());
                n
            },
        );
        measure(
            &format!("{name}, 10 KiB result: apply_json"),
            result.len(),
            || {
                let out = engine.apply_json(&result).unwrap_or_default();
                black_box(out.rewritten);
                out.outcome.findings.len()
            },
        );
        measure_paced(
            &format!("{name}, 10 KiB result: apply_json, 300 µs idle before"),
            result.len(),
            Duration::from_micros(300),
            || {
                engine
                    .apply_json(&result)
                    .unwrap_or_default()
                    .outcome
                    .findings
                    .len()
            },
        );
        let json =
            serde_json::Value::Array(lines.into_iter().map(serde_json::Value::String).collect());
        measure(
            &format!("{name}, apply (JSON array, clone included)"),
            text.len(),
            || {
                let mut v = json.clone();
                engine.apply(&mut v).findings.len()
            },
        );
    }
}
