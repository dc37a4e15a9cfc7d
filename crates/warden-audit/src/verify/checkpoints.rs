//! Reading checkpoint files and holding them against the records.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::VerifyError;
use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Frontier, Hash, HashStore, Tree};
use crate::note::Verifier;
use crate::{Error, layout};

/// The checkpoint files in `checkpoints/`, by size.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, VerifyError> {
    let checkpoints_dir = layout::checkpoints_dir(dir);
    if !checkpoints_dir.is_dir() {
        return Ok(Vec::new());
    }
    let names = layout::list(&checkpoints_dir).map_err(|source| VerifyError::Io {
        path: checkpoints_dir.clone(),
        source,
    })?;
    let mut found = Vec::new();
    for name in names.iter().filter(|n| !layout::is_temp(n)) {
        let path = checkpoints_dir.join(name);
        match layout::parse_number(name) {
            Some(size) => found.push((size, path)),
            None => return Err(VerifyError::StrayFile { path }),
        }
    }
    Ok(found)
}

/// Reads a checkpoint file: its signature by `key`, its origin (when one is expected), and
/// the size its name says (for files in `checkpoints/`).
pub(crate) fn read(
    path: &Path,
    key: &Verifier,
    origin: Option<&str>,
    named: Option<u64>,
) -> Result<(Checkpoint, String), VerifyError> {
    let bytes = fs::read(path).map_err(|source| VerifyError::Io {
        path: path.into(),
        source,
    })?;
    let bad = |problem| VerifyError::BadCheckpoint {
        path: path.into(),
        problem,
    };
    let note = String::from_utf8(bytes).map_err(|_| bad(Error::MalformedNote("not UTF-8")))?;
    let checkpoint = Checkpoint::open(&note, key).map_err(bad)?;
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        let found = checkpoint.origin.clone();
        return Err(bad(Error::WrongOrigin {
            found,
            expected: expected.to_string(),
        }));
    }
    if let Some(named) = named
        && named != checkpoint.size
    {
        let size = checkpoint.size;
        return Err(VerifyError::MisnamedCheckpoint {
            path: path.into(),
            named,
            size,
        });
    }
    Ok((checkpoint, note))
}

/// The latest checkpoint: the larger of `DIR/checkpoint` and the largest in `checkpoints/`
/// (a crash between writing the two leaves the second behind).
pub(crate) fn latest(
    dir: &Path,
    key: &Verifier,
    origin: Option<&str>,
) -> Result<Option<(PathBuf, Checkpoint, String)>, VerifyError> {
    let mut best: Option<(PathBuf, Checkpoint, String)> = None;
    if let Some((size, path)) = list(dir)?.pop() {
        let (checkpoint, note) = read(&path, key, origin, Some(size))?;
        best = Some((path, checkpoint, note));
    }
    let path = layout::latest_checkpoint(dir);
    if path.exists() {
        let (checkpoint, note) = read(&path, key, origin, None)?;
        if best
            .as_ref()
            .is_none_or(|(_, b, _)| checkpoint.size > b.size)
        {
            best = Some((path, checkpoint, note));
        }
    }
    Ok(best)
}

/// Checks that the records hold what `checkpoint` signs: at least its size, and its root.
pub(crate) fn check_against_tree(
    path: &Path,
    checkpoint: &Checkpoint,
    tree: &Tree,
) -> Result<(), VerifyError> {
    check_size(path, checkpoint, tree.size())?;
    check_root(path, checkpoint, &merkle::root(tree, checkpoint.size))
}

pub(crate) fn check_size(
    path: &Path,
    checkpoint: &Checkpoint,
    records: u64,
) -> Result<(), VerifyError> {
    if checkpoint.size > records {
        let size = checkpoint.size;
        return Err(VerifyError::MissingRecords {
            path: path.into(),
            size,
            records,
        });
    }
    Ok(())
}

pub(crate) fn check_root(
    path: &Path,
    checkpoint: &Checkpoint,
    computed: &Hash,
) -> Result<(), VerifyError> {
    if checkpoint.root != *computed {
        return Err(VerifyError::RootMismatch {
            path: path.into(),
            size: checkpoint.size,
            signed: STANDARD.encode(checkpoint.root),
            computed: STANDARD.encode(computed),
        });
    }
    Ok(())
}

/// The roots of `tree` at each of `sizes` (ascending, none above the tree's size), in one
/// pass over the leaves.
pub(crate) fn roots_at(tree: &Tree, sizes: &[u64]) -> Vec<Hash> {
    let mut frontier = Frontier::new();
    let mut leaves = tree.leaves().iter();
    sizes
        .iter()
        .map(|&size| {
            while frontier.size() < size {
                match leaves.next() {
                    Some(leaf) => frontier.push(*leaf),
                    None => break,
                }
            }
            frontier.root()
        })
        .collect()
}
