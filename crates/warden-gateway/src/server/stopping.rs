//! A serving thread's connections, told to stop without a cost on every call.
//!
//! Each connection is hyper's own HTTP/1.1 connection. To stop gracefully, each must be told
//! (hyper then finishes the request it is answering and closes; an idle one closes at once), so
//! its task must be woken and look for the word. axum's `serve` (like hyper-util's graceful
//! shutdown) had every connection's task poll a shutdown signal next to the connection each
//! time it ran: a `watch` channel's notification, which takes the channel's lock to check its
//! waker, three times per call. Here each connection's task puts its waker in a list its thread
//! keeps, once, and reads one flag each time it runs; [`stop`] sets the flag and wakes them all,
//! on the thread itself, and [`ended`] waits until every connection has ended.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use hyper::server::conn::http1::Connection;
use hyper_util::rt::TokioIo;

use super::share::Counted;
use crate::transport::Entry;

/// One client connection, served by hyper.
type Served = Connection<TokioIo<Counted>, Entry>;

thread_local! {
    static CONNECTIONS: RefCell<Connections> = RefCell::new(Connections::default());
}

/// The connections of this thread.
#[derive(Default)]
struct Connections {
    stopping: bool,
    /// A slot per connection that has run, holding its task's waker.
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
    /// Connections made and not yet dropped (run or not).
    live: usize,
    /// Who waits in [`ended`].
    ended: Option<Waker>,
}

/// A connection that stops gracefully when its thread does.
pub(super) struct Watched {
    conn: Pin<Box<Served>>,
    slot: Option<usize>,
    shutting: bool,
}

impl Watched {
    pub(super) fn new(conn: Served) -> Watched {
        CONNECTIONS.with_borrow_mut(|c| c.live += 1);
        Watched {
            conn: Box::pin(conn),
            slot: None,
            shutting: false,
        }
    }
}

impl Future for Watched {
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        let this = &mut *self;
        if !this.shutting {
            let stopping = CONNECTIONS.with_borrow_mut(|c| {
                match this.slot {
                    Some(i) => match &mut c.wakers[i] {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    },
                    None => {
                        let waker = Some(cx.waker().clone());
                        this.slot = Some(match c.free.pop() {
                            Some(i) => {
                                c.wakers[i] = waker;
                                i
                            }
                            None => {
                                c.wakers.push(waker);
                                c.wakers.len() - 1
                            }
                        });
                    }
                }
                c.stopping
            });
            if stopping {
                this.conn.as_mut().graceful_shutdown();
                this.shutting = true;
            }
        }
        this.conn.as_mut().poll(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // `try_with`: the thread may be ending, its list already gone.
        let _ = CONNECTIONS.try_with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = self.slot {
                c.wakers[i] = None;
                c.free.push(i);
            }
            c.live -= 1;
            if c.live == 0
                && let Some(waiting) = c.ended.take()
            {
                waiting.wake();
            }
        });
    }
}

/// Tells this thread's connections to stop: each finishes what it is answering, then closes.
pub(super) fn stop() {
    CONNECTIONS.with_borrow_mut(|c| {
        c.stopping = true;
        // Woken tasks run later, on this thread's loop, not inside this borrow.
        for waker in c.wakers.iter().flatten() {
            waker.wake_by_ref();
        }
    });
}

/// Until every connection of this thread has ended.
pub(super) async fn ended() {
    std::future::poll_fn(|cx| {
        CONNECTIONS.with_borrow_mut(|c| match c.live {
            0 => Poll::Ready(()),
            _ => {
                c.ended = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    })
    .await;
}
