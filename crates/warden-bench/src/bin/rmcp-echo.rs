//! `rmcp-echo`: an MCP server built the way most Rust MCP servers are, with the `rmcp` crate's
//! server and its Streamable HTTP transport (default settings: legacy sessions, replies as SSE
//! streams), offering one tool, `echo`. The bench measures Warden and nginx in front of it.
//!
//! One change from a stock setup: accepted connections get `TCP_NODELAY`. `axum::serve` leaves
//! Nagle's algorithm on, and rmcp writes an SSE reply in several small writes (the head, a
//! priming event, the reply); on a kept-alive connection the later writes then wait for the
//! peer's delayed ACK, about 40 ms per call, which would hide everything the bench measures.
//!
//! `rmcp-echo [--http ADDR]` (default `127.0.0.1:0`) prints exactly one line,
//! `LISTENING http://ADDR/mcp`, once bound, like `warden-fixture`. It only listens on the
//! address it is given and writes nothing else to stdout.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use axum::serve::ListenerExt as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

/// The `echo` tool's arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

/// The server: one tool.
#[derive(Clone)]
struct Echo {
    tool_router: ToolRouter<Echo>,
}

#[tool_router]
impl Echo {
    #[tool(description = "Returns its text unchanged")]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => "127.0.0.1:0",
        [flag, addr] if flag == "--http" => addr.as_str(),
        _ => bail!("usage: rmcp-echo [--http ADDR]"),
    };
    let service = StreamableHttpService::new(
        || {
            Ok(Echo {
                tool_router: Echo::tool_router(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Failing to set it only costs latency.
        let _ = tcp.set_nodelay(true);
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING http://{bound}/mcp")?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, app).await?;
    Ok(())
}
