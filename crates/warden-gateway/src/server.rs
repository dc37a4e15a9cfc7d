//! Starting and stopping the gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::IncomingStream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::transport::Entry;

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn mcp_url(&self) -> String {
        self.gateway.config.server.public_url.clone()
    }

    /// Stops accepting, lets in-flight requests finish, ends upstream links.
    pub async fn stop(self) -> std::io::Result<()> {
        self.stop.cancel();
        let result = self.task.await.unwrap_or(Ok(()));
        self.gateway.pool.shutdown().await;
        // Everything answered is on the record; a last checkpoint signs it.
        self.gateway.audit.close();
        result
    }

    /// Waits until the server ends (it ends only when stopped or on an accept error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
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
    let shutdown = stop.clone();
    let gw = gateway.clone();
    let app = tower::service_fn(move |incoming: IncomingStream<'_, _>| {
        let entry = Entry::new(gw.clone(), router.clone(), *incoming.remote_addr());
        std::future::ready(Ok::<_, std::convert::Infallible>(entry))
    });
    // Replies and SSE events are written whole, so nothing is gained by Nagle's algorithm,
    // and an event written while the previous one is unacknowledged would wait for the ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    });
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(%addr, workers, "warden listening");
    Ok(Running {
        addr,
        gateway,
        stop,
        task,
    })
}
