//! The crate's one error type for operating a log and handling its formats.
//!
//! What an audit *finds* in a log directory is a [`VerifyError`](crate::VerifyError): a
//! different question ("where is this log damaged?") with its own answers. When [`Log::open`]
//! meets such damage it refuses with [`Error::Damaged`], carrying the finding.
//!
//! [`Log::open`]: crate::Log::open

use std::io;
use std::path::PathBuf;

use crate::verify::VerifyError;

/// Everything that can go wrong while writing, reading or checking the audit log's formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed; `op` says what was being done.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "fdatasync", "rename" …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The log directory is damaged somewhere an acknowledged record may live, so opening it
    /// would hide or destroy evidence; the finding says where.
    #[error("refusing to open the audit log: {0}")]
    Damaged(#[source] Box<VerifyError>),
    /// A write or fdatasync failed earlier; the log refuses every append until it is reopened
    /// (fail closed). `cause` is the first failure.
    #[error("the audit log cannot write ({cause}); it refuses every append until reopened")]
    Failed {
        /// The first failure, as text (every waiter gets a copy).
        cause: String,
    },
    /// The log was closed (or its writer stopped) before the record became durable.
    #[error("the audit log is closed")]
    Closed,
    /// A record is larger than a frame can hold.
    #[error("a record of {bytes} bytes is larger than the {max}-byte limit")]
    RecordTooLarge {
        /// The record's size.
        bytes: usize,
        /// [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
        max: usize,
    },
    /// A record nests deeper than readers can parse (its `detail`, usually).
    #[error("a record nested {depth} levels deep is deeper than the {max} levels readers parse")]
    RecordTooDeep {
        /// The record's nesting depth.
        depth: usize,
        /// [`MAX_NESTING`](crate::MAX_NESTING).
        max: usize,
    },
    /// Record bytes are not a valid record.
    #[error("malformed record: {0}")]
    MalformedRecord(String),
    /// A record of a format version this crate does not read.
    #[error("record format version {found} is not supported (this reader knows {known})")]
    UnsupportedVersion {
        /// The record's `v`.
        found: u64,
        /// [`FORMAT_VERSION`](crate::FORMAT_VERSION).
        known: u32,
    },
    /// A signer or verifier key string is malformed.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// A key name is empty, or holds a space or a `+`.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    InvalidKeyName(String),
    /// A key string's id does not match its name and key.
    #[error("key id {found:08x} does not match the key (expected {expected:08x})")]
    KeyIdMismatch {
        /// The id written in the key string.
        found: u32,
        /// The id computed from name and key.
        expected: u32,
    },
    /// The system's random source failed while generating a key.
    #[error("cannot generate a key: the system random source failed ({0})")]
    Random(String),
    /// A signed note is malformed.
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// A note carries no signature by the expected key.
    #[error(
        "note is not signed by key {expected} (found signatures by {})",
        list(found)
    )]
    NotSignedBy {
        /// The expected key, `<name>+<hex id>`.
        expected: String,
        /// The keys that did sign, `<name>+<hex id>` each.
        found: Vec<String>,
    },
    /// The expected key's signature on a note does not verify.
    #[error("signature by key {key} does not verify")]
    BadSignature {
        /// The key, `<name>+<hex id>`.
        key: String,
    },
    /// A checkpoint body is malformed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A checkpoint is for another log.
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// The checkpoint's origin line.
        found: String,
        /// The log's origin.
        expected: String,
    },
    /// A proof's text is malformed.
    #[error("malformed proof: {0}")]
    MalformedProof(&'static str),
    /// A proof was asked for a leaf or tree the log does not have.
    #[error("{what} {value} is out of range (the tree has {size} records)")]
    OutOfRange {
        /// Which number ("leaf index", "tree size" …).
        what: &'static str,
        /// The number asked for.
        value: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// A proof does not verify; `reason` says which check failed.
    #[error("proof does not verify: {0}")]
    ProofInvalid(&'static str),
    /// A tile was asked that is not (yet) in the tree, or with an invalid width.
    #[error("no tile at level {level}, index {index}, width {width}: {reason}")]
    NoSuchTile {
        /// The tile level.
        level: u8,
        /// The tile index within the level.
        index: u64,
        /// The requested width (256 for a full tile).
        width: u16,
        /// Why not.
        reason: &'static str,
    },
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "no known key".to_string()
    } else {
        keys.join(", ")
    }
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

impl From<VerifyError> for Error {
    fn from(finding: VerifyError) -> Error {
        Error::Damaged(Box::new(finding))
    }
}
