//! What a response record with a tool result and its DLP findings costs to build and write
//! out: the result and the findings as values (the result parsed from the reply's text and
//! copied into the record, the findings built as objects; both serialised and dropped by the
//! log's writer: how they were recorded before) against as text (the result as it arrived,
//! [`Record::set_text_member`]; the findings written out once, where they are made,
//! [`Record::set_serialized_member`]). The result is the full pipeline bench's: 1 KiB of text
//! lines, one in 8 with personal data masked (a finding each), and a 10 KiB one. Prints
//! figures; asserts only that both ways record the same values.
//!
//! `cargo bench -p warden-audit --bench record`

use std::hint::black_box;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use warden_audit::{Kind, Record};

const ROUNDS: usize = 20_000;

/// A DLP finding as the gateway records it.
#[derive(Serialize)]
struct Found {
    direction: &'static str,
    detector: String,
    path: String,
    action: &'static str,
}

/// A tool result of about `bytes` of text, one line in 8 carrying a masked address, and its
/// findings.
fn result_text(bytes: usize) -> (String, Vec<Found>) {
    let mut text = String::new();
    let mut found = Vec::new();
    let mut line = 0;
    while text.len() < bytes {
        if line % 8 == 7 {
            text.push_str("contact: [EMAIL] about order 88231\n");
            found.push(Found {
                direction: "results",
                detector: "email".into(),
                path: "$.content[0].text".into(),
                action: "mask",
            });
        } else {
            text.push_str("shipment 4471 left the depot at 09:40 \"on time\"\n");
        }
        line += 1;
    }
    let result = json!({ "content": [{ "type": "text", "text": text }], "isError": false });
    (result.to_string(), found)
}

fn base() -> Record {
    let mut r = Record::new(Kind::Response, "2026-12-05T20:00:00.000Z".into());
    r.call = Some("5f0c2a91-17".into());
    r.principal = Some("alice".into());
    r.upstream = Some("fx".into());
    r.method = Some("tools/call".into());
    r.name = Some("fx__echo".into());
    r.latency_us = Some(180);
    r.outcome = Some("ok".into());
    r
}

fn as_values(text: &str, found: &[Found]) -> Vec<u8> {
    let parsed: Value = serde_json::from_str(text).expect("a result");
    let mut r = base();
    r.detail = json!({ "result": parsed.clone() });
    let found = found.iter().map(|f| {
        json!({ "direction": f.direction, "detector": f.detector, "path": f.path, "action": f.action })
    });
    r.detail["dlp"] = Value::Array(found.collect());
    r.to_bytes()
}

fn as_text(text: &str, found: &[Found]) -> Vec<u8> {
    let mut r = base();
    r.set_text_member("result", text).expect("a result");
    r.set_serialized_member("dlp", &found).expect("findings");
    r.to_bytes()
}

/// Nanoseconds per record at the median of 9 runs.
fn time(f: impl Fn() -> Vec<u8>) -> f64 {
    let mut runs: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                black_box(f());
            }
            start.elapsed().as_nanos() as f64 / ROUNDS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    println!(
        "response record with a tool result and its findings, built and written out (ns per record, median of 9 runs)"
    );
    for bytes in [1024, 10 * 1024] {
        let (text, found) = result_text(bytes);
        let (v, t) = (as_values(&text, &found), as_text(&text, &found));
        assert_eq!(
            Record::from_bytes(&v).expect("readable").detail,
            Record::from_bytes(&t).expect("readable").detail,
            "both ways record the same values"
        );
        let values = time(|| as_values(black_box(&text), &found));
        let kept = time(|| as_text(black_box(&text), &found));
        println!(
            "  result of {:>6} bytes, {:>2} findings: as values {:>8.0} ns, as text {:>8.0} ns ({:+.0} %)",
            text.len(),
            found.len(),
            values,
            kept,
            100.0 * (kept - values) / values
        );
    }
}
