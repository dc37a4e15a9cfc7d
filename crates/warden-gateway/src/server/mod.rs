//! Starting and stopping the gateway.
//!
//! Requests are served by `[server] workers` threads (one per CPU core by default), each an
//! event loop of its own (a single-threaded runtime) that accepts from the one listening socket
//! and shares the connections out evenly (see `share`). A connection stays on the thread that
//! serves it, and so do the upstream connections its calls use (each thread keeps its own idle
//! ones, see `upstream::client`): a call is never handed between threads, as it was between the
//! workers of one shared runtime, where each hand-off woke a sleeping thread (see
//! `docs/benchmarks.md`, "One thread per connection").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod share;
mod stopping;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::transport::Entry;

/// Threads that keep idle upstream connections of their own; more serving threads share them
/// round. Index 0 is every thread that is not a serving one.
pub const MAX_SHARDS: usize = 16;

thread_local! {
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The serving thread this is (1 and up), or 0 on any other thread.
pub fn shard() -> usize {
    SHARD.with(std::cell::Cell::get)
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: CancellationToken,
    threads: Threads,
    shares: Arc<share::Shares>,
}

impl Running {
    /// How many client connections each serving thread serves now.
    pub fn connections_per_thread(&self) -> Vec<usize> {
        self.shares.serving()
    }

    pub fn mcp_url(&self) -> String {
        self.gateway.config.server.public_url.clone()
    }

    /// Stops accepting, lets in-flight requests finish, ends upstream links.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.stop.cancel();
        let result = self.threads.served().await;
        // The serving threads still run what was started on them (upstream links among it)
        // until the links are closed.
        self.gateway.pool.shutdown().await;
        // Everything answered is on the record; a last checkpoint signs it.
        self.gateway.audit.close();
        self.threads.end().await;
        result
    }

    /// Waits until the server ends (it ends only when stopped or on an accept error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = self.threads.served().await;
        self.threads.end().await;
        result
    }
}

