//! Group commit: concurrent appenders, ordering, rollover, checkpoint cadence, close, and
//! failing closed when the disk fails.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use warden_audit::{
    AuditedLog, Checkpoint, Durable, Error, FaultInjector, Linger, Log, Options, Record, verify_dir,
};

/// `threads` threads append `each` records at once, each record appended by `how` (given the
/// thread's number) and waited for: every record is acknowledged with its own seq, the seqs are
/// dense, and the closed log verifies and holds each record under its seq.
fn appended_concurrently(threads: u64, each: u64, how: fn(&Log, u64, Record) -> Durable) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = Arc::new(open(&dir));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..each)
                    .map(|i| {
                        let mut r = record(i);
                        r.call = Some(format!("t{t}-{i}"));
                        (how(&log, t, r).wait().unwrap(), format!("t{t}-{i}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acked: Vec<(u64, String)> = handles
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs.into_iter().collect::<Vec<_>>(),
        (1..=threads * each).collect::<Vec<_>>(),
        "unique and dense"
    );
    assert_eq!(log.size(), threads * each + 1);
    Arc::try_unwrap(log).unwrap().close().unwrap();
    verify_dir(&dir, &verifier(), None).unwrap();

    let audited = AuditedLog::open(&dir, &verifier(), None, Default::default()).unwrap();
    for (seq, call) in &acked {
        let r = audited.record(*seq).unwrap();
        assert_eq!((r.seq, r.call.as_deref()), (*seq, Some(call.as_str())));
    }
}

#[test]
fn concurrent_appenders_get_unique_dense_seqs_and_their_own_records() {
    appended_concurrently(16, 150, |log, _, r| log.append(r));
}

#[test]
fn appends_are_durable_in_the_order_they_were_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("audit"));
    let pending: Vec<_> = (0..2000).map(|i| log.append(record(i))).collect();
    let seqs: Vec<u64> = pending.into_iter().map(|p| p.wait().unwrap()).collect();
    assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
}

#[test]
fn the_durable_future_works_with_any_executor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("audit"));
    let durable = log.append(record(1));
    // Polled by hand with a no-op waker until ready, as a runtime would.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut durable = std::pin::pin!(durable);
    let started = Instant::now();
    let seq = loop {
        if let std::task::Poll::Ready(out) = durable.as_mut().poll(&mut cx) {
            break out.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(seq, 1);
}

#[test]
fn an_idle_log_commits_an_append_now_on_the_callers_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("audit"));
    for i in 1..=20 {
        let durable = log.append_now(record(i));
        // Durable before append_now returned: counted, and resolved at the first poll.
        assert_eq!(log.size(), i + 1);
        let mut durable = std::pin::pin!(durable);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match durable.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(seq) => assert_eq!(seq.unwrap(), i),
            std::task::Poll::Pending => panic!("append {i} was left to the writer thread"),
        }
    }
}

#[test]
fn appends_committed_by_their_callers_and_by_the_writer_interleave_densely() {
    appended_concurrently(12, 100, |log, t, r| {
        if t % 2 == 0 {
            log.append_now(r)
        } else {
            log.append(r)
        }
    });
}

fn failing_log(dir: &std::path::Path) -> (Log, FaultInjector) {
    let faults = FaultInjector::new();
    let opts = Options {
        faults: faults.clone(),
        ..quiet()
    };
    (Log::open(dir, signer(), ORIGIN, opts).unwrap(), faults)
}

fn assert_failed(outcome: Result<u64, Error>, what: &str) {
    match outcome {
        Err(Error::Failed { cause }) => assert!(cause.contains(what), "{cause}"),
        other => panic!("expected a failure mentioning {what:?}, got {other:?}"),
    }
}

#[test]
fn a_failed_fdatasync_fails_pending_and_later_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let (log, faults) = failing_log(&dir);
    fill(&log, 3);
    faults.fail_next_sync();
    // Queued together: whichever batch they land in, none may be reported durable.
    let pending: Vec<_> = (0..200).map(|i| log.append(record(i))).collect();
    for p in pending {
        assert_failed(p.wait(), "injected fdatasync fault");
    }
    assert!(!log.is_healthy());
    assert_eq!(log.size(), 4, "nothing after the failure counts as durable");
    assert_failed(log.append_blocking(record(9)), "fdatasync");
    assert!(log.checkpoint_now().is_err());
    assert!(log.close().is_err(), "close reports the failure");

    // Reopened on a healthy disk, the log recovers and verifies; the records whose sync
    // failed may be there (written, never acknowledged), covered by the new checkpoint.
    let log = open(&dir);
    assert!(log.is_healthy() && log.size() >= 5);
    log.close().unwrap();
    verify_dir(&dir, &verifier(), None).unwrap();
}

