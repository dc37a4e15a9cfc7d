//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use warden_audit::{Kind, Log, Options, Record, Signer, Verifier};

pub const ORIGIN: &str = "warden.test/audit";

/// The test log's signing key (fixed, so runs are reproducible).
pub fn signer() -> Signer {
    Signer::from_seed(ORIGIN, [1; 32]).expect("a valid key name")
}

pub fn verifier() -> Verifier {
    signer().verifier()
}

/// Options that never checkpoint on their own during a test.
pub fn quiet() -> Options {
    Options {
        checkpoint_every: u64::MAX,
        checkpoint_interval: Duration::from_secs(3600),
        clock: std::sync::Arc::new(|| "2025-06-01T12:00:00.000Z".to_string()),
        ..Options::default()
    }
}

pub fn open(dir: &Path) -> Log {
    Log::open(dir, signer(), ORIGIN, quiet()).expect("the log opens")
}

pub fn record(i: u64) -> Record {
    let mut r = Record::new(Kind::Request, "2025-06-01T12:00:00.000Z".to_string());
    r.call = Some(format!("call-{i}"));
    r.name = Some("bank.transfer".to_string());
    r.detail = json!({"amount": i});
    r
}

/// Appends `n` records, all queued before waiting for any.
pub fn fill(log: &Log, n: u64) {
    let pending: Vec<_> = (0..n).map(|i| log.append(record(i))).collect();
    for p in pending {
        p.wait().expect("durable");
    }
}

/// A closed log in `dir` with `n` appended records plus its start record, checkpointed.
pub fn closed_log(dir: &Path, n: u64) {
    let log = open(dir);
    fill(&log, n);
    log.close().expect("closes");
}

/// The log's segment files, in order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .expect("segments dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
}

/// The offsets and lengths of the frames of a segment.
pub fn frames(path: &Path) -> Vec<(usize, usize)> {
    let data = fs::read(path).expect("segment");
    let mut at = 0;
    let mut out = Vec::new();
    while at + 4 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, len + 8));
        at += len + 8;
    }
    out
}

/// A segment frame for `record` (for planting records as another writer would).
pub fn frame(record: &Record) -> Vec<u8> {
    let bytes = record.to_bytes();
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
    out
}

/// Copies a log directory (for rollback tests).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}
