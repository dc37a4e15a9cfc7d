//! Where things live in a log directory, and the one careful way files are replaced.
//!
//! ```text
//! DIR/segments/<20-digit first seq>.seg   frames, append-only
//! DIR/checkpoints/<20-digit size>         one signed checkpoint note each
//! DIR/checkpoint                          the latest signed checkpoint note
//! DIR/cut/<20-digit seq>-<offset>.bin     bytes a recovery cut away, kept for forensics
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// The directory of segment files.
pub fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}

/// The directory of all checkpoints.
pub fn checkpoints_dir(dir: &Path) -> PathBuf {
    dir.join("checkpoints")
}

/// The latest checkpoint.
pub fn latest_checkpoint(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

/// The directory of cut-away tails.
pub fn cut_dir(dir: &Path) -> PathBuf {
    dir.join("cut")
}

/// A segment's file name: its first record's seq, 20 digits, `.seg`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// A checkpoint's file name: its tree size, 20 digits.
pub fn checkpoint_name(size: u64) -> String {
    format!("{size:020}")
}

/// The number a 20-digit file name stands for (`.seg` stripped by the caller).
pub fn parse_number(name: &str) -> Option<u64> {
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// The first seq of a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_number(name.strip_suffix(".seg")?)
}

/// The file names in `dir`, sorted; a name that is not UTF-8 is returned lossily (and will
/// then not parse as a segment or checkpoint).
pub fn list(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Makes `dir`'s entries durable (new, renamed or removed files).
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))
}

/// Creates `dir` if absent, durably (its parent is synced when it was created).
pub fn create_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file whole:
/// write a temporary file, fsync it, rename it over `path`, fsync the directory.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_name(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))?;
    file.write_all(bytes).map_err(Error::io("write", &tmp))?;
    file.sync_all().map_err(Error::io("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename into place", path))?;
    sync_dir(dir)
}

/// The temporary name [`replace`] writes before renaming: `.<name>.tmp`, which no reader
/// takes for a checkpoint.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Whether `name` is a temporary file [`replace`] left behind in a crash.
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("0000000000000000042.seg"), None);
        assert_eq!(parse_number(&checkpoint_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_number("99999999999999999999"), None);
        assert!(is_temp(".00000000000000000042.tmp") && !is_temp("00000000000000000042"));
    }
}
