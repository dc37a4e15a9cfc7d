//! Retention: moving old segments out of the log directory (to archive storage) while every
//! proof stays possible.
//!
//! A proof needs the records' leaf hashes, not the records. So [`archive`] first writes the leaf
//! hashes of everything it is about to move to `DIR/archived.hashes` (32 bytes per record, in
//! seq order; written whole by temp + fsync + rename + fsync dir), and only then copies each
//! segment to the archive (fsync), and removes it from `DIR/segments` (fsync dir). From then
//! on the tree starts from those hashes: [`crate::Log::open`] and [`crate::verify_dir`] read them
//! before the segments that remain.
//!
//! Nothing is trusted for being there: the hashes are bound by the signed checkpoints, whose
//! roots are recomputed from them (a changed hash fails verification at the first checkpoint
//! that covers it), and an archived segment can be checked against them at any time.
//!
//! Only whole segments go, never the one being written, and only those every record of which a
//! signed checkpoint covers. A crash part-way leaves segments that the hashes already cover in
//! `DIR/segments`; they are passed over and archived by the next run.

use std::fs;
use std::path::{Path, PathBuf};

use crate::merkle::Hash;
use crate::verify::{AuditedLog, VerifyError, VerifyOptions};
use crate::{Error, Verifier, layout};

/// The file of the archived records' leaf hashes.
pub(crate) fn hashes_path(dir: &Path) -> PathBuf {
    dir.join("archived.hashes")
}

/// The leaf hashes of the archived records, in seq order (none when nothing was archived).
pub(crate) fn archived_hashes(dir: &Path) -> Result<Vec<Hash>, VerifyError> {
    let path = hashes_path(dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(VerifyError::Io { path, source }),
    };
    if bytes.len() % 32 != 0 {
        return Err(VerifyError::StrayFile { path });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// What [`archive`] moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Archived {
    /// Records archived in all, this run and earlier ones.
    pub records: u64,
    /// The segment files this run moved, as they are now named in the archive.
    pub segments: Vec<PathBuf>,
}

/// Verifies the log in `dir` with `key`, then moves every segment whose records a signed
/// checkpoint covers — all but the one being written — to the directory `to`, keeping their
/// leaf hashes in `dir` so that proofs stay possible. Safe while the gateway writes the log.
pub fn archive(dir: &Path, to: &Path, key: &Verifier) -> Result<Archived, Error> {
    let live = VerifyOptions {
        allow_unsigned_tail: true,
    };
    let log = AuditedLog::open(dir, key, None, live).map_err(|e| Error::Damaged(Box::new(e)))?;
    let covered = log.report().latest.map_or(0, |(size, _)| size);
    let segments = log.segments();
    // A segment can go when the next one starts at or below what is signed.
    let movable: Vec<_> = segments
        .windows(2)
        .take_while(|w| w[1].first <= covered)
        .map(|w| (&w[0], w[1].first))
        .collect();
    let Some(&(_, keep_from)) = movable.last() else {
        return Ok(Archived {
            records: log.archived(),
            segments: Vec::new(),
        });
    };
    let leaves: Vec<u8> = log.leaves()[..keep_from as usize].concat();
    layout::replace(&hashes_path(dir), &leaves)?;
    layout::create_dir(to)?;
    let mut moved = Vec::new();
    for (segment, _) in movable {
        let name = segment
            .path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        let target = to.join(&name);
        fs::copy(&segment.path, &target).map_err(Error::io("copy", &target))?;
        fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("fsync", &target))?;
        layout::sync_dir(to)?;
        fs::remove_file(&segment.path).map_err(Error::io("remove", &segment.path))?;
        moved.push(target);
    }
    layout::sync_dir(&layout::segments_dir(dir))?;
    Ok(Archived {
        records: keep_from,
        segments: moved,
    })
}
