//! Reading a log directory's segments back: every frame checked, every record parsed and its
//! seq checked against its position, the tree rebuilt. Shared by [`Log::open`] (which may cut
//! a torn tail) and the offline verifier (which reports it).
//!
//! [`Log::open`]: crate::Log::open

use std::fs;
use std::path::{Path, PathBuf};

use crate::frame::{self, FrameProblem};
use crate::layout;
use crate::merkle::{Tree, leaf_hash};
use crate::record::Record;
use crate::verify::VerifyError;

/// One segment file as scanned.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    /// The seq of its first record (its name).
    pub first: u64,
    /// The bytes of its valid frames (its length, less any torn tail).
    pub len: u64,
}

/// An interrupted append at the end of the last segment.
#[derive(Clone, Debug)]
pub(crate) struct Torn {
    pub segment: PathBuf,
    pub offset: u64,
    /// The seq the torn frame would have had.
    pub seq: u64,
    pub problem: FrameProblem,
    /// The bytes from `offset` to the end of the file.
    pub bytes: u64,
}

impl Torn {
    /// The finding a verifier reports for this tail.
    pub fn finding(&self) -> VerifyError {
        VerifyError::BadFrame {
            segment: self.segment.clone(),
            offset: self.offset,
            seq: self.seq,
            problem: self.problem,
        }
    }
}

/// A log directory's records, as far as they are valid.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    pub tree: Tree,
    pub segments: Vec<Segment>,
    /// Each record's frame offset in its segment (kept only when asked for).
    pub offsets: Vec<u64>,
    pub torn: Option<Torn>,
    /// Records moved to an archive ([`crate::archive`]): the tree starts with their leaf hashes.
    pub archived: u64,
}

/// Scans `dir/segments`. A problem that an interrupted append leaves at the very end of the
/// last segment is returned as [`Scanned::torn`]; any other problem is an error.
pub(crate) fn scan(dir: &Path, keep_offsets: bool) -> Result<Scanned, VerifyError> {
    let segments_dir = layout::segments_dir(dir);
    if !segments_dir.is_dir() {
        return Err(VerifyError::NotALog {
            dir: dir.to_path_buf(),
        });
    }
    let names = layout::list(&segments_dir).map_err(|source| VerifyError::Io {
        path: segments_dir.clone(),
        source,
    })?;
    let mut found = Vec::new();
    for name in names {
        let path = segments_dir.join(&name);
        match layout::parse_segment_name(&name) {
            Some(first) => found.push((first, path)),
            None => return Err(VerifyError::StrayFile { path }),
        }
    }
    let mut scanned = Scanned::default();
    for leaf in crate::archive::archived_hashes(dir)? {
        scanned.tree.push(leaf);
    }
    scanned.archived = scanned.tree.leaves().len() as u64;
    // Segments an interrupted archiving left behind are covered by the hashes already.
    found.retain(|(first, _)| *first >= scanned.archived);
    let count = found.len();
    for (i, (first, path)) in found.into_iter().enumerate() {
        let expected = scanned.tree.leaves().len() as u64;
        if first != expected {
            return Err(VerifyError::SegmentGap {
                path,
                expected,
                found: first,
            });
        }
        let data = fs::read(&path).map_err(|source| VerifyError::Io {
            path: path.clone(),
            source,
        })?;
        let (frames, mut stop) = frame::scan(&data);
        let mut end = data.len() as u64;
        // Only zeros after the frames: space preallocated for frames not written yet.
        if let Some(s) = stop
            && data[s.offset as usize..].iter().all(|&b| b == 0)
        {
            (stop, end) = (None, s.offset);
        }
        for f in &frames {
            add_record(&mut scanned, &path, f.offset, f.record, keep_offsets)?;
        }
        let seq = scanned.tree.leaves().len() as u64;
        let len = match stop {
            None => end,
            Some(stop) if stop.torn && i + 1 == count => {
                scanned.torn = Some(Torn {
                    segment: path.clone(),
                    offset: stop.offset,
                    seq,
                    problem: stop.problem,
                    // What was written of it: preallocated zeros after it are not.
                    bytes: data[stop.offset as usize..]
                        .iter()
                        .rposition(|&b| b != 0)
                        .map_or(0, |i| i as u64 + 1),
                });
                stop.offset
            }
            Some(stop) => {
                let (offset, problem) = (stop.offset, stop.problem);
                return Err(VerifyError::BadFrame {
                    segment: path,
                    offset,
                    seq,
                    problem,
                });
            }
        };
        scanned.segments.push(Segment { path, first, len });
    }
    Ok(scanned)
}

fn add_record(
    scanned: &mut Scanned,
    path: &Path,
    offset: u64,
    bytes: &[u8],
    keep_offsets: bool,
) -> Result<(), VerifyError> {
    let expected = scanned.tree.leaves().len() as u64;
    let record = Record::from_bytes(bytes).map_err(|reason| VerifyError::BadRecord {
        segment: path.to_path_buf(),
        offset,
        seq: expected,
        reason,
    })?;
    if record.seq != expected {
        return Err(VerifyError::WrongSeq {
            segment: path.to_path_buf(),
            offset,
            expected,
            found: record.seq,
        });
    }
    scanned.tree.push(leaf_hash(bytes));
    if keep_offsets {
        scanned.offsets.push(offset);
    }
    Ok(())
}
