//! Warden's audit log: append-only, tamper-evident, and checkable by an auditor alone.
//!
//! Every request, decision, consent, grant, admin action and response becomes a [`Record`]. A
//! [`Log`] appends records to segment files with group commit (many records, one fdatasync),
//! hashes them into an RFC 6962 Merkle tree, and signs C2SP checkpoints of the tree with an
//! Ed25519 key. [`verify_dir`] checks a log directory offline with only the verifier key, and
//! [`AuditedLog`] proves records from it. The formats are C2SP's (`signed-note`,
//! `tlog-checkpoint`, `tlog-tiles`, `tlog-proof`), so Go's `golang.org/x/mod/sumdb/note` and
//! `sumdb/tlog` verify Warden's checkpoints, proofs and tiles too (a test does).
//!
//! The crate holds no gateway code and needs no async runtime: an auditor builds it alone.
//!
//! # What it must never do
//!
//! - **Acknowledge a record that is not durable.** An append resolves `Ok` only after the
//!   fdatasync that covers its frame returned; a checkpoint covers only such records.
//! - **Cut an acknowledged record, or hide damage.** Recovery cuts only what an interrupted
//!   append leaves at the very end of the log, keeps the bytes, and records the cut in the log.
//! - **Write after a failure.** A failed write or fdatasync fails every pending and later
//!   append (fail closed) until the log is reopened.
//! - **Panic on input.** Segments, notes, keys, checkpoints and proofs come from disk or from
//!   other people; every problem is an error that says where it is.
//!
//! # On disk
//!
//! ```text
//! DIR/segments/<20-digit first seq>.seg   frames: u32 BE length ‖ record bytes ‖ u32 BE CRC-32
//! DIR/checkpoints/<20-digit size>         every signed checkpoint note
//! DIR/checkpoint                          the latest signed checkpoint note
//! DIR/cut/<20-digit seq>-<offset>.bin     tails a recovery cut away (forensics only)
//! DIR/archived.hashes                     leaf hashes of archived records ([`archive`])
//! ```
//!
//! A record's bytes are its canonical JSON ([`Record::to_bytes`]); its leaf hash is
//! `SHA-256(0x00 ‖ bytes)`. Tiles are not stored: [`Log::tile`] serves them from memory. The
//! log keeps every leaf hash in memory — 32 bytes per record, plus 1/256 of that per tile level
//! — so proofs and tiles never read the disk; a log of 100 million records holds 3.2 GB.
//! A checkpoint is signed only when records were added since the last one: an idle log adds
//! no files, a busy one up to one per `checkpoint_interval` (86 400 a day at the default 1 s),
//! and [`verify_dir`] opens every one of them.
//!
//! Readers other than the writer: [`Reader`] follows the records of a live log, [`verify_dir`]
//! checks a directory, and [`AuditedLog`] keeps a verified directory to read and prove records.
//!
//! # What is durable when
//!
//! 1. [`Log::append`] writes the record out as bytes on the calling thread (all but its seq),
//!    refusing one readers could not read back, queues it and returns a [`Durable`] future.
//!    [`Log::append_now`] does the same unless the log is idle (no commit under way, nothing
//!    queued): then the caller commits its record itself, as a batch of one, before it returns.
//! 2. The writer thread takes everything queued, assigns consecutive seqs (putting each into
//!    its record's bytes), writes all the frames with one `write`, then calls `fdatasync` once
//!    (with [`Options::linger`], while the program says the log is busy, it first waits a
//!    moment for more records to join the batch). One commit runs at a time. When a batch
//!    would grow a segment past `segment_bytes`, the segment is synced first, the next segment
//!    file is created and the *directory* is synced, and only then are frames written into the
//!    new file.
//! 3. Only after `fdatasync` returns are the batch's leaves added to the tree and its futures
//!    resolved with their seqs. Until then nothing about the batch is visible. If the write or
//!    sync fails, the batch, the queue and every later append resolve to [`Error::Failed`].
//! 4. The checkpointer thread signs the tree *as the writer left it* — only acknowledged,
//!    durable records — every `checkpoint_every` records or `checkpoint_interval` after the
//!    first uncovered record, on [`Log::checkpoint_now`], at start and at close. It writes
//!    `checkpoints/<size>` and then `checkpoint`, each by writing a temporary file, fsync,
//!    rename over the target, fsync the directory: after a crash each file is whole, old or
//!    new, and `checkpoints/` is never behind `checkpoint`.
//!
//! The segment being written is preallocated: zeros stand after its frames (so that an
//! `fdatasync` need not commit a size change), and frames overwrite them in place. A finished
//! segment (rolled over, or the last at close) is cut to its frames and synced.
//!
//! So after a crash the disk holds every acknowledged frame intact, as a prefix of the last
//! segment (earlier segments were synced before the next was begun); what may follow is the
//! one batch that was being written, in any state, and then zeros (or the end of the file).
//! [`Log::open`] reads every segment and:
//!
//! - **only zero bytes** after the last whole frame of the last segment — preallocated space,
//!   or a filesystem that grew the file before the data arrived; no record is empty and no
//!   frame starts with four zero bytes of which none follow, so nothing is there: the writer
//!   goes on after the frames, **nothing is cut**;
//! - an **incomplete frame** at the end of the last segment (a partial length prefix, a
//!   partial record, a partial checksum), with nothing but zeros after it — from that unsynced
//!   batch, never acknowledged, since an acknowledged frame is whole and everything before it
//!   is whole: **cut**;
//! - a **bad checksum on the last frame**, with nothing but zeros after the frame's end — the
//!   batch's pages reached the disk unevenly; it was never acknowledged: **cut**;
//! - anything else — a bad frame with valid frames after it, any damage in an earlier
//!   segment, a record that does not parse or whose seq is not its position, a missing
//!   segment: **refuse to open** ([`Error::Damaged`]), saying where. (Should a crash ever leave
//!   a hole inside the unsynced batch with later frames of it intact, this refuses rather than
//!   guess; nothing acknowledged is lost, and an operator decides.)
//!
//! A cut saves the written bytes (up to the last that is not zero) under `cut/`, truncates the
//! segment and syncs it. Then the latest
//! checkpoint (the larger of `checkpoint` and the last of `checkpoints/`) must open with the
//! key, name this log's origin, cover no more records than survive — a checkpoint covers only
//! acknowledged records, so one that reaches into the cut proves the cut was not a torn append —
//! and sign the rebuilt tree's root at its size; otherwise open refuses. Finally a
//! [`Kind::LogCut`] record (segment, offset, bytes, seq, what was wrong, where the bytes went)
//! when something was cut, a [`Kind::Start`] record, and a checkpoint are made durable before
//! `open` returns. Temporary checkpoint files a crash left behind are removed.
//!
//! The argument assumes that the disk honours `fdatasync` (no lying write cache) and that one
//! process writes the directory (the gateway holds a lock file; [`verify_dir`] catches a second
//! writer's records, which no checkpoint covers).

#![deny(missing_docs)]

pub mod archive;
mod checkpoint;
mod clock;
mod error;
mod frame;
mod layout;
mod log;
pub mod merkle;
pub mod note;
pub mod proof;
mod read;
mod record;
mod scan;
mod tile;
pub mod verify;

pub use archive::{Archived, archive};
pub use checkpoint::Checkpoint;
pub use clock::{Clock, rfc3339_millis, system_clock};
pub use error::Error;
pub use frame::{FrameProblem, MAX_RECORD_BYTES};
pub use log::{Durable, FaultInjector, Linger, Log, Options};
pub use note::{Signer, Verifier};
pub use proof::{ConsistencyProof, InclusionProof};
pub use read::Reader;
pub use record::{FORMAT_VERSION, Kind, MAX_NESTING, Record};
pub use tile::{tile_bytes, tile_path, tiles_for_size};
pub use verify::{AuditedLog, Report, VerifyError, VerifyOptions, verify_dir, verify_dir_with};
