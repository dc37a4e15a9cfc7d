//! The writer thread: group commit.
//!
//! It takes everything queued (up to `max_batch`), assigns seqs, writes all the frames with
//! one `write`, calls `fdatasync` once, and only then adds the leaves to the tree and wakes the
//! waiters. An appender that finds the log idle commits its own record the same way, on its own
//! thread, and then what queued behind it ([`crate::Log::append_now`]); the segment is held by
//! one commit at a time. A batch that does not fit the current segment first finishes and syncs
//! that segment, then creates the next one and syncs the directory, so a record is never
//! acknowledged in a file whose name is not yet durable.
//!
//! With [`crate::Linger`], the writer asks the program before each commit whether the log is
//! busy; if so it waits the linger's delay first, holding the segment, so that the records
//! queued meanwhile (without waking anyone) go out with the same fdatasync.
//!
//! The segment being written is **preallocated**: zeros are written [`PREALLOCATE`] bytes
//! ahead of the frames, and frames overwrite them in place. A frame that does not change the
//! file's size needs no journal commit in its `fdatasync` (on this project's ext4 VM: 78 µs
//! instead of 132 µs at p50), which is most of what a durable record costs. The zeros are not
//! records (no frame is empty): readers stop at them, recovery treats them as unwritten space,
//! and a finished segment — rolled over, or the last one at close — is cut to its frames.

use std::fs::{File, OpenOptions};
use std::mem;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

use super::shared::{PanicGuard, Pending, Queue, Shared, lock};
use crate::frame;
use crate::merkle::{Hash, leaf_hash};
use crate::{Error, layout};

/// How far ahead of the frames the segment being written is filled with zeros.
pub(crate) const PREALLOCATE: u64 = 256 << 10;

/// The segment being appended to.
pub(crate) struct SegmentWriter {
    pub file: File,
    pub path: PathBuf,
    /// The length of its frames in bytes (where the next frame goes).
    pub len: u64,
    /// The file's size: its frames, then zeros.
    allocated: u64,
}

impl SegmentWriter {
    /// Opens `path` for writing (creating it if absent); `len` is the length of its frames.
    pub fn open(path: PathBuf, len: u64) -> Result<SegmentWriter, Error> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open segment", &path))?;
        let allocated = file
            .metadata()
            .map_err(Error::io("stat", &path))?
            .len()
            .max(len);
        Ok(SegmentWriter {
            file,
            path,
            len,
            allocated,
        })
    }

    /// Fills the file with zeros to `PREALLOCATE` bytes past `need`, when `need` is past its end.
    fn reserve(&mut self, need: u64) -> Result<(), Error> {
        if need <= self.allocated {
            return Ok(());
        }
        let to = need + PREALLOCATE;
        let zeros = [0u8; 64 * 1024];
        let mut at = self.allocated;
        while at < to {
            let n = (to - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(Error::io("preallocate", &self.path))?;
            at += n as u64;
        }
        self.allocated = to;
        Ok(())
    }

    /// Cuts the zeros after the frames and syncs: the segment is finished.
    pub fn finish(&mut self) -> Result<(), Error> {
        if self.allocated > self.len {
            self.file
                .set_len(self.len)
                .map_err(Error::io("truncate", &self.path))?;
            self.allocated = self.len;
        }
        self.file.sync_all().map_err(Error::io("fsync", &self.path))
    }
}

pub(crate) fn run(shared: &Shared) {
    let _guard = PanicGuard {
        shared,
        thread: "writer",
    };
    loop {
        let (mut batch, mut segment) = {
            let mut queue = lock(&shared.queue);
            // Waits for work, and for the segment while an appender commits on its own.
            let mut segment = loop {
                if (!queue.pending.is_empty() || queue.closing)
                    && let Some(segment) = queue.segment.take()
                {
                    break segment;
                }
                queue = shared.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
            };
            if let Some(linger) = &shared.opts.linger
                && !queue.closing
            {
                // Asked and waited for without the queue's lock, holding the segment: appends
                // meanwhile queue without waking anyone, and go out with this commit.
                drop(queue);
                if (linger.busy)() {
                    std::thread::sleep(linger.delay);
                }
                queue = lock(&shared.queue);
            }
            if queue.pending.is_empty() {
                drop(queue);
                // Closing, and drained: the segment keeps only its frames.
                if shared.failure().is_none()
                    && let Err(e) = segment.finish()
                {
                    shared.fail(&e);
                }
                return;
            }
            (
                take_batch(shared, &mut queue),
                Held::new(shared, Some(segment), false),
            )
        };
        commit_or_refuse(shared, &mut segment, &mut batch);
    }
}

/// Takes the next batch off the queue: everything queued, up to `max_batch` records.
pub(crate) fn take_batch(shared: &Shared, queue: &mut Queue) -> Vec<Pending> {
    let max = shared.opts.max_batch.max(1);
    if queue.pending.len() <= max {
        mem::take(&mut queue.pending)
    } else {
        let rest = queue.pending.split_off(max);
        mem::replace(&mut queue.pending, rest)
    }
}

