//! Retention: old segments move to an archive while every proof stays possible, the log still
//! verifies and opens, and a changed archived hash is caught.

mod common;

use std::path::Path;

use common::*;
use warden_audit::{AuditedLog, Log, Options, Reader, VerifyOptions, archive, verify_dir};

/// A closed log over several segments (small ones), checkpointed at its end.
fn segmented_log(dir: &Path, n: u64) {
    let options = Options {
        segment_bytes: 2048,
        ..quiet()
    };
    let log = Log::open(dir, signer(), ORIGIN, options).expect("opens");
    fill(&log, n);
    log.close().expect("closes");
}

#[test]
fn archived_segments_keep_their_proofs_and_the_log_verifies_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let (log_dir, vault) = (dir.path().join("log"), dir.path().join("archive"));
    segmented_log(&log_dir, 200);
    let before = segments(&log_dir).len();
    assert!(before > 3, "several segments: {before}");
    let audited = AuditedLog::open(&log_dir, &verifier(), None, VerifyOptions::default()).unwrap();
    let record_5 = audited.record_bytes(5).unwrap();
    let size = audited.report().records;

    let moved = archive(&log_dir, &vault, &verifier()).unwrap();
    assert_eq!(
        moved.segments.len(),
        before - 1,
        "all but the segment being written"
    );
    assert_eq!(segments(&log_dir).len(), 1);
    assert!(moved.records > 5);

    // Still verifies, with every record counted and the archived ones said so.
    let report = verify_dir(&log_dir, &verifier(), None).unwrap();
    assert_eq!((report.records, report.archived), (size, moved.records));
    // A proof of an archived record, checked with the record kept in the archive.
    let audited = AuditedLog::open(&log_dir, &verifier(), None, VerifyOptions::default()).unwrap();
    assert!(
        audited.record_bytes(5).is_err(),
        "its bytes are in the archive now"
    );
    let proof = audited.prove_inclusion(5).unwrap();
    proof
        .verify_record(&verifier(), &record_5)
        .expect("the archived record is proven");
    // Readers start where the log directory does.
    let first = Reader::open(&log_dir).unwrap().next_batch().unwrap()[0].0;
    assert_eq!(first, moved.records);

    // The gateway opens it again and goes on appending.
    let log = open(&log_dir);
    fill(&log, 10);
    log.close().unwrap();
    let report = verify_dir(&log_dir, &verifier(), None).unwrap();
    assert!(report.records > size + 10);
    // Archiving again moves nothing new but the segments that filled since.
    let again = archive(&log_dir, &vault, &verifier()).unwrap();
    assert!(again.records >= moved.records);
}

#[test]
fn a_changed_archived_hash_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (log_dir, vault) = (dir.path().join("log"), dir.path().join("archive"));
    segmented_log(&log_dir, 120);
    archive(&log_dir, &vault, &verifier()).unwrap();
    let hashes = log_dir.join("archived.hashes");
    let mut bytes = std::fs::read(&hashes).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&hashes, &bytes).unwrap();
    let e = verify_dir(&log_dir, &verifier(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("root"), "{e}");
    assert!(
        Log::open(&log_dir, signer(), ORIGIN, quiet()).is_err(),
        "nor does it open"
    );
}

#[test]
fn nothing_unsigned_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    let (log_dir, vault) = (dir.path().join("log"), dir.path().join("archive"));
    let options = Options {
        segment_bytes: 2048,
        ..quiet()
    };
    // Open signs a checkpoint of the start record only; the rest is unsigned.
    let log = Log::open(&log_dir, signer(), ORIGIN, options).unwrap();
    fill(&log, 100);
    let moved = archive(&log_dir, &vault, &verifier()).unwrap();
    assert_eq!(moved, warden_audit::Archived::default());
    drop(log);
}
