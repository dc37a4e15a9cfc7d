//! What [`Log::open`](crate::Log::open) does before the threads start: read the directory
//! back, cut a torn tail, and check the records against the latest checkpoint.

use std::fs::{self, OpenOptions};
use std::path::Path;

use serde_json::{Value, json};

use super::writer::SegmentWriter;
use crate::checkpoint::Checkpoint;
use crate::merkle::Tree;
use crate::note::Signer;
use crate::scan::{self, Torn};
use crate::verify::checkpoints;
use crate::{Error, layout};

/// What recovery found and fixed.
pub(crate) struct Recovered {
    pub tree: Tree,
    pub segment: SegmentWriter,
    pub cut: Option<Cut>,
    /// The latest checkpoint and its note.
    pub latest: Option<(Checkpoint, String)>,
}

/// A torn tail that recovery cut away.
#[derive(Clone, Debug)]
pub(crate) struct Cut {
    segment: String,
    offset: u64,
    bytes: u64,
    seq: u64,
    problem: String,
    saved: String,
}

impl Cut {
    /// The `detail` of the `log_cut` record.
    pub fn detail(&self) -> Value {
        json!({
            "segment": self.segment,
            "offset": self.offset,
            "bytes": self.bytes,
            "seq": self.seq,
            "problem": self.problem,
            "saved": self.saved,
        })
    }
}

pub(crate) fn recover(dir: &Path, signer: &Signer, origin: &str) -> Result<Recovered, Error> {
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(Error::MalformedCheckpoint(
            "the origin must be one non-empty line",
        ));
    }
    let segments_dir = layout::segments_dir(dir);
    let checkpoints_dir = layout::checkpoints_dir(dir);
    layout::create_dir(dir)?;
    layout::create_dir(&segments_dir)?;
    layout::create_dir(&checkpoints_dir)?;
    remove_temporary_files(dir)?;
    remove_temporary_files(&checkpoints_dir)?;

    let scanned = scan::scan(dir, false)?;
    let key = signer.verifier();
    let latest = checkpoints::latest(dir, &key, Some(origin))?;
    if let Some((path, checkpoint, _)) = &latest {
        checkpoints::check_against_tree(path, checkpoint, &scanned.tree)?;
    }
    let cut = match &scanned.torn {
        Some(torn) => Some(cut_tail(dir, torn)?),
        None => None,
    };
    let segment = match scanned.segments.last() {
        Some(last) => SegmentWriter::open(last.path.clone(), last.len)?,
        None => {
            let writer = SegmentWriter::open(segments_dir.join(layout::segment_name(0)), 0)?;
            layout::sync_dir(&segments_dir)?;
            writer
        }
    };
    Ok(Recovered {
        tree: scanned.tree,
        segment,
        cut,
        latest: latest.map(|(_, checkpoint, note)| (checkpoint, note)),
    })
}

/// Saves the torn bytes under `cut/`, then truncates the segment before them.
fn cut_tail(dir: &Path, torn: &Torn) -> Result<Cut, Error> {
    let data = fs::read(&torn.segment).map_err(Error::io("read", &torn.segment))?;
    let tail = data.get(torn.offset as usize..).unwrap_or_default();
    // The zeros of preallocated space after it are no part of what was cut.
    let written = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let tail = &tail[..written];
    let cut_dir = layout::cut_dir(dir);
    layout::create_dir(&cut_dir)?;
    let saved = format!("{:020}-{}.bin", torn.seq, torn.offset);
    layout::replace(&cut_dir.join(&saved), tail)?;
    let file = OpenOptions::new()
        .write(true)
        .open(&torn.segment)
        .map_err(Error::io("open", &torn.segment))?;
    file.set_len(torn.offset)
        .map_err(Error::io("truncate", &torn.segment))?;
    file.sync_all().map_err(Error::io("fsync", &torn.segment))?;
    let segment = torn
        .segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    Ok(Cut {
        segment: segment.unwrap_or_default(),
        offset: torn.offset,
        bytes: torn.bytes,
        seq: torn.seq,
        problem: torn.problem.to_string(),
        saved: format!("cut/{saved}"),
    })
}

/// Removes the temporary files a crash inside `layout::replace` can leave.
fn remove_temporary_files(dir: &Path) -> Result<(), Error> {
    let names = layout::list(dir).map_err(Error::io("list", dir))?;
    for name in names.iter().filter(|n| layout::is_temp(n)) {
        let path = dir.join(name);
        fs::remove_file(&path).map_err(Error::io("remove", &path))?;
    }
    Ok(())
}
