//! `warden dev`: a demo gateway on loopback with the built-in fixture as its upstream, on an
//! embedded default (a data directory of plain files under the current folder).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use warden_gateway::Config;
use warden_gateway::devidp::{DevIdp, claims};

const DEMO_USER: &str = "demo-user";
const DEMO_AGENT: &str = "demo-agent";
const TOKEN_TTL: i64 = 12 * 3600;
/// The MCP Inspector the banner's commands run, pinned: unpinned, `npx` on Node 20 picks 0.15.0,
/// the newest release without a Node 22 requirement, whose CLI cannot send an `Authorization`
/// header. 2.12.0 (the version `interop/` tests on Node 22) runs its CLI on Node 20 as well.
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

/// How the banner's commands start this program, the way the user did: `cargo run -p warden --`
/// when cargo ran it (in the source tree, as the README says), otherwise its own path, so that a
/// built or installed `warden` prints commands that work where cargo has no workspace.
fn warden_command(exe: &Path, by_cargo: bool) -> String {
    if by_cargo {
        "cargo run -p warden --".to_string()
    } else {
        shell_word(&exe.display().to_string())
    }
}

/// `text` as one word of a POSIX shell command: as it is when nothing in it is special to the
/// shell, otherwise in single quotes.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Whether `cargo run` started this process: cargo sets `CARGO` and the package's name for it.
fn started_by_cargo() -> bool {
    std::env::var_os("CARGO").is_some()
        && std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == env!("CARGO_PKG_NAME"))
}

/// The development identity provider, on a free loopback port.
async fn bind_idp() -> std::io::Result<DevIdp> {
    DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await
}
use warden_gateway::config::LogFormat;

/// The demo configuration. The fixture runs as a stdio child of this same binary; tokens come
/// from the development identity provider `warden dev` runs next to the gateway.
fn demo_config(exe: &Path, listen: SocketAddr, issuer: &str, consent: (&str, &str)) -> String {
    format!(
        r#"# Written by `warden dev`. Edit and run `warden serve --config` on it to go further
# (point issuer at your own identity provider: the development one lives only as long as
# `warden dev` runs).
[server]
listen = "{listen}"
path = "/mcp"

[identity]
issuer = "{issuer}"
api_keys = true
admin_groups = ["warden-admins"]

# The consent page signs people in at the development provider, as this client.
[consent]
client_id = "{consent_id}"
client_secret = "{consent_secret}"

[storage]
path = "."

# The development identity provider lives on loopback, over http: let Warden's metadata fetches
# reach it (they refuse private addresses and plain http otherwise).
[outbound]
allow = ["127.0.0.1"]

[policy]
dir = "policies"

[upstreams.demo]
command = {exe:?}
args = ["fixture", "--stdio"]

# Data-leak prevention: personal data and secrets in what tools return are masked (try
# demo__lookup_customer); secrets in what agents send are blocked. Choose another action per
# detector and direction — "mask", "pseudonymise", "block", "report" or "off" — for example:
#   results = {{ card = "block", email = "pseudonymise" }}
#   arguments = {{ email = "block" }}
# docs/dlp.md lists the detectors.
[dlp]
results = {{ default = "mask" }}

[logging]
format = "text"
level = "info"
"#,
        exe = exe.display().to_string(),
        consent_id = consent.0,
        consent_secret = consent.1,
    )
}

/// The demo's policies: what gives each demo tool its behaviour.
const DEMO_POLICIES: &str = r#"// Written by `warden dev`: the policies of the demo. Edit them while it runs: Warden reloads
// them within a second, and keeps the old ones if the new ones do not load.

// Tools anyone may use freely.
@id("demo-free-tools")
permit (principal, action == Action::"call_tool", resource)
when { resource in Server::"demo" && ["echo", "add", "lookup_customer", "slow", "log", "pid", "ask", "sample", "roots", "toggle_extra", "extra"].contains(resource.name) };

// Moving money needs the user's approval of this very call.
@id("demo-transfer-needs-consent")
@consent("once")
permit (principal, action == Action::"call_tool", resource == Tool::"demo.transfer_funds");

// Deleting records is not for the demo user: the tool is hidden from them.
@id("demo-no-deletes")
forbid (principal == User::"demo-user", action == Action::"call_tool", resource == Tool::"demo.delete_records");

// Everyone sees the demo server's lists (each item still needs a permit of its own).
@id("demo-lists")
permit (principal, action in [Action::"list_tools", Action::"list_prompts", Action::"list_resources"], resource == Server::"demo");

