//! `warden-fixture`: the fixture server as a program.
//!
//! `--stdio` serves stdin/stdout; otherwise it serves HTTP on `--http ADDR` (default
//! `127.0.0.1:0`) and prints exactly one line, `LISTENING http://ADDR/mcp`, once bound.
//! `--page-size N` pages `tools/list`; `--sse-always` answers every legacy HTTP request as a
//! chunked SSE stream of one event, like the official TypeScript SDK and `rmcp`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::num::NonZeroUsize;

use anyhow::Context as _;
use clap::Parser;
use warden_fixture::{MCP_PATH, Options};

#[derive(Parser)]
#[command(
    version,
    about = "A small, fast MCP server for tests, demos and benchmarks"
)]
struct Args {
    /// Serve newline-delimited JSON-RPC on stdin/stdout.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve Streamable HTTP on this address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// Tools per `tools/list` page (default: all on one page).
    #[arg(long, value_name = "N")]
    page_size: Option<NonZeroUsize>,
    /// Answer every legacy request (not notifications, which get 202) as a chunked
    /// `text/event-stream` with the reply as its one event, as the official TypeScript SDK
    /// and `rmcp` do; without it a request answers in JSON unless it sends interim messages.
    #[arg(long)]
    sse_always: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = Options {
        page_size: args.page_size,
        sse_always: args.sse_always,
        ..Options::default()
    };
    if args.stdio {
        return warden_fixture::serve_stdio_with(options).await;
    }
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING http://{addr}{MCP_PATH}")?;
    stdout.flush()?;
    drop(stdout);
    warden_fixture::serve_http_with(listener, options).await
}
