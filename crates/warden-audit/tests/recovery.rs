//! Crash recovery: what `Log::open` cuts, what it refuses, and a killed writer losing nothing
//! it acknowledged.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use warden_audit::{Error, Kind, Log, Record, VerifyError, verify_dir};

/// A closed log of `n` requests plus the start record, and the frame the next append would
/// write (seq `n + 1`), which a crash may leave torn.
fn log_and_next_frame(dir: &Path, n: u64) -> Vec<u8> {
    closed_log(dir, n);
    let mut next = Record::new(Kind::Request, "2025-06-01T12:00:00.000Z".into());
    next.seq = n + 1;
    frame(&next)
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut data = fs::read(path).unwrap();
    data.extend_from_slice(bytes);
    fs::write(path, data).unwrap();
}

/// What a torn tail leaves that is not indistinguishable from preallocated space: its bytes up
/// to the last one that is not zero.
fn written(torn: &[u8]) -> &[u8] {
    &torn[..torn.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)]
}

fn assert_cut(dir: &Path, records_before: u64, torn: &[u8]) {
    let seg = segments(dir)[0].clone();
    let clean_len = fs::metadata(&seg).unwrap().len() - torn.len() as u64;
    if written(torn).is_empty() {
        // Only zeros: unwritten space, as a preallocated segment has; nothing is cut.
        assert_unwritten(dir, records_before, clean_len);
        return;
    }
    let torn = written(torn);
    let log = Log::open(dir, signer(), ORIGIN, quiet()).expect("a torn tail is cut, not refused");
    assert_eq!(log.size(), records_before + 2, "log_cut and start appended");
    log.close().unwrap();
    let audited = warden_audit::AuditedLog::open(dir, &verifier(), None, Default::default())
        .expect("verifies");
    let cut = audited.record(records_before).unwrap();
    assert_eq!(cut.kind, Kind::LogCut);
    assert_eq!(cut.detail["segment"], "00000000000000000000.seg");
    assert_eq!(cut.detail["offset"], clean_len);
    assert_eq!(cut.detail["bytes"], torn.len() as u64);
    assert_eq!(cut.detail["seq"], records_before);
    let saved = dir.join(cut.detail["saved"].as_str().unwrap());
    assert_eq!(fs::read(saved).unwrap(), torn, "the cut bytes are kept");
    assert_eq!(
        audited.record(records_before + 1).unwrap().kind,
        Kind::Start
    );
}

#[test]
fn torn_tails_of_every_length_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let next = log_and_next_frame(&pristine, 2);
    // Partial length prefix (1–3 bytes), partial record, partial checksum (up to len - 1).
    for len in 1..next.len() {
        let dir = tmp.path().join(format!("torn-{len}"));
        copy_dir(&pristine, &dir);
        append_bytes(&segments(&dir)[0], &next[..len]);
        assert_cut(&dir, 3, &next[..len]);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_whole_last_frame_with_a_bad_checksum_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let mut next = log_and_next_frame(&dir, 2);
    let last = next.len() - 1;
    next[last] ^= 0xff;
    append_bytes(&segments(&dir)[0], &next);
    assert_cut(&dir, 3, &next);
}

/// The log opens over a zero tail without cutting anything, goes on after its frames, and
/// keeps only its frames once closed.
fn assert_unwritten(dir: &Path, records_before: u64, frames_len: u64) {
    let log = Log::open(dir, signer(), ORIGIN, quiet()).expect("zeros are unwritten space");
    assert_eq!(
        log.size(),
        records_before + 1,
        "only a start record appended"
    );
    log.close().unwrap();
    let audited = warden_audit::AuditedLog::open(dir, &verifier(), None, Default::default())
        .expect("verifies");
    assert_eq!(audited.record(records_before).unwrap().kind, Kind::Start);
    let seg = segments(dir)[0].clone();
    let last = frames(&seg).last().map(|(o, _)| *o as u64).unwrap();
    assert!(
        last >= frames_len,
        "the start record was written after the old frames"
    );
    assert!(!dir.join("cut").exists(), "nothing cut");
}

#[test]
fn a_zero_filled_tail_is_unwritten_space() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 2);
    let clean_len = fs::metadata(&segments(&dir)[0]).unwrap().len();
    append_bytes(&segments(&dir)[0], &[0; 4096]);
    assert_unwritten(&dir, 3, clean_len);
}

