//! Reading a log's records back while its writer may still be appending (for `show`, `tail` and
//! `export --follow`).
//!
//! The reader never writes and never judges: it returns the records of whole, valid frames in
//! order and stops quietly at the first frame that is not whole yet (an append in progress);
//! the next call picks up from there. Checking the log is [`crate::verify_dir`]'s work.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Error, frame, layout};

/// Follows the segments of a log directory.
pub struct Reader {
    dir: PathBuf,
    /// The segment being read (by its first seq) and the byte offset reached in it.
    segment: Option<u64>,
    offset: u64,
    /// The seq of the next record.
    next: u64,
}

impl Reader {
    /// A reader at the log's first record.
    pub fn open(dir: &Path) -> Result<Reader, Error> {
        let segments = layout::segments_dir(dir);
        if !segments.is_dir() {
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "not an audit log");
            return Err(Error::io("read", segments)(missing));
        }
        Ok(Reader {
            dir: dir.to_path_buf(),
            segment: None,
            offset: 0,
            next: 0,
        })
    }

    /// The records written since the last call, as `(seq, bytes)`, in order.
    pub fn next_batch(&mut self) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        let firsts = segment_firsts(&self.dir)?;
        for first in firsts {
            if self.segment.is_some_and(|s| first < s) {
                continue;
            }
            if self.segment.is_none() {
                // The first segment present: earlier ones may have been archived.
                self.next = first;
            }
            if self.segment != Some(first) {
                // A later segment starts only once the earlier ones are complete.
                if first != self.next {
                    break;
                }
                self.segment = Some(first);
                self.offset = 0;
            }
            let path = layout::segments_dir(&self.dir).join(layout::segment_name(first));
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| {
                    f.seek(SeekFrom::Start(self.offset))?;
                    f.read_to_end(&mut data)
                })
                .map_err(Error::io("read", &path))?;
            let (frames, _) = frame::scan(&data);
            for f in &frames {
                out.push((self.next, f.record.to_vec()));
                self.next += 1;
            }
            self.offset += frames.last().map_or(0, |f| {
                f.offset + (f.record.len() + frame::FRAME_OVERHEAD) as u64
            });
        }
        Ok(out)
    }
}

fn segment_firsts(dir: &Path) -> Result<Vec<u64>, Error> {
    let segments = layout::segments_dir(dir);
    let names = layout::list(&segments).map_err(Error::io("list", &segments))?;
    Ok(names
        .iter()
        .filter_map(|n| layout::parse_segment_name(n))
        .collect())
}
