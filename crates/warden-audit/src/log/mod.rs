//! The writer: one log directory, one writer thread doing group commit, one checkpointer
//! thread signing checkpoints. See the crate documentation for what is durable when.

mod checkpointer;
mod durable;
mod fault;
mod recover;
mod shared;
mod writer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::json;

pub use durable::Durable;
pub use fault::FaultInjector;

use self::shared::{Pending, Shared, lock};
use crate::clock::{Clock, system_clock};
use crate::merkle::{self, Hash, HashStore};
use crate::note::Signer;
use crate::record::{FORMAT_VERSION, Kind, Record};
use crate::{Error, tile};

/// How a [`Log`] batches, checkpoints and rolls over.
#[derive(Clone)]
pub struct Options {
    /// Sign a checkpoint this long after the first record a checkpoint does not cover
    /// (default 1 s)…
    pub checkpoint_interval: Duration,
    /// …or once this many records are uncovered, if that comes first (default `u64::MAX`:
    /// the interval alone decides, so a busy log signs about once per interval, not once per
    /// so many records).
    pub checkpoint_every: u64,
    /// Start a new segment file when the current one would grow past this (default 64 MiB).
    pub segment_bytes: u64,
    /// The most records one write + fdatasync carries (default 4096).
    pub max_batch: usize,
    /// The time of the records the log writes itself (default: the system clock).
    pub clock: Clock,
    /// Disk faults for tests (default: none).
    pub faults: FaultInjector,
    /// Waiting a moment before a commit of the writer thread while the log is busy, so that
    /// one fdatasync carries more records (default: none, every commit starts at once).
    pub linger: Option<Linger>,
}

/// When and how long the writer thread waits for more records before a commit.
///
/// On a virtual disk each fdatasync costs the machine tens of microseconds of CPU (a write and
/// a cache flush, each a doorbell to the host and an interrupt back), whatever it carries. A
/// writer that commits as soon as anything is queued carries two or three records per
/// fdatasync under load, because the next records arrive while the last one is flushed. A
/// writer that waits `delay` first carries the records that arrive meanwhile too. The wait
/// is worth it only while other records are sure to come soon, which the embedding program
/// knows (the gateway: several calls in flight) and the log does not: `busy` tells it.
#[derive(Clone)]
pub struct Linger {
    /// How long the writer waits before a commit while `busy` says so.
    pub delay: Duration,
    /// Asked once before each of the writer thread's commits.
    pub busy: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_every: u64::MAX,
            segment_bytes: 64 * 1024 * 1024,
            max_batch: 4096,
            clock: system_clock(),
            faults: FaultInjector::default(),
            linger: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("segment_bytes", &self.segment_bytes)
            .field("max_batch", &self.max_batch)
            .field("linger", &self.linger.as_ref().map(|l| l.delay))
            .finish_non_exhaustive()
    }
}

/// An open audit log: append records, get them durable, prove them. `Send + Sync`; share it
/// in an `Arc`. Dropping it closes it like [`Log::close`], without reporting errors.
pub struct Log {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Log {
    /// Opens (creating if absent) the log in `dir`, recovering from a crash.
    ///
    /// A torn tail — an incomplete frame, or a bad checksum on the last frame, or only zero
    /// bytes, at the end of the last segment: what an interrupted, never acknowledged append
    /// leaves — is cut away (its bytes kept under `DIR/cut/`). Any other damage refuses to open
    /// with [`Error::Damaged`], saying where. The tree is rebuilt and checked against the latest
    /// checkpoint, whose signature, origin, size and root must all agree. Then a
    /// [`Kind::LogCut`] record saying what was cut (when something was), a [`Kind::Start`]
    /// record, and a signed checkpoint are made durable before `open` returns.
    pub fn open(dir: &Path, signer: Signer, origin: &str, opts: Options) -> Result<Log, Error> {
        let recovered = recover::recover(dir, &signer, origin)?;
        let before = recovered.tree.leaves().len() as u64;
        let covered = recovered.latest.as_ref().map(|(c, _)| c.size);
        let cut = recovered.cut.clone();
        let clock = opts.clock.clone();
        let shared = Arc::new(Shared::new(dir, signer, origin, opts, recovered));
        // Built before the threads, so that a failure below drops it and stops them.
        let mut log = Log {
            shared,
            threads: Vec::new(),
        };
        let shared = log.shared.clone();
        log.threads
            .push(spawn("warden-audit-writer", move || writer::run(&shared))?);
        let shared = log.shared.clone();
        log.threads
            .push(spawn("warden-audit-checkpointer", move || {
                checkpointer::run(&shared)
            })?);
        if let Some(cut) = cut {
            let mut record = Record::new(Kind::LogCut, clock());
            record.outcome = Some("cut".into());
            record.detail = cut.detail();
            log.append_blocking(record)?;
        }
        let mut start = Record::new(Kind::Start, clock());
        start.detail = json!({
            "records": before,
            "checkpoint": covered,
            "origin": log.shared.origin,
            "key": log.shared.signer.verifier_key(),
            "format": FORMAT_VERSION,
            "writer": concat!("warden-audit ", env!("CARGO_PKG_VERSION")),
        });
        log.append_blocking(start)?;
        log.checkpoint_now()?;
        Ok(log)
    }

    /// Queues `record`; the returned [`Durable`] resolves with its seq once it is on disk.
    ///
    /// The record is written out as bytes here, on the calling thread (the log's writer only
    /// puts in the seq, checksums, hashes and writes), and refused at once, like a record
    /// written out later would be, if readers could not read it back: nested deeper than
    /// [`crate::MAX_NESTING`], or larger than a frame holds.
    ///
    /// Group commit: the writer thread takes everything queued (up to `max_batch`), writes all
    /// the frames, calls fdatasync once, and then wakes every waiter. The log assigns the
    /// record's seq. After a write or fdatasync failure every pending and later append resolves
    /// to [`Error::Failed`].
    pub fn append(&self, record: Record) -> Durable {
        self.enqueue(record, false)
    }

