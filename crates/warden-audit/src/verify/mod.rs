//! Offline verification of a log directory, by an auditor holding only the verifier key.
//!
//! [`verify_dir`] reads every segment (each frame's length and checksum), parses every record
//! and checks that its `seq` is its position, recomputes the Merkle tree, opens every
//! checkpoint with the key, checks that each checkpoint's root is the tree's root at its size
//! (so the checkpoints agree with the records and with each other), that the log holds every
//! record a checkpoint covers, that no record lies beyond the last checkpoint, and — given a
//! checkpoint the auditor saved earlier — that the log still extends it. The first problem is
//! returned as a [`VerifyError`] that says where it is.

pub(crate) mod checkpoints;
mod error;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub use error::VerifyError;

use crate::checkpoint::Checkpoint;
use crate::frame::MAX_RECORD_BYTES;
use crate::merkle::{self, Hash, HashStore, Tree};
pub use crate::note::Verifier;
use crate::proof::{ConsistencyProof, InclusionProof};
use crate::record::Record;
use crate::scan::{self, Segment};
use crate::{Error, layout};

/// What a verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Records in the log.
    pub records: u64,
    /// Checkpoint files verified in `checkpoints/` (`checkpoint` is verified as well).
    pub checkpoints: u64,
    /// The latest checkpoint's size and root.
    pub latest: Option<(u64, [u8; 32])>,
    /// Records after the latest checkpoint: always 0 from [`verify_dir`] (they are an error);
    /// [`verify_dir_with`] can allow them for a log that is still being written.
    pub unsigned_tail: u64,
    /// Of `records`, those moved to an archive (checked by their leaf hashes).
    pub archived: u64,
}

/// How strict [`verify_dir_with`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept records after the last checkpoint (a running gateway's last second), counting
    /// them in [`Report::unsigned_tail`] instead of failing, and an incomplete last frame (an
    /// append in progress).
    pub allow_unsigned_tail: bool,
}

/// Verifies the log in `dir` with `key`, and against `trusted` (a checkpoint note the auditor
/// saved earlier) when given. Records after the last checkpoint are an error.
pub fn verify_dir(
    dir: &Path,
    key: &Verifier,
    trusted: Option<&str>,
) -> Result<Report, VerifyError> {
    verify_dir_with(dir, key, trusted, VerifyOptions::default())
}

/// [`verify_dir`] with options.
pub fn verify_dir_with(
    dir: &Path,
    key: &Verifier,
    trusted: Option<&str>,
    opts: VerifyOptions,
) -> Result<Report, VerifyError> {
    AuditedLog::open(dir, key, trusted, opts).map(|audited| audited.report)
}

/// A log directory that passed verification, kept to read records and prove them from.
#[derive(Debug)]
pub struct AuditedLog {
    report: Report,
    tree: Tree,
    segments: Vec<Segment>,
    offsets: Vec<u64>,
    latest: Option<(Checkpoint, String)>,
}

impl AuditedLog {
    /// Verifies `dir` like [`verify_dir_with`] and keeps what proofs need: 40 bytes per record.
    pub fn open(
        dir: &Path,
        key: &Verifier,
        trusted: Option<&str>,
        opts: VerifyOptions,
    ) -> Result<AuditedLog, VerifyError> {
        // Checkpoints first: a live log only grows, so records read after a checkpoint was
        // read include every record it covers.
        // Every checkpoint: signed by the key, one origin, named for its size.
        let mut files = checkpoints::list(dir)?;
        let count = files.len() as u64;
        let latest_path = layout::latest_checkpoint(dir);
        if latest_path.exists() {
            files.push((u64::MAX, latest_path)); // checked like the others; size from its body
        }
        let mut origin: Option<String> = None;
        let mut opened = Vec::with_capacity(files.len());
        for (named, path) in files {
            let named = (named != u64::MAX).then_some(named);
            let (checkpoint, note) = checkpoints::read(&path, key, origin.as_deref(), named)?;
            origin.get_or_insert_with(|| checkpoint.origin.clone());
            opened.push((path, checkpoint, note));
        }
        opened.sort_by_key(|(_, c, _)| c.size);

        // Every frame and record; an append in progress is only tolerated in a live log.
        let scanned = scan::scan(dir, true)?;
        if let Some(torn) = &scanned.torn
            && !opts.allow_unsigned_tail
        {
            return Err(torn.finding());
        }
        let records = scanned.tree.size();

        // Each checkpoint covers records the log holds, and signs their root.
        for (path, checkpoint, _) in &opened {
            checkpoints::check_size(path, checkpoint, records)?;
        }
        let sizes: Vec<u64> = opened.iter().map(|(_, c, _)| c.size).collect();
        let roots = checkpoints::roots_at(&scanned.tree, &sizes);
        for ((path, checkpoint, _), root) in opened.iter().zip(&roots) {
            checkpoints::check_root(path, checkpoint, root)?;
        }
        let latest = opened.pop().map(|(_, c, note)| (c, note));

        if let Some(trusted) = trusted {
            check_trusted(trusted, key, origin.as_deref(), &scanned.tree)?;
        }
        let covered = latest.as_ref().map_or(0, |(c, _)| c.size);
        if records > covered && !opts.allow_unsigned_tail {
            return Err(VerifyError::UnsignedTail {
                first: covered,
                last: records - 1,
            });
        }
        let report = Report {
            records,
            checkpoints: count,
            latest: latest.as_ref().map(|(c, _)| (c.size, c.root)),
            unsigned_tail: records - covered,
            archived: scanned.archived,
        };
        Ok(AuditedLog {
            report,
            tree: scanned.tree,
            segments: scanned.segments,
            offsets: scanned.offsets,
            latest,
        })
    }

