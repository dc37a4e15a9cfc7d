//! What an audit finds: the first bad thing in a log directory, said precisely enough to go
//! and look at it. The `Display` text is what `warden audit verify` prints.

use std::io;
use std::path::PathBuf;

use crate::Error;
use crate::frame::FrameProblem;

/// The first problem [`verify_dir`](crate::verify_dir) (or [`Log::open`](crate::Log::open))
/// found in a log directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The directory has no `segments/` directory.
    #[error("{} holds no audit log (there is no segments directory)", dir.display())]
    NotALog {
        /// The directory given.
        dir: PathBuf,
    },
    /// A file in `segments/` or `checkpoints/` that the log never writes.
    #[error("{}: not a file the audit log writes (renamed or planted?)", path.display())]
    StrayFile {
        /// The file.
        path: PathBuf,
    },
    /// A segment does not start where the previous one ended.
    #[error(
        "{}: the segment starts at seq {found}, but the records before it end at seq {expected} (a segment is missing, renamed or truncated)",
        path.display()
    )]
    SegmentGap {
        /// The segment file.
        path: PathBuf,
        /// The seq the segment should start at.
        expected: u64,
        /// The seq its name says.
        found: u64,
    },
    /// A frame that is not valid.
    #[error("{} at byte {offset}: the frame of seq {seq} is {problem}", segment.display())]
    BadFrame {
        /// The segment file.
        segment: PathBuf,
        /// The frame's offset in it.
        offset: u64,
        /// The seq the frame would hold.
        seq: u64,
        /// What is wrong with it.
        problem: FrameProblem,
    },
    /// A frame whose bytes are not a valid record.
    #[error("{} at byte {offset}: the record of seq {seq} does not parse: {reason}", segment.display())]
    BadRecord {
        /// The segment file.
        segment: PathBuf,
        /// The frame's offset.
        offset: u64,
        /// The seq the record should have.
        seq: u64,
        /// What is wrong with it.
        reason: Error,
    },
    /// A record whose `seq` is not its position: records were deleted, inserted or reordered.
    #[error(
        "{} at byte {offset}: record {expected} of the log says seq {found} (records deleted, inserted or reordered here)",
        segment.display()
    )]
    WrongSeq {
        /// The segment file.
        segment: PathBuf,
        /// The frame's offset.
        offset: u64,
        /// The record's position, the seq it should say.
        expected: u64,
        /// The seq it says.
        found: u64,
    },
    /// A checkpoint that does not parse, is signed by another key, or whose signature fails.
    #[error("{}: {problem}", path.display())]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Error,
    },
    /// A checkpoint file whose name is not the size it holds.
    #[error("{}: the file is named for size {named}, but the checkpoint says size {size}", path.display())]
    MisnamedCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The size its name says.
        named: u64,
        /// The size it holds.
        size: u64,
    },
    /// A checkpoint covers more records than the log holds.
    #[error(
        "{}: the checkpoint covers {size} records but the log holds only {records}; records from seq {records} on, which a signed checkpoint covers, are missing",
        path.display()
    )]
    MissingRecords {
        /// The checkpoint file.
        path: PathBuf,
        /// The size it signs.
        size: u64,
        /// The records in the log.
        records: u64,
    },
    /// A checkpoint's root is not the root of the log's records at its size.
    #[error(
        "{}: the signed root for size {size} is {signed}, but the log's records give {computed} (records or checkpoint altered)",
        path.display()
    )]
    RootMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The root it signs, base64.
        signed: String,
        /// The root of the records, base64.
        computed: String,
    },
    /// Records no signed checkpoint covers.
    #[error(
        "records from seq {first} to {last} are not covered by any signed checkpoint (appended after the last checkpoint, perhaps by another writer)"
    )]
    UnsignedTail {
        /// The first uncovered seq.
        first: u64,
        /// The last record's seq.
        last: u64,
    },
    /// The trusted checkpoint the auditor supplied does not open or parse.
    #[error("the trusted checkpoint: {0}")]
    BadTrusted(Error),
    /// The log is smaller than the trusted checkpoint: it was rolled back to an older copy.
    #[error(
        "the log holds {records} records but the trusted checkpoint covers {size}: the log was rolled back or truncated"
    )]
    RolledBack {
        /// The trusted checkpoint's size.
        size: u64,
        /// The records in the log.
        records: u64,
    },
    /// The log's root at the trusted size differs: the log was rewritten.
    #[error(
        "the log's root at the trusted checkpoint's size {size} is {computed}, but the trusted checkpoint signs {trusted}: the log was rewritten"
    )]
    Forked {
        /// The trusted size.
        size: u64,
        /// The trusted root, base64.
        trusted: String,
        /// The log's root at that size, base64.
        computed: String,
    },
}