#[test]
fn a_failed_fdatasync_on_the_callers_thread_fails_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, faults) = failing_log(&tmp.path().join("audit"));
    fill(&log, 2);
    faults.fail_next_sync();
    assert_failed(log.append_now(record(7)).wait(), "injected fdatasync fault");
    assert!(!log.is_healthy());
    assert_eq!(log.size(), 3, "the record whose sync failed is not durable");
    assert_failed(log.append(record(8)).wait(), "fdatasync");
    assert_failed(log.append_now(record(9)).wait(), "fdatasync");
    assert!(log.close().is_err());
}

/// A commit that panics fails the log before the segment goes back: the waiter of the panicked
/// commit is answered only after that, so its next append, committed on its own thread if the
/// segment were free, must already be refused.
#[test]
fn a_commit_that_panics_on_the_writer_thread_fails_the_log_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, faults) = failing_log(&tmp.path().join("audit"));
    fill(&log, 2);
    faults.panic_next_write();
    assert!(log.append(record(7)).wait().is_err());
    assert_failed(log.append_now(record(8)).wait(), "writer thread stopped");
    assert_failed(log.append(record(9)).wait(), "writer thread stopped");
    assert!(!log.is_healthy());
    assert_eq!(log.size(), 3, "nothing after the panic counts as durable");
}

#[test]
fn a_commit_that_panics_on_the_callers_thread_fails_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, faults) = failing_log(&tmp.path().join("audit"));
    // Committed on this thread, as the log is idle (each returns the segment before it returns).
    for i in 1..=2 {
        log.append_now(record(i)).wait().unwrap();
    }
    faults.panic_next_write();
    let appended =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log.append_now(record(7))));
    assert!(appended.is_err(), "the panic reaches the caller");
    assert_failed(log.append_now(record(8)).wait(), "appending thread stopped");
    assert_failed(log.append(record(9)).wait(), "appending thread stopped");
    assert_eq!(log.size(), 3);
}

#[test]
fn a_failed_write_fails_pending_and_later_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let (log, faults) = failing_log(&dir);
    faults.fail_next_write();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| log.append_blocking(record(t * 100 + i)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for outcome in threads.into_iter().flat_map(|t| t.join().unwrap()) {
        assert_failed(outcome, "injected write fault");
    }
    assert!(!log.is_healthy());
    assert_eq!(log.size(), 1);
}

#[test]
fn segments_roll_over_and_are_named_by_their_first_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let opts = Options {
        segment_bytes: 1024,
        ..quiet()
    };
    let log = Log::open(&dir, signer(), ORIGIN, opts.clone()).unwrap();
    fill(&log, 60);
    log.close().unwrap();
    let log = Log::open(&dir, signer(), ORIGIN, opts).unwrap();
    fill(&log, 20);
    log.close().unwrap();
    let segs = segments(&dir);
    assert!(segs.len() > 5, "{segs:?}");
    let mut next = 0;
    for seg in &segs {
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("{next:020}.seg"));
        assert!(std::fs::metadata(seg).unwrap().len() <= 1024);
        next += frames(seg).len() as u64;
    }
    assert_eq!(verify_dir(&dir, &verifier(), None).unwrap().records, next);
}

fn latest_size(log: &Log) -> u64 {
    let note = log.latest_checkpoint().unwrap();
    Checkpoint::open(&note, &verifier()).unwrap().size
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn checkpoints_follow_the_record_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let opts = Options {
        checkpoint_every: 10,
        ..quiet()
    };
    let log = Log::open(&dir, signer(), ORIGIN, opts).unwrap();
    // `open` signs its opening record: one covered. Each append below waits for its record to
    // be durable, and nothing is appended while a checkpoint is awaited, so the sizes signed
    // are exactly 11 and 21 however the threads interleave.
    assert_eq!(latest_size(&log), 1);
    for i in 0..10 {
        log.append_blocking(record(i)).unwrap();
    }
    wait_for("the checkpoint of eleven records", || {
        latest_size(&log) == 11
    });
    for i in 10..19 {
        log.append_blocking(record(i)).unwrap();
    }
    // Twenty records, nine uncovered: the count does not call for a checkpoint yet.
    assert_eq!(latest_size(&log), 11);
    log.append_blocking(record(19)).unwrap();
    wait_for("the checkpoint of 21 records", || latest_size(&log) == 21);
    for i in 20..25 {
        log.append_blocking(record(i)).unwrap();
    }
    log.close().unwrap();
    let report = verify_dir(&dir, &verifier(), None).unwrap();
    assert_eq!(
        report.checkpoints, 4,
        "1, 11, 21 and the closing 26: {report:?}"
    );
    assert_eq!(report.latest.map(|l| l.0), Some(26));
}

#[test]
fn checkpoints_follow_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let opts = Options {
        checkpoint_interval: Duration::from_millis(50),
        ..quiet()
    };
    let log = Log::open(&dir, signer(), ORIGIN, opts).unwrap();
    log.append_blocking(record(1)).unwrap();
    wait_for("the interval's checkpoint", || latest_size(&log) == 2);
    // While nothing new arrives, nothing new is signed.
    std::thread::sleep(Duration::from_millis(150));
    // Verified while still open: the interval alone covered the record.
    let report = verify_dir(&dir, &verifier(), None).expect("nothing unsigned");
    assert_eq!((report.checkpoints, report.records), (2, 2));
    log.close().unwrap();
}

