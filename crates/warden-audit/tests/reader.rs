//! Reading a live log: its records while the writer appends, and verifying it meanwhile.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use warden_audit::{Log, Options, Reader, Record, VerifyOptions, verify_dir_with};

#[test]
fn the_reader_follows_a_live_log_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir);
    let mut reader = Reader::open(&dir).unwrap();
    let mut seen = Vec::new();
    for round in 0..3 {
        fill(&log, 10);
        for (seq, bytes) in reader.next_batch().unwrap() {
            assert_eq!(Record::from_bytes(&bytes).unwrap().seq, seq);
            seen.push(seq);
        }
        assert_eq!(seen.len(), 1 + 10 * (round + 1));
    }
    assert_eq!(seen, (0..31).collect::<Vec<_>>());
    assert!(reader.next_batch().unwrap().is_empty(), "nothing new");
    log.close().unwrap();
}

#[test]
fn a_log_being_written_verifies_in_live_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let opts = Options {
        checkpoint_every: 7,
        segment_bytes: 4096,
        ..quiet()
    };
    let log = Arc::new(Log::open(&dir, signer(), ORIGIN, opts).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..300 {
                log.append_blocking(record(i)).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Segments grow, roll over and get checkpointed while they are read.
    let live = VerifyOptions {
        allow_unsigned_tail: true,
    };
    let mut rounds = 0;
    let mut last = 0;
    while !done.load(Ordering::SeqCst) || rounds == 0 {
        let report = verify_dir_with(&dir, &verifier(), None, live).expect("a live log verifies");
        assert!(report.records >= last);
        last = report.records;
        rounds += 1;
    }
    writer.join().unwrap();
    assert!(rounds > 1, "verified while written");
}
