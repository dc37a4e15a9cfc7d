//! `warden-relay`: the least an HTTP/1.1 proxy on Warden's own stack (tokio and hyper) can do,
//! for calibrating the bench. It takes Warden's command line (`serve --config FILE`), reads the
//! listen address, the one upstream URL and `workers` (when given) from that file, and relays
//! each request's bytes unchanged over an upstream connection of its own per client
//! connection, in the client connection's task. No parsing of the body, no checks, no policy:
//! what it adds to a call is the floor for any proxy on this machine.
//!
//! `target/release/warden-bench --only http --warden target/release/warden-relay --through-tool echo`

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some("serve"), Some("--config"), Some(file)) = (
        args.get(1).map(String::as_str),
        args.get(2).map(String::as_str),
        args.get(3),
    ) else {
        bail!("usage: warden-relay serve --config FILE");
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|rest| rest.strip_suffix('"'))
            .map(str::to_string)
            .with_context(|| format!("{file} has no {key}"))
    };
    let listen = value("listen")?;
    let upstream = value("url")?;
    let upstream = upstream
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .context("the upstream url must be http://HOST:PORT/...")?
        .to_string();
    // `workers = N` as Warden reads it, so that both run on as many threads.
    let workers = text
        .lines()
        .find_map(|l| l.strip_prefix("workers = "))
        .map(str::parse::<usize>)
        .transpose()
        .with_context(|| format!("{file}: workers is not a number"))?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: String, upstream: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        client.set_nodelay(true)?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(tcp) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let Ok((send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
            else {
                return;
            };
            // The upstream connection is driven by a task of its own, as hyper's pooled
            // clients do; the relay's answer waits on it.
            tokio::spawn(conn);
            let send = Arc::new(Mutex::new(send));
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let send = send.clone();
                async move { relay(&send, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(client), service)
                .await;
        });
    }
}

async fn relay(
    send: &Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let forwarded = Request::from_parts(parts, whole(body).await);
    let answer = send.lock().await.send_request(forwarded).await;
    Ok(match answer {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, whole(body).await)
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(e.to_string())))
            .unwrap_or_default(),
    })
}

/// A body read to the end (empty if it broke off).
async fn whole(body: Incoming) -> Full<Bytes> {
    Full::new(
        body.collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default(),
    )
}
