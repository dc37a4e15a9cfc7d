//! A small, fast MCP server for Warden's tests, the `warden dev` demo and load benchmarks.
//!
//! It speaks both protocol eras on one endpoint — legacy (2024-11-05 … 2025-11-25:
//! `initialize`, `Mcp-Session-Id` sessions, a GET stream, server-to-client requests) and
//! modern (2026-07-28: stateless, `_meta` on every request, `server/discover`,
//! `InputRequiredResult`, `subscriptions/listen`) — over Streamable HTTP ([`serve_http`],
//! path [`MCP_PATH`]) and over stdio ([`serve_stdio`]).
//!
//! What it offers:
//! - tools: `echo`, `add`, `transfer_funds`, `delete_records`, `lookup_customer` (fake
//!   personal data and fake secrets, for DLP), `slow` (progress, cancellation), `log`,
//!   `pid`, `ask` / `sample` / `roots` (elicitation, sampling and roots through the client),
//!   `toggle_extra` (adds or removes the tool `extra` and announces the change);
//! - resources `fixture://readme`, `fixture://data.json`, `fixture://stats` (counters a test
//!   can read, e.g. how many `slow` calls were cancelled or how many TCP connections the
//!   HTTP listener accepted) and the template
//!   `fixture://items/{id}`; the prompt `greeting`; completions for both.
//!
//! Choices where the specification leaves room:
//! - a request answers in plain JSON unless it produced a message before its response
//!   (progress, a log message, a legacy request to the client); then it answers in SSE.
//!   With [`Options::sse_always`] every legacy request answers in SSE, as the official
//!   TypeScript SDK and `rmcp` do;
//! - modern: closing a response stream (or the connection) cancels the call; legacy: a
//!   disconnect does not, only `notifications/cancelled` or DELETE of the session does;
//! - `lookup_customer.customer_id` carries `x-mcp-header: CustomerId`, so modern HTTP calls
//!   of that tool must mirror it in `Mcp-Param-CustomerId`;
//! - `requestState` is a keyed digest of the tool and its arguments (random key per
//!   process): a tampered or foreign state is -32602;
//! - GET and DELETE without a legacy session are 405; one GET stream per session (409
//!   for a second); no SSE event ids, so no resumption.
//!
//! What it must never do: write anything but protocol messages to stdout in stdio mode,
//! block a runtime thread, or do per-request work beyond parsing the message and building
//! the answer — benchmarks measure the gateway, not the fixture. It holds no real data:
//! every "secret" it returns is a documented test value.

mod catalog;
mod content;
mod conversation;
mod dispatch;
mod envelope;
mod exchange;
mod http;
mod interact;
mod listen;
mod session;
mod state;
mod stdio;
mod tools;

use std::sync::Arc;

pub use http::MCP_PATH;
pub use state::{Options, ToolEdits};

use state::{Fixture, Stats};

/// Serves Streamable HTTP on `listener` (path [`MCP_PATH`]) with default options, until
/// the listener fails.
pub async fn serve_http(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_http_with(listener, Options::default()).await
}

/// Serves Streamable HTTP on `listener` with `options`.
pub async fn serve_http_with(
    listener: tokio::net::TcpListener,
    options: Options,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let fx = Arc::new(Fixture::new(options));
    let counted = Arc::clone(&fx);
    let listener = listener.tap_io(move |tcp| {
        Stats::bump(&counted.stats.connections);
        // Small SSE events must not wait for Nagle; failing to set it only costs latency.
        let _ = tcp.set_nodelay(true);
    });
    let app = http::router(fx);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Serves newline-delimited JSON-RPC on stdin/stdout with default options, until stdin ends.
pub async fn serve_stdio() -> anyhow::Result<()> {
    serve_stdio_with(Options::default()).await
}

/// Serves stdio with `options`.
pub async fn serve_stdio_with(options: Options) -> anyhow::Result<()> {
    let fx = Arc::new(Fixture::new(options));
    stdio::serve(fx, tokio::io::stdin(), tokio::io::stdout()).await
}
