//! Disk faults on demand, so tests can show the log fails closed.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Makes the writer's next segment write or fdatasync fail as a failing disk would. Cheap to
/// clone; every clone arms the same log. For tests: production code leaves
/// [`Options::faults`](crate::Options::faults) at its default, which never fires.
#[derive(Clone, Default)]
pub struct FaultInjector {
    inner: Arc<Faults>,
}

#[derive(Default)]
struct Faults {
    write: AtomicBool,
    sync: AtomicBool,
    panic: AtomicBool,
}

impl FaultInjector {
    /// An injector with nothing armed.
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    /// The next write to a segment fails (once).
    pub fn fail_next_write(&self) {
        self.inner.write.store(true, Ordering::SeqCst);
    }

    /// The next fdatasync of a segment fails (once).
    pub fn fail_next_sync(&self) {
        self.inner.sync.store(true, Ordering::SeqCst);
    }

    /// The next write to a segment panics (once), as a bug in the commit would: on the
    /// writer thread, or on the caller's for [`Log::append_now`](crate::Log::append_now).
    pub fn panic_next_write(&self) {
        self.inner.panic.store(true, Ordering::SeqCst);
    }

    pub(crate) fn write(&self) -> io::Result<()> {
        if self.inner.panic.swap(false, Ordering::SeqCst) {
            panic!("injected panic in a commit");
        }
        fire(&self.inner.write, "injected write fault")
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        fire(&self.inner.sync, "injected fdatasync fault")
    }
}

fn fire(armed: &AtomicBool, what: &str) -> io::Result<()> {
    if armed.swap(false, Ordering::SeqCst) {
        Err(io::Error::other(what.to_string()))
    } else {
        Ok(())
    }
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("write", &self.inner.write.load(Ordering::Relaxed))
            .field("sync", &self.inner.sync.load(Ordering::Relaxed))
            .field("panic", &self.inner.panic.load(Ordering::Relaxed))
            .finish()
    }
}
