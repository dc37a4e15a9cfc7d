//! Upstreams read from the `mcpServers` JSON that MCP clients (Claude Desktop, Cursor, VS Code)
//! already use: `{"mcpServers": {"name": {"command", "args", "env", "cwd"} | {"url", "headers"}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::raw::{Check, RawUpstream, upstream};
use super::{ConfigError, UpstreamConfig};

#[derive(Deserialize)]
struct File {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Reads the file; an empty error list means it could not be read at all.
pub(super) fn read(path: &Path) -> Result<Vec<UpstreamConfig>, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|_| Vec::new())?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
            fix: "the file must be JSON of the form {\"mcpServers\": {\"name\": {\"command\": \"…\"}}}".into(),
        }]
    })?;
    let mut check = Check {
        file: path,
        text: &text,
        errors: Vec::new(),
    };
    let mut out = Vec::new();
    for (name, e) in file.mcp_servers {
        let at = text.find(&format!("\"{name}\"")).unwrap_or(0);
        if e.kind.as_deref() == Some("sse") {
            check.err(
                at,
                format!("server {name:?} uses the old HTTP+SSE transport"),
                "point it at the server's Streamable HTTP endpoint instead",
            );
            continue;
        }
        let raw = RawUpstream {
            command: e.command,
            args: e.args,
            env: e.env,
            cwd: e.cwd,
            url: e.url,
            headers: e.headers,
            ..RawUpstream::default()
        };
        if let Some(u) = upstream(&mut check, name, at, raw, at, path) {
            out.push(u);
        }
    }
    if check.errors.is_empty() {
        Ok(out)
    } else {
        Err(check.errors)
    }
}
