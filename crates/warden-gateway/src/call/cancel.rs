//! A legacy call's cancel: set once, by the client's `notifications/cancelled` or by the end of
//! its session, and waited on by the call itself.
//!
//! A flag and one waker. A `tokio_util` `CancellationToken` (a child of the session's, as each
//! call had before) takes a lock to be made, cloned, looked at and dropped, and registers a
//! waiter on a `Notify` under another lock each time it is waited on; this is an atomic load
//! and, while waiting, a waker kept once. The session cancels its calls itself when it ends
//! (`session::Calls`), which is all the token tree did for a call.
//!
//! One task waits at a time: the one that drives the call (the connection's, which polls the
//! held call and the relay in turn). A wait from another task would take the waker from it.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures::task::AtomicWaker;

#[derive(Clone, Default)]
pub struct Cancel(Arc<Flag>);

#[derive(Default)]
struct Flag {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels the call and wakes its wait; a second cancel changes nothing.
    pub fn cancel(&self) {
        self.0.set.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.set.load(Ordering::Acquire)
    }

    /// Waits until the call is cancelled. The flag is looked at again after the waker is kept,
    /// so a cancel between the first look and the keeping is not missed.
    pub async fn cancelled(&self) {
        poll_fn(|cx| {
            if self.is_cancelled() {
                return Poll::Ready(());
            }
            self.0.waker.register(cx.waker());
            if self.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether `self` and `other` are the same call's cancel.
    #[cfg(test)]
    pub(crate) fn same(&self, other: &Cancel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake, Waker};

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wait_ends_on_the_cancel_and_its_waker_is_woken_once() {
        let cancel = Cancel::new();
        let counted = Arc::new(Counted::default());
        let waker = Waker::from(counted.clone());
        let mut cx = Context::from_waker(&waker);
        let mut waiting = pin!(cancel.cancelled());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(!cancel.is_cancelled());

        let from_elsewhere = cancel.clone();
        std::thread::spawn(move || from_elsewhere.cancel())
            .join()
            .unwrap();
        assert_eq!(counted.0.load(Ordering::SeqCst), 1);
        assert!(cancel.is_cancelled());
        assert!(waiting.as_mut().poll(&mut cx).is_ready());

        // Cancelled already: a new wait ends at once, and a second cancel wakes nobody.
        cancel.cancel();
        assert!(pin!(cancel.cancelled()).poll(&mut cx).is_ready());
        assert_eq!(counted.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_wait_of_a_new_task_is_the_one_woken() {
        let cancel = Cancel::new();
        let (first, second) = (Arc::new(Counted::default()), Arc::new(Counted::default()));
        let mut wait = pin!(cancel.cancelled());
        let first_waker = Waker::from(first.clone());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&first_waker))
                .is_pending()
        );
        // The call moved on to another task (a held call resumed elsewhere, say).
        let second_waker = Waker::from(second.clone());
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        cancel.cancel();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }
}