#[test]
fn a_torn_frame_in_preallocated_space_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let next = log_and_next_frame(&dir, 2);
    // Part of the next frame, then the zeros of preallocated space.
    let mut torn = next[..next.len() - 3].to_vec();
    torn.extend_from_slice(&[0; 4096]);
    append_bytes(&segments(&dir)[0], &torn);
    assert_cut(&dir, 3, &torn);
}

#[test]
fn corruption_in_the_middle_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 5);
    let seg = segments(&dir)[0].clone();
    let (offset, _) = frames(&seg)[2];
    let mut data = fs::read(&seg).unwrap();
    data[offset + 6] ^= 1;
    fs::write(&seg, &data).unwrap();
    let err = Log::open(&dir, signer(), ORIGIN, quiet()).expect_err("refused");
    let Error::Damaged(finding) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**finding, VerifyError::BadFrame { seq: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.starts_with("refusing to open the audit log"), "{text}");
    assert!(text.contains(&format!("at byte {offset}")), "{text}");
    assert_eq!(fs::read(&seg).unwrap(), data, "nothing was cut");
}

#[test]
fn a_damaged_last_frame_that_a_checkpoint_covers_is_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 5);
    let seg = segments(&dir)[0].clone();
    let mut data = fs::read(&seg).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1; // the acknowledged, checkpointed last record's checksum
    fs::write(&seg, &data).unwrap();
    let err = Log::open(&dir, signer(), ORIGIN, quiet()).expect_err("refused");
    let Error::Damaged(finding) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            **finding,
            VerifyError::MissingRecords {
                size: 6,
                records: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fs::read(&seg).unwrap(), data, "nothing was cut");
}

#[test]
fn a_checkpoint_whose_root_does_not_match_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 3);
    let other = tmp.path().join("other");
    let log = open(&other);
    for i in 0..4 {
        let mut r = record(i);
        r.outcome = Some("rewritten".into());
        log.append_blocking(r).unwrap();
    }
    log.close().unwrap(); // more records, other contents, same key
    fs::copy(
        other.join("segments/00000000000000000000.seg"),
        segments(&dir)[0].clone(),
    )
    .unwrap();
    let err = Log::open(&dir, signer(), ORIGIN, quiet()).expect_err("refused");
    assert!(err.to_string().contains("records give"), "{err}");
}

#[test]
fn reopening_keeps_everything_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 7);
    let log = open(&dir);
    assert_eq!(log.size(), 9, "8 records before plus a new start record");
    fill(&log, 3);
    log.close().unwrap();
    let report = verify_dir(&dir, &verifier(), None).unwrap();
    assert_eq!((report.records, report.unsigned_tail), (12, 0));
}

#[test]
fn another_key_or_origin_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 1);
    let other = warden_audit::Signer::from_seed(ORIGIN, [9; 32]).unwrap();
    let err = Log::open(&dir, other, ORIGIN, quiet()).expect_err("another key");
    assert!(err.to_string().contains("not signed by key"), "{err}");
    let err = Log::open(&dir, signer(), "elsewhere/log", quiet()).expect_err("another origin");
    assert!(err.to_string().contains("origin"), "{err}");
}

const CHILD_DIR: &str = "WARDEN_AUDIT_TEST_CHILD_DIR";

/// In the child: append from 4 threads forever, printing each acknowledged seq.
#[test]
fn killed_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let log = std::sync::Arc::new(open(Path::new(&dir)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let mut r = record(i);
                    r.call = Some(format!("t{t}-{i}"));
                    let seq = log.append_blocking(r).expect("durable");
                    println!("ack {seq} t{t}-{i}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// The process writing the log is killed mid-stream: every record it acknowledged is there.
#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let (seq, call) = rest.split_once(' ').unwrap();
            acked.push((seq.parse::<u64>().unwrap(), call.to_string()));
            if acked.len() == 1500 {
                child.kill().unwrap(); // SIGKILL: no close, no final checkpoint
                break;
            }
        }
    }
    child.wait().unwrap();
    let log = open(&dir);
    log.close().unwrap();
    let audited = warden_audit::AuditedLog::open(&dir, &verifier(), None, Default::default())
        .expect("the log verifies after the crash and a restart");
    for (seq, call) in &acked {
        assert_eq!(
            audited.record(*seq).unwrap().call.as_deref(),
            Some(call.as_str()),
            "seq {seq}"
        );
    }
}