    /// Like [`Log::append`], but when the log is idle the record is committed on the calling
    /// thread before this returns: for a caller that would only wait for the [`Durable`].
    ///
    /// When no commit is under way and nothing is queued, the caller writes its record's frame
    /// and calls fdatasync itself (a group of one) instead of waking the writer thread and
    /// being woken by it: the same write and sync, without the two threads handing the record
    /// over and back. The records queued behind that commit go out with one more, from the same
    /// thread, rather than after the writer thread has woken for them. The returned [`Durable`]
    /// is then already resolved. Otherwise the record is queued for the writer's next group
    /// commit exactly as by [`Log::append`], and this returns at once. The durability and
    /// ordering guarantees are those of [`Log::append`]; the cost is that the calling thread is
    /// blocked for one or two writes and fdatasyncs when the log was idle.
    pub fn append_now(&self, record: Record) -> Durable {
        self.enqueue(record, true)
    }

    fn enqueue(&self, record: Record, inline: bool) -> Durable {
        if let Some(failure) = self.shared.failure() {
            return Durable::ready(Err(failure));
        }
        let record = match record.unsequenced() {
            Ok(record) => record,
            Err(refused) => return Durable::ready(Err(refused)),
        };
        let (durable, reply) = Durable::pending();
        let mut queue = lock(&self.shared.queue);
        if queue.closing {
            return Durable::ready(Err(self.shared.failure().unwrap_or(Error::Closed)));
        }
        let mut batch = vec![Pending { record, reply }];
        if inline && queue.pending.is_empty() && queue.segment.is_some() {
            let mut held = writer::Held::new(&self.shared, queue.segment.take(), true);
            drop(queue);
            writer::commit_or_refuse(&self.shared, &mut held, &mut batch);
            // Appends that queued behind this commit go out with one more, from here, rather
            // than after the writer thread wakes up for them.
            let mut behind = writer::take_batch(&self.shared, &mut lock(&self.shared.queue));
            if !behind.is_empty() {
                writer::commit_or_refuse(&self.shared, &mut held, &mut behind);
            }
            return durable;
        }
        queue.pending.append(&mut batch);
        // While a commit holds the segment, whoever holds it wakes the writer when it ends.
        let idle = queue.segment.is_some();
        drop(queue);
        if idle {
            self.shared.queued.notify_one();
        }
        durable
    }

    /// Appends and blocks until the record is durable: for synchronous callers (the CLI's
    /// admin actions).
    pub fn append_blocking(&self, record: Record) -> Result<u64, Error> {
        self.append_now(record).wait()
    }

    /// The number of durable records.
    pub fn size(&self) -> u64 {
        self.shared.size()
    }

    /// The latest signed checkpoint note.
    pub fn latest_checkpoint(&self) -> Option<String> {
        lock(&self.shared.checkpoints).latest.clone()
    }

    /// Signs a checkpoint of every durable record now (or returns the latest one, when it
    /// already covers them all), and returns its note once it is on disk.
    pub fn checkpoint_now(&self) -> Result<String, Error> {
        let (tx, rx) = mpsc::channel();
        {
            let mut state = lock(&self.shared.checkpoints);
            if state.closing {
                return Err(Error::Closed);
            }
            state.requests.push(tx);
        }
        self.shared.checkpoint_wanted.notify_one();
        rx.recv().unwrap_or(Err(Error::Closed))
    }

    /// The inclusion proof of record `seq` in the tree of the first `size` records.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, Error> {
        merkle::inclusion_proof(&*self.shared.read_tree(), seq, size)
    }

    /// The consistency proof from the tree of `old` records to the tree of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, Error> {
        merkle::consistency_proof(&*self.shared.read_tree(), old, new)
    }

    /// The root of the tree of the first `size` durable records.
    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        let tree = self.shared.read_tree();
        if size > tree.size() {
            return Err(Error::OutOfRange {
                what: "tree size",
                value: size,
                size: tree.size(),
            });
        }
        Ok(merkle::root(&*tree, size))
    }

    /// The bytes of the C2SP hash tile at `level`, `index` (height 8): full when `width` is
    /// `None`, else the partial tile of that many hashes (1 to 255).
    pub fn tile(&self, level: u8, index: u64, width: Option<u16>) -> Result<Vec<u8>, Error> {
        tile::tile_bytes(&self.shared.read_tree(), level, index, width)
    }

    /// Whether the log can still write. False once a write, fdatasync or checkpoint failed;
    /// from then on every append fails (fail closed) until the log is reopened.
    pub fn is_healthy(&self) -> bool {
        self.shared.failure().is_none()
    }

    /// Drains the queue (every queued record is written), writes a final checkpoint, and
    /// stops the threads. Errors if the log had failed.
    pub fn close(mut self) -> Result<(), Error> {
        self.shutdown();
        match self.shared.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) {
        lock(&self.shared.queue).closing = true;
        self.shared.queued.notify_all();
        // The writer finishes first (it drains the queue), then the checkpointer signs last.
        let mut threads = self.threads.drain(..);
        if let Some(writer) = threads.next() {
            let _ = writer.join();
        }
        lock(&self.shared.checkpoints).closing = true;
        self.shared.checkpoint_wanted.notify_all();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .field("origin", &self.shared.origin)
            .field("size", &self.size())
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(Error::io("start a thread for", name))
}