/// Commits `batch` with the segment `held`, or answers every waiter with the log's failure;
/// the segment goes back to the queue either way.
pub(crate) fn commit_or_refuse(shared: &Shared, held: &mut Held<'_>, batch: &mut Vec<Pending>) {
    if let Some(failure) = shared.failure() {
        refuse(mem::take(batch), &failure);
        return;
    }
    if let Err(e) = commit(shared, held.segment(), batch) {
        let failure = shared.fail(&e);
        refuse(mem::take(batch), &failure);
    }
}

/// The segment, taken out of the queue by the one commit under way. Dropping it puts it back;
/// after an appender's own commit it also wakes the writer thread when appends queued meanwhile
/// (or `close`) wait for the segment. If the commit panicked, on an appender's thread or the
/// writer's, it fails the log closed first (the writer thread's [`PanicGuard`] would do so only
/// after the segment was back, for another commit to take).
pub(crate) struct Held<'a> {
    shared: &'a Shared,
    segment: Option<SegmentWriter>,
    /// Held by an appender's thread, not the writer thread.
    appender: bool,
}

impl<'a> Held<'a> {
    pub fn new(shared: &'a Shared, segment: Option<SegmentWriter>, appender: bool) -> Held<'a> {
        Held {
            shared,
            segment,
            appender,
        }
    }

    fn segment(&mut self) -> &mut SegmentWriter {
        self.segment.as_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Before the segment goes back: no other commit may use it once this one panicked.
        if std::thread::panicking() {
            let thread = if self.appender { "appending" } else { "writer" };
            self.shared.fail_everything(thread);
        }
        let mut queue = lock(&self.shared.queue);
        queue.segment = self.segment.take();
        let wake = self.appender && (!queue.pending.is_empty() || queue.closing);
        drop(queue);
        if wake {
            self.shared.queued.notify_one();
        }
    }
}

fn refuse(batch: Vec<Pending>, failure: &Error) {
    for p in batch {
        let cause = match failure {
            Error::Failed { cause } => cause.clone(),
            other => other.to_string(),
        };
        let _ = p.reply.send(Err(Error::Failed { cause }));
    }
}

/// Writes and syncs one batch, then acknowledges it. On error nothing in the batch has been
/// acknowledged, and `batch` holds every waiter still unanswered (the caller fails them).
fn commit(
    shared: &Shared,
    segment: &mut SegmentWriter,
    batch: &mut Vec<Pending>,
) -> Result<(), Error> {
    let base = shared.size();
    // The appenders wrote the records out and refused those readers could not read back.
    let seq = |i: usize| base + i as u64;
    let framed = |(i, p): (usize, &Pending)| frame::sequenced_len(seq(i), p.record.rest());
    let mut frames = Vec::with_capacity(batch.iter().enumerate().map(framed).sum());
    let mut leaves: Vec<Hash> = Vec::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        let frame_len = framed((i, p)) as u64;
        let used = segment.len + frames.len() as u64;
        if used > 0 && used + frame_len > shared.opts.segment_bytes {
            write(shared, segment, &mut frames)?;
            roll(shared, segment, seq(i))?;
        }
        let record = frame::encode_sequenced(seq(i), p.record.rest(), &mut frames);
        leaves.push(leaf_hash(&frames[record]));
    }
    write(shared, segment, &mut frames)?;
    sync(shared, segment)?;

    let size = base + leaves.len() as u64;
    {
        let mut tree = shared.write_tree();
        for leaf in &leaves {
            tree.push(*leaf);
        }
    }
    shared.set_size(size);
    for (i, p) in batch.drain(..).enumerate() {
        let _ = p.reply.send(Ok(seq(i)));
    }
    note_durable(shared, size);
    Ok(())
}

fn write(shared: &Shared, segment: &mut SegmentWriter, frames: &mut Vec<u8>) -> Result<(), Error> {
    if frames.is_empty() {
        return Ok(());
    }
    segment.reserve(segment.len + frames.len() as u64)?;
    shared
        .opts
        .faults
        .write()
        .and_then(|()| segment.file.write_all_at(frames, segment.len))
        .map_err(Error::io("write", &segment.path))?;
    segment.len += frames.len() as u64;
    frames.clear();
    Ok(())
}

fn sync(shared: &Shared, segment: &SegmentWriter) -> Result<(), Error> {
    shared
        .opts
        .faults
        .sync()
        .and_then(|()| segment.file.sync_data())
        .map_err(Error::io("fdatasync", &segment.path))
}

/// Finishes the current segment and starts the one whose first record is `first`.
fn roll(shared: &Shared, segment: &mut SegmentWriter, first: u64) -> Result<(), Error> {
    sync(shared, segment)?;
    segment.finish()?;
    let dir = layout::segments_dir(&shared.dir);
    let path = dir.join(layout::segment_name(first));
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(Error::io("create segment", &path))?;
    layout::sync_dir(&dir)?;
    *segment = SegmentWriter::open(path, 0)?;
    Ok(())
}

/// Tells the checkpointer that records up to `size` are durable.
fn note_durable(shared: &Shared, size: u64) {
    let mut state = lock(&shared.checkpoints);
    let mut wake = false;
    if state.due.is_none() {
        state.due = Some(Instant::now() + shared.opts.checkpoint_interval);
        wake = true;
    }
    if size - state.covered >= shared.opts.checkpoint_every.max(1) && !state.poke {
        state.poke = true;
        wake = true;
    }
    drop(state);
    if wake {
        shared.checkpoint_wanted.notify_one();
    }
}
