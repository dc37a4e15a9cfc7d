//! `warden dev`: a demo gateway on loopback with the built-in fixture as its upstream, on an
//! embedded default (a data directory of plain files under the current folder).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use warden_gateway::Config;
use warden_gateway::config::LogFormat;

/// The demo configuration. The fixture runs as a stdio child of this same binary.
fn demo_config(exe: &Path, listen: SocketAddr) -> String {
    format!(
        r#"# Written by `warden dev`. Edit and run `warden serve --config` on it to go further.
[server]
listen = "{listen}"
path = "/mcp"

[identity]
# Loopback-only test profile: every request acts as this user. The identity issue replaces
# this with tokens from your identity provider.
test_user = "demo-user"

[upstreams.demo]
command = {exe:?}
args = ["fixture", "--stdio"]

[logging]
format = "text"
level = "info"
"#,
        exe = exe.display().to_string(),
    )
}

pub async fn run(data_dir: PathBuf, listen: SocketAddr) -> ExitCode {
    if !listen.ip().is_loopback() {
        eprintln!("warden dev: the demo only runs on a loopback address, not {listen}");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warden dev: cannot find this program's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        eprintln!("warden dev: cannot create {}: {e}", data_dir.display());
        return ExitCode::FAILURE;
    }
    let path = data_dir.join("warden-dev.toml");
    let text = demo_config(&exe, listen);
    if let Err(e) = std::fs::write(&path, &text) {
        eprintln!("warden dev: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let config = match Config::from_toml(&path, &text) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    crate::init_logging(LogFormat::Text, "info");
    let config_path = path.display().to_string();
    let banner = Box::new(move |url: &str| {
        // A closed stdout must not stop the gateway, so write errors are ignored.
        let text = format!(
            "\nWarden is running (demo configuration: {config_path})\n\
             MCP URL: {url}\n\n\
             Connect the MCP Inspector:\n\
             \x20 npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list\n\
             \x20 npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/call --tool-name demo__echo --tool-arg text=hello\n\
             or open the Inspector UI (npx @modelcontextprotocol/inspector), choose Streamable HTTP and paste the URL.\n\n\
             Demo tools: demo__echo (free to use), demo__transfer_funds (will need consent),\n\
             \x20           demo__delete_records (hidden from the demo user), demo__lookup_customer (returns personal data and a fake secret).\n\
             Press Ctrl-C to stop.\n"
        );
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    });
    crate::serve(config, Some(banner)).await
}