// Resources, prompts and completions of the demo server.
@id("demo-read")
permit (principal, action in [Action::"read_resource", Action::"subscribe", Action::"get_prompt", Action::"complete"], resource in Server::"demo");
"#;

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
    let idp = match bind_idp().await {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("warden dev: cannot start the development identity provider: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policies = data_dir.join("policies");
    let demo_policy = policies.join("demo.cedar");
    // Written once: a user's edits to the demo policies survive the next `warden dev`.
    let written = demo_policy.exists()
        || std::fs::create_dir_all(&policies)
            .and_then(|()| std::fs::write(&demo_policy, DEMO_POLICIES))
            .is_ok();
    if !written {
        eprintln!("warden dev: cannot write {}", demo_policy.display());
        return ExitCode::FAILURE;
    }
    let path = data_dir.join("warden-dev.toml");
    let text = demo_config(&exe, listen, &idp.issuer, idp.consent_client());
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
    let audit_dir = config.audit.dir.display().to_string();
    let vkey = config
        .audit
        .key
        .with_extension("vkey")
        .display()
        .to_string();
    let warden = warden_command(&exe, started_by_cargo());
    let (config_word, audit_word, vkey_word) = (
        shell_word(&config_path),
        shell_word(&audit_dir),
        shell_word(&vkey),
    );
    let idp = std::sync::Arc::new(idp);
    let keep_alive = idp.clone();
    let banner = Box::new(move |url: &str| {
        let issuer = idp.issuer.clone();
        let token = idp.mint(claims(
            DEMO_USER,
            DEMO_AGENT,
            url,
            TOKEN_TTL,
            json!({ "groups": ["demo"], "name": "Demo User" }),
        ));
        // A closed stdout must not stop the gateway, so write errors are ignored.
        let text = format!(
            "\nWarden is running (demo configuration: {config_path})\n\
             MCP URL: {url}\n\
             Token: {token}\n\
             (a bearer token for {DEMO_USER}, acting through {DEMO_AGENT}, valid 12 hours, signed by the development identity provider at {issuer})\n\n\
             Try it with the MCP Inspector's CLI (Node.js 20 or newer; the first run downloads it):\n\
             \x20 export WARDEN_TOKEN={token}\n\
             \x20 npx -y {INSPECTOR} --cli {url} --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/list\n\
             \x20 npx -y {INSPECTOR} --cli {url} --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/call --tool-name demo__echo --tool-arg text=hello\n\
             \x20 npx -y {INSPECTOR} --cli {url} --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/call --tool-name demo__transfer_funds --tool-arg to=Bob --tool-arg amount=10\n\
             \x20 npx -y {INSPECTOR} --cli {url} --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/call --tool-name demo__lookup_customer --tool-arg customer_id=c-42\n\
             (on Node 20 npm warns once that the Inspector wants Node 22: its CLI works all the same)\n\n\
             The transfer needs your consent: its answer is a link to Warden's consent page. Open it, sign in\n\
             as demo-user, approve, and run the same command again: the transfer goes through, once.\n\
             The customer lookup returns personal data and fake secrets: what reaches you is masked ([card ••••1111],\n\
             [email] …). To block or pseudonymise instead, edit [dlp] in {config_path} and restart.\n\n\
             Every call is on the tamper-evident audit record; read it and verify it as an auditor would:\n\
             \x20 {warden} audit tail --config {config_word}\n\
             \x20 {warden} audit verify {audit_word} --key {vkey_word}\n\n\
             Demo tools: demo__echo (free to use), demo__transfer_funds (needs consent for each call),\n\
             \x20           demo__delete_records (hidden from the demo user), demo__lookup_customer (personal data, masked by DLP).\n\
             Press Ctrl-C to stop.\n"
        );
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    });
    let code = crate::serve(config, Some(banner)).await;
    // The identity provider serves until the gateway stops.
    drop(keep_alive);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_start_warden_as_the_user_did() {
        let exe = Path::new("/opt/warden/bin/warden");
        assert_eq!(warden_command(exe, true), "cargo run -p warden --");
        assert_eq!(warden_command(exe, false), "/opt/warden/bin/warden");
        let odd = Path::new("/home/a b/it's/warden");
        assert_eq!(warden_command(odd, false), r"'/home/a b/it'\''s/warden'");
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split_or_expand() {
        assert_eq!(shell_word("warden-data/audit"), "warden-data/audit");
        assert_eq!(shell_word("a$b"), "'a$b'");
        assert_eq!(shell_word("*"), "'*'");
        assert_eq!(shell_word(""), "''");
        // What sh reads back is the text itself.
        for text in [
            "plain/path",
            "with space",
            "it's",
            "$HOME",
            "a\"b",
            "semi;colon",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_word(text))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{text:?}");
        }
    }
}
