//! Connections shared out evenly between the serving threads.
//!
//! Every serving thread accepts from the one listening socket, and the kernel wakes them all
//! for each new connection: whichever runs first takes it. That is not an even share. Clients
//! that connect one after another, while the threads are idle, were all taken by the same
//! thread (measured: the full pipeline bench's 16 connections all on one thread, the other
//! idle). So a thread that accepts a connection keeps it only if no other thread serves fewer;
//! otherwise it hands it to the one that serves fewest, through that thread's inbox.
//! Connections stay where they land, so a call is still never handed between threads.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A connection handed to another thread: the socket, taken off this thread's event loop, and
/// the client's address.
type Handed = (std::net::TcpStream, SocketAddr);

/// What the serving threads share: how many connections each serves, and their inboxes.
pub(super) struct Shares {
    serving: Vec<AtomicUsize>,
    inboxes: Vec<mpsc::UnboundedSender<Handed>>,
}

impl Shares {
    /// Shares for `threads` threads, and each thread's inbox.
    pub(super) fn new(threads: usize) -> (Arc<Shares>, Vec<mpsc::UnboundedReceiver<Handed>>) {
        let (inboxes, outs) = (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let shares = Shares {
            serving: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            inboxes,
        };
        (Arc::new(shares), outs)
    }

    /// How many connections each thread serves now.
    pub(super) fn serving(&self) -> Vec<usize> {
        self.serving
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// The thread that should serve a connection `me` just accepted: `me`, unless another
    /// thread serves fewer. The count of the thread chosen is raised at once, so that the next
    /// connection, accepted anywhere, sees it.
    fn place(&self, me: usize) -> usize {
        let count = |i: usize| self.serving[i].load(Ordering::Relaxed);
        let fewest = (0..self.serving.len())
            .min_by_key(|&i| (count(i), i != me))
            .unwrap_or(me);
        self.serving[fewest].fetch_add(1, Ordering::Relaxed);
        fewest
    }

    /// A connection counted for `thread` is no longer served there.
    fn release(&self, thread: usize) {
        self.serving[thread].fetch_sub(1, Ordering::Relaxed);
    }
}

/// One serving thread's listener (for `axum::serve`): its copy of the listening socket, and its
/// inbox of connections other threads accepted for it.
pub(super) struct Shared {
    me: usize,
    tcp: TcpListener,
    inbox: mpsc::UnboundedReceiver<Handed>,
    shares: Arc<Shares>,
}

impl Shared {
    pub(super) fn new(
        me: usize,
        tcp: TcpListener,
        inbox: mpsc::UnboundedReceiver<Handed>,
        shares: Arc<Shares>,
    ) -> Shared {
        Shared {
            me,
            tcp,
            inbox,
            shares,
        }
    }

    /// The next connection for this thread, accepted here or handed over; counted already.
    async fn next(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (tcp, peer) = tokio::select! {
                Some((tcp, peer)) = self.inbox.recv() => match TcpStream::from_std(tcp) {
                    // Counted by the thread that handed it over.
                    Ok(tcp) => return (tcp, peer),
                    Err(e) => {
                        self.shares.release(self.me);
                        tracing::warn!(error = %e, "cannot take over a connection accepted by another thread");
                        continue;
                    }
                },
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
            };
            let to = self.shares.place(self.me);
            if to == self.me {
                return (tcp, peer);
            }
            let handed = tcp.into_std().map_err(|e| e.to_string()).and_then(|std| {
                self.shares.inboxes[to]
                    .send((std, peer))
                    .map_err(|_| "that thread has stopped serving".to_string())
            });
            if let Err(e) = handed {
                // Dropped: the client sees the connection close and may connect again.
                self.shares.release(to);
                tracing::warn!(error = %e, "cannot hand a connection to another serving thread");
            }
        }
    }
}

/// As `axum` does for its own listeners: a connection that failed before it was accepted is
/// nothing to wait for; anything else (out of descriptors, say) is logged and retried in a
/// second, when connections may have closed.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl Shared {
    /// The next connection this thread serves, and its peer.
    pub(super) async fn accept(&mut self) -> (Counted, SocketAddr) {
        let (tcp, peer) = self.next().await;
        // Replies and SSE events are written whole, so nothing is gained by Nagle's algorithm,
        // and an event written while the previous one is unacknowledged would wait for the ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let counted = Counted {
            tcp,
            thread: self.me,
            shares: self.shares.clone(),
        };
        (counted, peer)
    }
}

/// A connection being served, counted for its thread until it closes.
pub struct Counted {
    tcp: TcpStream,
    thread: usize,
    shares: Arc<Shares>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.shares.release(self.thread);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
