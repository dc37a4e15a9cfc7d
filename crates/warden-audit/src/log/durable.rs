//! The future an append returns: it resolves with the record's seq once the record is on disk
//! (fdatasync'd), or with the error that kept it off. No runtime needed: it can also be waited
//! for by blocking the thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use futures_channel::oneshot;

use crate::Error;

/// What the writer sends back for one record.
pub(crate) type Outcome = Result<u64, Error>;

/// The writer's end of one append.
pub(crate) type Reply = oneshot::Sender<Outcome>;

/// Resolves with a record's seq once it is durable. `Send + 'static`; dropping it does not
/// withdraw the record.
#[must_use = "an append is only known durable when its `Durable` resolves"]
#[derive(Debug)]
pub struct Durable {
    state: State,
}

#[derive(Debug)]
enum State {
    Ready(Option<Outcome>),
    Waiting(oneshot::Receiver<Outcome>),
}

impl Durable {
    /// A pending append and the writer's end of it.
    pub(crate) fn pending() -> (Durable, Reply) {
        let (tx, rx) = oneshot::channel();
        (
            Durable {
                state: State::Waiting(rx),
            },
            tx,
        )
    }

    /// An append decided at once (refused, usually).
    pub(crate) fn ready(outcome: Outcome) -> Durable {
        Durable {
            state: State::Ready(Some(outcome)),
        }
    }

    /// Blocks the calling thread until the record is durable (or refused).
    pub fn wait(self) -> Result<u64, Error> {
        block_on(self)
    }
}

impl Future for Durable {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match &mut self.state {
            // Polling again after completion answers `Closed` rather than panicking.
            State::Ready(outcome) => Poll::Ready(outcome.take().unwrap_or(Err(Error::Closed))),
            State::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
                // The writer dropped the reply without answering: it stopped.
                Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(Error::Closed)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the calling thread, parking between polls.
fn block_on<F: Future + Unpin>(mut future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = Pin::new(&mut future).poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}
