//! The checkpointer thread: signs a checkpoint every `checkpoint_every` records or
//! `checkpoint_interval` after the first uncovered record, whichever comes first, when asked
//! (`checkpoint_now`), and once more at close.
//!
//! It signs the tree as the writer left it, and the writer adds leaves only after their
//! fdatasync: a checkpoint never covers a record that is not durable. Each checkpoint is
//! written to `checkpoints/<size>` and then to `checkpoint`, each by write temp + fsync +
//! rename + fsync directory, so a crash leaves every checkpoint file whole (old or new).
//! It runs apart from the writer so that the four fsyncs of a checkpoint never hold up an
//! append.

use std::time::Instant;

use super::shared::{PanicGuard, Shared, lock};
use crate::checkpoint::Checkpoint;
use crate::merkle::HashStore;
use crate::{Error, layout};

pub(crate) fn run(shared: &Shared) {
    let _guard = PanicGuard {
        shared,
        thread: "checkpointer",
    };
    loop {
        let (requests, closing) = {
            let mut state = lock(&shared.checkpoints);
            loop {
                if !state.requests.is_empty() || state.poke || state.closing {
                    break;
                }
                match state.due {
                    Some(due) => {
                        let now = Instant::now();
                        if now >= due {
                            break;
                        }
                        state = shared
                            .checkpoint_wanted
                            .wait_timeout(state, due - now)
                            .map(|(guard, _)| guard)
                            .unwrap_or_else(|e| e.into_inner().0);
                    }
                    None => {
                        state = shared
                            .checkpoint_wanted
                            .wait(state)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                }
            }
            state.poke = false;
            if state.due.is_some_and(|due| due <= Instant::now()) {
                state.due = None; // this checkpoint covers whatever was due
            }
            (std::mem::take(&mut state.requests), state.closing)
        };
        let outcome = checkpoint(shared);
        for request in requests {
            let _ = request.send(outcome.as_ref().map(Clone::clone).map_err(copy));
        }
        if closing {
            return;
        }
    }
}

/// Signs and stores a checkpoint of every durable record, unless the latest already covers
/// them; returns the latest note.
fn checkpoint(shared: &Shared) -> Result<String, Error> {
    if let Some(failure) = shared.failure() {
        return Err(failure);
    }
    let (size, root) = {
        let tree = shared.read_tree();
        (tree.size(), tree.root())
    };
    {
        let state = lock(&shared.checkpoints);
        if let Some(latest) = &state.latest
            && state.covered == size
        {
            return Ok(latest.clone());
        }
    }
    let note = Checkpoint::new(&shared.origin, size, root)
        .sign(&shared.signer)
        .and_then(|note| store(shared, size, &note).map(|()| note))
        .map_err(|e| shared.fail(&e))?;
    let mut state = lock(&shared.checkpoints);
    state.covered = size;
    state.latest = Some(note.clone());
    // Records that became durable while this one was written are due one interval from now.
    state.due = (shared.size() > size).then(|| Instant::now() + shared.opts.checkpoint_interval);
    Ok(note)
}

fn store(shared: &Shared, size: u64, note: &str) -> Result<(), Error> {
    let numbered = layout::checkpoints_dir(&shared.dir).join(layout::checkpoint_name(size));
    layout::replace(&numbered, note.as_bytes())?;
    layout::replace(&layout::latest_checkpoint(&shared.dir), note.as_bytes())
}

/// The copy of a checkpoint error each waiter gets.
fn copy(e: &Error) -> Error {
    match e {
        Error::Failed { cause } => Error::Failed {
            cause: cause.clone(),
        },
        other => Error::Failed {
            cause: other.to_string(),
        },
    }
}
