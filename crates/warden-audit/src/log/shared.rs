//! The state the appenders, the writer thread and the checkpointer thread share.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::time::Instant;

use super::Options;
use super::durable::Reply;
use super::recover::Recovered;
use super::writer::SegmentWriter;
use crate::Error;
use crate::merkle::Tree;
use crate::note::Signer;

/// One queued append: its record written out by the appender, waiting for its seq.
pub(crate) struct Pending {
    pub record: crate::record::Unsequenced,
    pub reply: Reply,
}

/// The appends waiting for the writer, and the segment whoever commits next writes to.
pub(crate) struct Queue {
    pub pending: Vec<Pending>,
    /// The segment being appended to; `None` while a commit holds it (the writer thread's, or
    /// an appender's own: see [`super::Log::append_now`]). One commit at a time.
    pub segment: Option<SegmentWriter>,
    /// Set by `close`: the writer drains the queue and stops; appends are refused.
    pub closing: bool,
}

/// What the checkpointer knows and is asked.
#[derive(Default)]
pub(crate) struct CheckpointState {
    /// The size of the latest checkpoint on disk.
    pub covered: u64,
    /// Its note.
    pub latest: Option<String>,
    /// When the oldest record no checkpoint covers must be covered by.
    pub due: Option<Instant>,
    /// `checkpoint_every` records are uncovered: sign now.
    pub poke: bool,
    /// `checkpoint_now` callers waiting for the note.
    pub requests: Vec<mpsc::Sender<Result<String, Error>>>,
    /// Set by `close` after the writer stopped: sign a last checkpoint and stop.
    pub closing: bool,
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub origin: String,
    pub signer: Signer,
    pub opts: Options,
    pub queue: Mutex<Queue>,
    /// Signals the writer: something was queued, or the log is closing.
    pub queued: Condvar,
    pub tree: RwLock<Tree>,
    size: AtomicU64,
    failure: Mutex<Option<String>>,
    pub checkpoints: Mutex<CheckpointState>,
    /// Signals the checkpointer.
    pub checkpoint_wanted: Condvar,
}

impl Shared {
    pub fn new(
        dir: &std::path::Path,
        signer: Signer,
        origin: &str,
        opts: Options,
        recovered: Recovered,
    ) -> Shared {
        let size = recovered.tree.leaves().len() as u64;
        let (covered, latest) = match recovered.latest {
            Some((checkpoint, note)) => (checkpoint.size, Some(note)),
            None => (0, None),
        };
        Shared {
            dir: dir.to_path_buf(),
            origin: origin.to_string(),
            signer,
            opts,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                segment: Some(recovered.segment),
                closing: false,
            }),
            queued: Condvar::new(),
            tree: RwLock::new(recovered.tree),
            size: AtomicU64::new(size),
            failure: Mutex::default(),
            checkpoints: Mutex::new(CheckpointState {
                covered,
                latest,
                ..Default::default()
            }),
            checkpoint_wanted: Condvar::new(),
        }
    }

    /// The number of durable records.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Release);
    }

    /// The error every append gets once the log has failed.
    pub fn failure(&self) -> Option<Error> {
        lock(&self.failure).as_ref().map(|cause| Error::Failed {
            cause: cause.clone(),
        })
    }

    /// Records the first failure; the log fails closed from now on.
    pub fn fail(&self, cause: &Error) -> Error {
        let mut failure = lock(&self.failure);
        let cause = failure.get_or_insert_with(|| cause.to_string()).clone();
        Error::Failed { cause }
    }

    /// Fails the log for good and answers every waiter: what a thread does if it panics, so
    /// that no append or checkpoint request waits forever.
    pub fn fail_everything(&self, thread: &str) {
        let cause = format!("the audit log's {thread} thread stopped unexpectedly");
        lock(&self.failure).get_or_insert(cause);
        let pending = {
            let mut queue = lock(&self.queue);
            queue.closing = true;
            std::mem::take(&mut queue.pending)
        };
        for p in pending {
            let _ = p.reply.send(Err(self.failure().unwrap_or(Error::Closed)));
        }
        let mut checkpoints = lock(&self.checkpoints);
        checkpoints.closing = true;
        checkpoints.requests.clear(); // dropping a request answers `Closed`
    }

    pub fn read_tree(&self) -> RwLockReadGuard<'_, Tree> {
        // A panic while holding the tree lock cannot leave it half-updated: pushes are whole.
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write_tree(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its state valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by each log thread: if the thread unwinds, the log fails closed.
pub(crate) struct PanicGuard<'a> {
    pub shared: &'a Shared,
    pub thread: &'static str,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.fail_everything(self.thread);
        }
    }
}
