//! A call's channel of events from its link's reader: a bounded queue with one receiver (the
//! call) and senders that the link's map of calls in flight hands out.
//!
//! A stdio call's events all come through it (the child's stdout is read by the link), and every
//! call on a legacy HTTP session has one (the session's GET stream may speak of any call), most
//! of which close without carrying anything. A `tokio` channel costs two allocations, its first
//! block, several atomic operations and a semaphore's close per call; this one is one allocation
//! and a few uncontended locks. What it keeps: at most [`CAPACITY`] events wait, and a sender
//! waits for room (the reader stops reading the upstream until the call catches up); a sender
//! learns that the call is gone and gets its event back; the call learns that every sender is
//! gone once the queue is empty.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::sync::Notify;

use super::UpstreamEvent;

/// Events queued per call before a sender waits for the call to catch up.
pub const CAPACITY: usize = 64;

struct Shared {
    state: Mutex<State>,
    /// The receiver's task, woken when an event is queued or the last sender goes.
    receiver: AtomicWaker,
    /// Senders waiting for room, woken when the receiver takes an event or goes.
    room: Notify,
    senders: AtomicUsize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<UpstreamEvent>,
    receiver_gone: bool,
    senders_gone: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; the queue is sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes a channel: the sender for the link's map, the receiver for the call.
pub fn channel() -> (EventTx, EventRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        receiver: AtomicWaker::new(),
        room: Notify::new(),
        senders: AtomicUsize::new(1),
    });
    (EventTx(shared.clone()), EventRx(shared))
}

pub struct EventTx(Arc<Shared>);

impl EventTx {
    /// Queues `event`, waiting while the queue is full; gives it back if the call is gone.
    pub async fn send(&self, event: UpstreamEvent) -> Result<(), UpstreamEvent> {
        let room = self.0.room.notified();
        tokio::pin!(room);
        loop {
            // Registered before looking, so that room made after the look still wakes it.
            room.as_mut().enable();
            {
                let mut state = self.0.lock();
                if state.receiver_gone {
                    return Err(event);
                }
                if state.queue.len() < CAPACITY {
                    state.queue.push_back(event);
                    drop(state);
                    self.0.receiver.wake();
                    return Ok(());
                }
            }
            room.as_mut().await;
            room.set(self.0.room.notified());
        }
    }
}

impl Clone for EventTx {
    fn clone(&self) -> EventTx {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        EventTx(self.0.clone())
    }
}

impl Drop for EventTx {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.lock().senders_gone = true;
            self.0.receiver.wake();
        }
    }
}

impl std::fmt::Debug for EventTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventTx")
    }
}

pub struct EventRx(Arc<Shared>);

impl EventRx {
    /// The next event; `None` once every sender is gone and nothing is left.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<UpstreamEvent>> {
        let mut state = self.0.lock();
        if let Some(event) = state.queue.pop_front() {
            let was_full = state.queue.len() + 1 == CAPACITY;
            drop(state);
            if was_full {
                self.0.room.notify_waiters();
            }
            return Poll::Ready(Some(event));
        }
        if state.senders_gone {
            return Poll::Ready(None);
        }
        // Registered while the lock is held: an event queued after it is released wakes this
        // waker.
        self.0.receiver.register(cx.waker());
        Poll::Pending
    }

    pub async fn recv(&mut self) -> Option<UpstreamEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl Drop for EventRx {
    fn drop(&mut self) {
        // Forgotten first: the last sender's going must not wake the task that polled this
        // receiver (it may be running, and a task woken while it runs is queued again).
        drop(self.0.receiver.take());
        let queued = {
            let mut state = self.0.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.queue)
        };
        self.0.room.notify_waiters();
        // Dropped outside the lock: an event's drop may do anything.
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use super::*;
    use crate::upstream::UpstreamError;

    fn event(n: usize) -> UpstreamEvent {
        UpstreamEvent::Failed(UpstreamError::NoReply(n.to_string(), 500))
    }

    fn number(event: UpstreamEvent) -> usize {
        match event {
            UpstreamEvent::Failed(UpstreamError::NoReply(n, _)) => n.parse().unwrap(),
            _ => panic!("not a numbered event"),
        }
    }

    #[tokio::test]
    async fn events_arrive_in_order_and_the_end_after_the_last_sender() {
        let (tx, mut rx) = channel();
        let other = tx.clone();
        tx.send(event(1)).await.unwrap();
        other.send(event(2)).await.unwrap();
        drop(tx);
        assert_eq!(number(rx.recv().await.unwrap()), 1);
        drop(other);
        // Every sender is gone, but what was queued is still delivered, then the end.
        assert_eq!(number(rx.recv().await.unwrap()), 2);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_an_event_and_by_the_last_sender_going() {
        let (tx, mut rx) = channel();
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await.map(number);
            (first, rx.recv().await.is_none())
        });
        tokio::task::yield_now().await;
        tx.send(event(7)).await.unwrap();
        drop(tx);
        assert_eq!(waiting.await.unwrap(), (Some(7), true));
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_sender_until_the_receiver_takes_one() {
        let (tx, mut rx) = channel();
        for n in 0..CAPACITY {
            tx.send(event(n)).await.unwrap();
        }
        let mut held = pin!(tx.send(event(CAPACITY)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(held.as_mut().poll(&mut cx).is_pending());
        assert_eq!(number(rx.recv().await.unwrap()), 0);
        assert!(held.as_mut().await.is_ok());
        for n in 1..=CAPACITY {
            assert_eq!(number(rx.recv().await.unwrap()), n);
        }
    }

    #[tokio::test]
    async fn a_sender_gets_its_event_back_when_the_call_is_gone_even_while_it_waits() {
        let (tx, rx) = channel();
        for n in 0..CAPACITY {
            tx.send(event(n)).await.unwrap();
        }
        let tx2 = tx.clone();
        let held = tokio::spawn(async move { tx2.send(event(99)).await.map_err(number) });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(held.await.unwrap(), Err(99));
        assert_eq!(tx.send(event(100)).await.map_err(number), Err(100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_events_across_threads_arrive_once_each_in_order() {
        let (tx, mut rx) = channel();
        let sending = tokio::spawn(async move {
            for n in 0..10_000 {
                tx.send(event(n)).await.unwrap();
            }
        });
        for n in 0..10_000 {
            assert_eq!(number(rx.recv().await.unwrap()), n);
        }
        assert!(rx.recv().await.is_none());
        sending.await.unwrap();
    }
}
