//! What a response record with a tool result costs to build and write out, the result kept as
//! a value (parsed from the reply's text, copied into the record, serialised, dropped: how
//! every result was recorded before) against kept as the text it arrived as
//! ([`Record::set_text_member`]). The result is the full pipeline bench's: 1 KiB of text lines,
//! one in 8 with personal data masked, and a 10 KiB one. Prints figures; asserts only that
//! both ways record the same value.
//!
//! `cargo bench -p warden-audit --bench record`

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};
use warden_audit::{Kind, Record};

const ROUNDS: usize = 20_000;

/// A tool result of about `bytes` of text, one line in 8 carrying a masked address.
fn result_text(bytes: usize) -> String {
    let mut text = String::new();
    let mut line = 0;
    while text.len() < bytes {
        if line % 8 == 7 {
            text.push_str("contact: [EMAIL] about order 88231\n");
        } else {
            text.push_str("shipment 4471 left the depot at 09:40 \"on time\"\n");
        }
        line += 1;
    }
    json!({ "content": [{ "type": "text", "text": text }], "isError": false }).to_string()
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

fn as_value(text: &str) -> Vec<u8> {
    let parsed: Value = serde_json::from_str(text).expect("a result");
    let mut r = base();
    r.detail = json!({ "result": parsed.clone() });
    r.detail["dlp"] = json!([{ "direction": "results", "detector": "email", "action": "mask" }]);
    r.to_bytes()
}

fn as_text(text: &str) -> Vec<u8> {
    let mut r = base();
    r.detail =
        json!({ "dlp": [{ "direction": "results", "detector": "email", "action": "mask" }] });
    r.set_text_member("result", text).expect("a result");
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
        "response record with a tool result, built and written out (ns per record, median of 9 runs)"
    );
    for bytes in [1024, 10 * 1024] {
        let text = result_text(bytes);
        let (v, t) = (as_value(&text), as_text(&text));
        assert_eq!(
            Record::from_bytes(&v).expect("readable").detail,
            Record::from_bytes(&t).expect("readable").detail,
            "both ways record the same value"
        );
        let value = time(|| as_value(black_box(&text)));
        let kept = time(|| as_text(black_box(&text)));
        println!(
            "  result of {:>6} bytes: as a value {:>8.0} ns, as text {:>8.0} ns ({:+.0} %)",
            text.len(),
            value,
            kept,
            100.0 * (kept - value) / value
        );
    }
}