    /// What the verification covered.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The segments in the log directory, in order.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Every record's leaf hash, archived ones included.
    pub(crate) fn leaves(&self) -> &[Hash] {
        self.tree.leaves()
    }

    /// How many records were moved to an archive.
    pub fn archived(&self) -> u64 {
        self.report.archived
    }

    /// The latest checkpoint's note.
    pub fn checkpoint_note(&self) -> Option<&str> {
        self.latest.as_ref().map(|(_, note)| note.as_str())
    }

    /// The stored bytes of record `seq` (its leaf), read from its frame and checked against
    /// the verified tree (the file may have changed since).
    pub fn record_bytes(&self, seq: u64) -> Result<Vec<u8>, Error> {
        let size = self.tree.size();
        let out_of_range = || Error::OutOfRange {
            what: "seq",
            value: seq,
            size,
        };
        if seq < self.report.archived {
            return Err(Error::OutOfRange {
                what: "seq (archived: its record is in the archive, its hash still here)",
                value: seq,
                size,
            });
        }
        let offset = *self
            .offsets
            .get((seq - self.report.archived) as usize)
            .ok_or_else(out_of_range)?;
        let at = self.segments.partition_point(|s| s.first <= seq);
        let segment = at
            .checked_sub(1)
            .map(|i| &self.segments[i])
            .ok_or_else(out_of_range)?;
        let changed = || {
            Error::MalformedRecord(format!(
                "{} changed since it was verified",
                segment.path.display()
            ))
        };
        let read = |file: &mut fs::File, buf: &mut [u8]| {
            file.read_exact(buf)
                .map_err(Error::io("read", &segment.path))
        };
        let mut file = fs::File::open(&segment.path).map_err(Error::io("open", &segment.path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(Error::io("seek in", &segment.path))?;
        let mut len = [0; 4];
        read(&mut file, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RECORD_BYTES {
            return Err(changed());
        }
        let mut bytes = vec![0; len];
        read(&mut file, &mut bytes)?;
        if merkle::leaf_hash(&bytes) != self.tree.leaves()[seq as usize] {
            return Err(changed());
        }
        Ok(bytes)
    }

    /// Record `seq`.
    pub fn record(&self, seq: u64) -> Result<Record, Error> {
        Record::from_bytes(&self.record_bytes(seq)?)
    }

    /// The proof that record `seq` is in the latest checkpoint.
    pub fn prove_inclusion(&self, seq: u64) -> Result<InclusionProof, Error> {
        let (checkpoint, note) = self.latest_or_err()?;
        let hashes = merkle::inclusion_proof(&self.tree, seq, checkpoint.size)?;
        let leaf = self.tree.leaves()[seq as usize];
        Ok(InclusionProof {
            index: seq,
            leaf,
            hashes,
            checkpoint: note.clone(),
        })
    }

    /// The proof that the tree of `old` records is a prefix of the latest checkpoint's.
    pub fn prove_consistency(&self, old: u64) -> Result<ConsistencyProof, Error> {
        let (checkpoint, note) = self.latest_or_err()?;
        let hashes = merkle::consistency_proof(&self.tree, old, checkpoint.size)?;
        let old_root = merkle::root(&self.tree, old);
        Ok(ConsistencyProof {
            old_size: old,
            old_root,
            hashes,
            checkpoint: note.clone(),
        })
    }

    /// The root of the first `size` records.
    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        if size > self.tree.size() {
            return Err(Error::OutOfRange {
                what: "tree size",
                value: size,
                size: self.tree.size(),
            });
        }
        Ok(merkle::root(&self.tree, size))
    }

    fn latest_or_err(&self) -> Result<&(Checkpoint, String), Error> {
        self.latest
            .as_ref()
            .ok_or(Error::MalformedCheckpoint("the log has no checkpoint yet"))
    }
}

fn check_trusted(
    trusted: &str,
    key: &Verifier,
    origin: Option<&str>,
    tree: &Tree,
) -> Result<(), VerifyError> {
    let checkpoint = Checkpoint::open(trusted, key).map_err(VerifyError::BadTrusted)?;
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        let found = checkpoint.origin;
        return Err(VerifyError::BadTrusted(Error::WrongOrigin {
            found,
            expected: expected.into(),
        }));
    }
    let records = tree.size();
    if checkpoint.size > records {
        return Err(VerifyError::RolledBack {
            size: checkpoint.size,
            records,
        });
    }
    let computed = merkle::root(tree, checkpoint.size);
    if computed != checkpoint.root {
        use base64::Engine;
        let b64 = |h: &Hash| base64::engine::general_purpose::STANDARD.encode(h);
        return Err(VerifyError::Forked {
            size: checkpoint.size,
            trusted: b64(&checkpoint.root),
            computed: b64(&computed),
        });
    }
    Ok(())
}