/// The serving threads. Dropped without [`Running::stop`], they stop serving and end at once.
struct Threads {
    /// Each thread's serving result: sent when its listener closed and its connections ended.
    served: Vec<oneshot::Receiver<std::io::Result<()>>>,
    /// Stops their serving (a copy of [`Running`]'s).
    stop: CancellationToken,
    /// Lets the threads end their runtimes.
    end: CancellationToken,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    /// Waits until every thread has stopped serving; the first error, if any.
    async fn served(&mut self) -> std::io::Result<()> {
        let mut result = Ok(());
        for rx in self.served.drain(..) {
            if let Ok(Err(e)) = rx.await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }

    async fn end(&mut self) {
        self.end.cancel();
        let handles = std::mem::take(&mut self.handles);
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.cancel();
        self.end.cancel();
    }
}

/// With `listen` on port 0, the URL derived from it names the port actually bound (and so does
/// the token audience when it was derived from that URL).
fn settle_port(config: &mut Config, addr: SocketAddr) {
    let server = &mut config.server;
    let derived = format!("http://{}{}", server.listen, server.path);
    if server.listen.port() != 0 || server.public_url != derived {
        return;
    }
    server.public_url = format!("http://{addr}{}", server.path);
    server.listen = addr;
    if let Some(oidc) = &mut config.identity.oidc
        && oidc.audience == derived
    {
        oidc.audience = server.public_url.clone();
    }
}

/// Binds the configured address and serves.
pub async fn start(config: Config) -> std::io::Result<Running> {
    let listener = TcpListener::bind(config.server.listen).await?;
    start_on(listener, config).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn start_on(listener: TcpListener, config: Config) -> std::io::Result<Running> {
    start_with(listener, config, None).await
}

/// Serves with `waiting` as a stage of the pipeline, where consent holds calls: tests use it to
/// hold calls in flight.
pub async fn start_with(
    listener: TcpListener,
    mut config: Config,
    waiting: Option<std::sync::Arc<dyn crate::call::RequestStage>>,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    settle_port(&mut config, addr);
    let gateway = Gateway::with_stage(config, waiting)
        .await
        .map_err(std::io::Error::other)?;
    let router = crate::transport::router(gateway.clone());
    let stop = CancellationToken::new();
    let count = gateway.config.server.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // Every thread accepts from the same socket (a copy of its descriptor in each event loop).
    let listener = listener.into_std()?;
    let (shares, inboxes) = share::Shares::new(count);
    let end = CancellationToken::new();
    let mut threads = Threads {
        served: Vec::with_capacity(count),
        stop: stop.clone(),
        end: end.clone(),
        handles: Vec::with_capacity(count),
    };
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let own = listener.try_clone()?;
        let (gw, router, stop, end) = (gateway.clone(), router.clone(), stop.clone(), end.clone());
        let shares = shares.clone();
        let (tx, rx) = oneshot::channel();
        let handle = std::thread::Builder::new()
            .name(format!("warden-serve-{i}"))
            .spawn(move || {
                let own = (own, inbox, shares);
                serve_thread(i, own, gw, router, stop, end, tx);
            })?;
        threads.served.push(rx);
        threads.handles.push(handle);
    }
    tracing::info!(%addr, workers = count, "warden listening");
    Ok(Running {
        addr,
        gateway,
        stop,
        threads,
        shares,
    })
}

/// The listening socket's copy for one thread, its inbox and the threads' shares.
type Own = (
    std::net::TcpListener,
    tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    Arc<share::Shares>,
);

/// One serving thread: its own event loop, accepting from `listener` until `stop`, then
/// running on until `end` (what was started on it may still be needed to close upstream links).
fn serve_thread(
    i: usize,
    (listener, inbox, shares): Own,
    gw: Arc<Gateway>,
    router: axum::Router,
    stop: CancellationToken,
    end: CancellationToken,
    served: oneshot::Sender<std::io::Result<()>>,
) {
    SHARD.with(|s| s.set(1 + i % (MAX_SHARDS - 1)));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = served.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        tokio::spawn(keep_a_timer());
        let serving = async {
            let listener = TcpListener::from_std(listener)?;
            let listener = share::Shared::new(i, listener, inbox, shares);
            serve(listener, &gw, &router, &stop).await;
            Ok(())
        };
        tokio::select! {
            result = serving => {
                let _ = served.send(result);
                end.cancelled().await;
            }
            // Dropped without being stopped: connections still open are dropped too.
            () = end.cancelled() => {}
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Serves each connection `listener` accepts with hyper's HTTP/1.1 (Warden's clients speak
/// HTTP/1.1; no protocol detection and no upgrades) until `stop`; then tells the connections
/// to stop, and waits until they have (see `stopping`).
async fn serve(
    mut listener: share::Shared,
    gw: &Arc<Gateway>,
    router: &axum::Router,
    stop: &CancellationToken,
) {
    loop {
        let (io, peer) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let entry = Entry::new(gw.clone(), router.clone(), peer);
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), entry);
        tokio::spawn(stopping::Watched::new(conn));
    }
    drop(listener);
    stopping::stop();
    stopping::ended().await;
}

/// How often a serving thread's own timer fires: well within a call's upstream budget (120 s
/// unless configured), so that the budget's deadline is never the thread's earliest timer.
const TICK: Duration = Duration::from_secs(1);

/// Keeps a timer pending on the serving thread, so that a call's deadline, registered while the
/// thread runs, does not wake the thread's event loop through its eventfd (a `write` and an
/// extra `epoll_wait` return): tokio does that whenever a new timer is due before the earliest
/// one the loop last went to sleep with, and with no timer pending every timer is. With this one
/// pending, a call's deadline (its upstream budget from now) is not the earliest unless the
/// budget is under [`TICK`]. The price is one wake-up a second per serving thread when idle.
async fn keep_a_timer() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}