#[test]
fn close_drains_the_queue_and_signs_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir);
    let pending: Vec<_> = (0..500).map(|i| log.append(record(i))).collect();
    log.close().unwrap();
    for p in pending {
        p.wait().expect("queued before close, so written");
    }
    let report = verify_dir(&dir, &verifier(), None).unwrap();
    assert_eq!(
        (report.records, report.latest.map(|l| l.0)),
        (501, Some(501))
    );
}

#[test]
fn checkpoint_now_covers_every_durable_record() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("audit"));
    fill(&log, 7);
    let note = log.checkpoint_now().unwrap();
    let checkpoint = Checkpoint::open(&note, &verifier()).unwrap();
    assert_eq!((checkpoint.size, checkpoint.origin.as_str()), (8, ORIGIN));
    assert_eq!(checkpoint.root, log.root(8).unwrap());
    assert_eq!(log.latest_checkpoint().as_deref(), Some(note.as_str()));
    assert_eq!(
        log.checkpoint_now().unwrap(),
        note,
        "nothing new: the same checkpoint"
    );
}

#[test]
fn the_log_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Log>();
    send::<warden_audit::Durable>();
    send_sync::<Error>();
}

#[test]
fn a_record_readers_could_not_parse_is_refused_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir);
    let mut deep = record(1);
    for _ in 0..warden_audit::MAX_NESTING {
        deep.detail = serde_json::json!({ "a": deep.detail });
    }
    let mut other_version = record(2);
    other_version.v = 9; // the log writes its own format version
    let refused = log.append(deep);
    let written = log.append(other_version);
    assert!(matches!(refused.wait(), Err(Error::RecordTooDeep { .. })));
    assert_eq!(written.wait().unwrap(), 1);
    assert!(log.is_healthy());
    log.close().unwrap();
    assert_eq!(verify_dir(&dir, &verifier(), None).unwrap().records, 2);
    open(&dir).close().unwrap();
}

/// A log whose writer thread lingers `delay` whenever `busy` says so.
fn lingering(
    dir: &std::path::Path,
    delay: Duration,
    busy: impl Fn() -> bool + Send + Sync + 'static,
) -> Log {
    let opts = Options {
        linger: Some(Linger {
            delay,
            busy: Arc::new(busy),
        }),
        ..quiet()
    };
    Log::open(dir, signer(), ORIGIN, opts).expect("the log opens")
}

#[test]
fn a_lingering_writer_waits_then_commits_what_queued_meanwhile_with_one_fdatasync() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    // The writer asks `busy` before each commit; the first time it is held there until every
    // record below is queued, so all of them must go out in that one commit.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    let delay = Duration::from_millis(50);
    let log = lingering(&dir, delay, move || {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            held.lock().unwrap().recv().unwrap();
        }
        true
    });
    let first = log.append(record(0));
    wait_for("the writer to ask whether the log is busy", || {
        asked.load(Ordering::SeqCst) == 1
    });
    let rest: Vec<Durable> = (1..10).map(|i| log.append(record(i))).collect();
    let released = Instant::now();
    release.send(()).unwrap();
    let seqs: Vec<u64> = std::iter::once(first)
        .chain(rest)
        .map(|d| d.wait().unwrap())
        .collect();
    // Told the log is busy, the writer slept before committing (a lower bound: never flaky).
    assert!(released.elapsed() >= delay, "{:?}", released.elapsed());
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "one commit carried all ten"
    );
    log.close().unwrap();
    assert_eq!(verify_dir(&dir, &verifier(), None).unwrap().records, 11);
}

#[test]
fn a_lingering_writer_commits_at_once_when_the_log_is_not_busy_and_a_lone_caller_never_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    // An hour's delay: a commit that waited for it would not end within the test's minute.
    let log = Arc::new(lingering(&dir, Duration::from_secs(3600), move || {
        counted.fetch_add(1, Ordering::SeqCst);
        false
    }));
    let durable_within_a_minute = |append: fn(&Log, Record) -> Durable, i: u64| {
        let (done, outcome) = std::sync::mpsc::channel();
        let log = log.clone();
        std::thread::spawn(move || {
            let outcome = append(&log, record(i)).wait();
            // Let go of the log before answering, so the test can close it.
            drop(log);
            done.send(outcome)
        });
        outcome
            .recv_timeout(Duration::from_secs(60))
            .expect("committed without the delay")
            .unwrap()
    };
    // An idle log commits an `append_now` on the caller's thread: the writer is not asked.
    assert_eq!(durable_within_a_minute(Log::append_now, 0), 1);
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // Through the writer thread, it is asked before each commit and told not to wait.
    assert_eq!(durable_within_a_minute(Log::append, 1), 2);
    assert!(asked.load(Ordering::SeqCst) >= 1);
    Arc::try_unwrap(log).ok().unwrap().close().unwrap();
    assert_eq!(verify_dir(&dir, &verifier(), None).unwrap().records, 3);
}
