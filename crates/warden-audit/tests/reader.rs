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
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                log.append_blocking(record(i)).unwrap();
                i += 1;
            }
        })
    };
    let live = VerifyOptions {
        allow_unsigned_tail: true,
    };
    let mut last = 0;
    for _ in 0..100 {
        let report = verify_dir_with(&dir, &verifier(), None, live).expect("a live log verifies");
        assert!(report.records >= last);
        last = report.records;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(last > 1, "the writer made progress");
}
