//! The credential vault as an operator and an upstream meet it: `warden vault put` reads a value
//! from standard input, seals it in the store, and the gateway injects it into an upstream's
//! header (`Bearer ${vault:NAME}`); the upstream gets that secret and never the agent's token,
//! cookies or other credential headers; no byte the client receives, no audit record and no
//! `vault list` line holds a secret; a wrong master key fails the call cleanly.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;
use warden_gateway::devidp::{DevIdp, claims};

const UPSTREAM_TOKEN: &str = "ghp_vaultSecretValue0123456789abcdefABCD";
const UPSTREAM_KEY: &str = "upstream-api-key-7f3c9d";

struct Setup {
    idp: DevIdp,
    upstream: String,
    config: PathBuf,
    data: String,
}

async fn setup() -> Setup {
    let idp = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/mcp", listener.local_addr().unwrap());
    let options = warden_fixture::Options {
        record_headers: true,
        ..Default::default()
    };
    tokio::spawn(warden_fixture::serve_http_with(listener, options));
    let data = data_dir();
    let config = Path::new(&data).join("warden.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\nissuer = {:?}\njwks_min_refresh = \"0s\"\n\
         [policy]\ndir = {:?}\n[storage]\npath = {data:?}\n[outbound]\nallow = [\"127.0.0.1\"]\n\
         [upstreams.fx]\nurl = {upstream:?}\n\
         headers = {{ Authorization = \"Bearer ${{vault:upstream_token}}\", X-Api-Key = \"${{vault:upstream_key}}\" }}\n",
        idp.issuer,
        allow_all_policies()
    );
    std::fs::write(&config, text).unwrap();
    Setup {
        idp,
        upstream,
        config,
        data,
    }
}

impl Setup {
    fn cli(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    async fn start(&self) -> warden_gateway::Running {
        let loaded = warden_gateway::Config::load(&self.config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        warden_gateway::start_on(listener, loaded).await.unwrap()
    }

    /// What the upstream saw, read from the fixture directly (not through Warden).
    async fn upstream_headers(&self) -> Vec<String> {
        let stats = fixture_stats(
            &modern(
                &self.upstream,
                "resources/read",
                json!({ "uri": "fixture://stats" }),
            )
            .await,
        );
        stats["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    }
}

/// Every byte of a directory's files, recursively. A file the running gateway removes between
/// the listing and the reading (SQLite's journal, say) held nothing more to look at.
fn bytes_under(dir: &Path) -> Vec<u8> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut all = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return all,
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.extend(bytes_under(&p));
        } else {
            match std::fs::read(&p) {
                Ok(bytes) => all.extend(bytes),
                Err(e) if gone(&e) => {}
                Err(e) => panic!("{}: {e}", p.display()),
            }
        }
    }
    all
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_gets_the_vault_secret_and_never_the_agents_credentials() {
    let s = setup().await;
    let (ok, out) = s.cli(
        &["vault", "put", "upstream_token"],
        &format!("{UPSTREAM_TOKEN}\n"),
        &[],
    );
    assert!(ok, "{out}");
    let (ok, out) = s.cli(&["vault", "put", "upstream_key"], UPSTREAM_KEY, &[]);
    assert!(ok, "{out}");
    let (ok, listed) = s.cli(&["vault", "list"], "", &[]);
    assert!(
        ok && listed.contains("upstream_token") && listed.contains("upstream_key"),
        "{listed}"
    );
    assert!(
        !listed.contains(UPSTREAM_TOKEN) && !listed.contains(UPSTREAM_KEY),
        "{listed}"
    );

    let warden = s.start().await;
    let url = warden.mcp_url();
    let token = s.idp.mint(claims("alice", "agent-1", &url, 300, json!({})));
    let http = reqwest::Client::new();
    let body = modern_body(
        1,
        "tools/call",
        json!({ "name": "fx__echo", "arguments": { "text": "hi" } }),
    );
    let bearer = format!("Bearer {token}");
    let agent_headers = [
        ("authorization", Some(bearer.as_str())),
        ("cookie", Some("session=agent-cookie-123")),
        ("x-api-key", Some("agent-api-key-456")),
        ("proxy-authorization", Some("Basic YWdlbnQ6cHJveHk=")),
        ("x-auth-token", Some("agent-x-auth-789")),
    ];
    let sent = modern_request_with(&http, &url, &body, &agent_headers)
        .send()
        .await
        .unwrap();
    let raw_headers = format!("{:?}", sent.headers());
    let answer = read_answer(sent).await;
    assert_eq!(answer.text(), "hi", "{:?}", answer.messages);
    let legacy = Legacy::connect_as(&url, &token).await;
    assert_eq!(
        legacy
            .tool("fx__echo", json!({ "text": "again" }))
            .await
            .text(),
        "again"
    );

    let seen = s.upstream_headers().await;
    assert!(
        seen.contains(&format!("authorization: Bearer {UPSTREAM_TOKEN}")),
        "{seen:#?}"
    );
    assert!(
        seen.contains(&format!("x-api-key: {UPSTREAM_KEY}")),
        "{seen:#?}"
    );
    for agent in [
        token.as_str(),
        "agent-cookie-123",
        "agent-api-key-456",
        "YWdlbnQ6cHJveHk=",
        "agent-x-auth-789",
    ] {
        assert!(
            !seen.iter().any(|h| h.contains(agent)),
            "{agent} reached the upstream: {seen:#?}"
        );
    }
    for never in ["cookie:", "proxy-authorization:", "x-auth-token:"] {
        assert!(
            !seen.iter().any(|h| h.starts_with(never)),
            "{never} forwarded: {seen:#?}"
        );
    }

    // Nothing the client got, and nothing on the record, holds a secret.
    let got = format!("{raw_headers}{:?}", answer.messages);
    for secret in [UPSTREAM_TOKEN, UPSTREAM_KEY] {
        assert!(!got.contains(secret), "{secret} reached the client");
    }
    drop(legacy);
    warden.stop().await.unwrap();
    let data = bytes_under(Path::new(&s.data));
    for secret in [UPSTREAM_TOKEN, UPSTREAM_KEY] {
        assert!(
            !holds(&data, secret),
            "{secret} is stored in clear under the data directory"
        );
    }
    assert!(holds(&data, "vault.put"), "the puts are on the record");
}

impl Setup {
    /// Starts the gateway, calls `fx__echo` once as alice, stops it; the reply.
    async fn echo_once(&self) -> Answer {
        let warden = self.start().await;
        let url = warden.mcp_url();
        let token = self
            .idp
            .mint(claims("alice", "agent-1", &url, 300, json!({})));
        let legacy = Legacy::connect_as(&url, &token).await;
        let a = legacy.tool("fx__echo", json!({ "text": "hi" })).await;
        drop(legacy);
        warden.stop().await.unwrap();
        a
    }
}

fn error_message(a: &Answer) -> String {
    a.reply()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_or_a_wrong_master_key_fails_the_call_cleanly() {
    let s = setup().await;
    // Nothing stored yet: the call fails naming the secret.
    let a = s.echo_once().await;
    let message = error_message(&a);
    assert!(
        message.contains("no secret \"upstream_token\""),
        "{:?}",
        a.messages
    );

    // Stored under one master key, read with another: refused, and the row is untouched.
    let (ok, out) = s.cli(&["vault", "put", "upstream_token"], UPSTREAM_TOKEN, &[]);
    assert!(ok, "{out}");
    let (ok, out) = s.cli(&["vault", "put", "upstream_key"], UPSTREAM_KEY, &[]);
    assert!(ok, "{out}");
    let other = "11".repeat(32);
    let (ok, out) = s.cli(
        &["vault", "put", "other"],
        "x",
        &[("WARDEN_VAULT_KEY", other.as_str())],
    );
    assert!(ok, "{out}");
    let key_file = Path::new(&s.data).join("vault.key");
    let right = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    std::fs::write(&key_file, format!("{}\n", "22".repeat(32))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let a = s.echo_once().await;
    let message = error_message(&a);
    assert!(
        message.contains("which this key ring does not hold"),
        "{:?}",
        a.messages
    );
    assert!(!message.contains(UPSTREAM_TOKEN));
    // With the right key back, the same rows serve.
    std::fs::write(&key_file, right).unwrap();
    assert_eq!(s.echo_once().await.text(), "hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_listed_without_tokens_and_revoked_by_the_operator() {
    let s = setup().await;
    // An upstream whose users connect their own accounts; the service itself is not running,
    // so revoking at the service fails and is only warned about: the tokens go regardless.
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "[upstreams.fx]",
        "[consent]\nclient_id = \"warden-consent\"\nclient_secret = \"consent-secret\"\n\n\
         [upstreams.saas]\nurl = \"http://127.0.0.1:9/mcp\"\n\
         oauth = { issuer = \"http://127.0.0.1:9\", client_id = \"warden\", client_secret = \"${vault:saas_client}\" }\n\n\
         [upstreams.fx]",
    );
    std::fs::write(&s.config, text).unwrap();
    let tokens = json!({ "access_token": "at-secret-1234", "refresh_token": "rt-secret-5678", "connected_at": 1 });
    let (ok, out) = s.cli(
        &["vault", "put", "connection.saas", "--owner", "alice"],
        &tokens.to_string(),
        &[],
    );
    assert!(ok, "{out}");
    let (ok, out) = s.cli(&["connections", "list"], "", &[]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with("alice")).expect(&out);
    assert!(line.contains("saas"), "{out}");
    assert!(!out.contains("secret-"), "no token is printed: {out}");

    let (ok, out) = s.cli(&["connections", "revoke", "alice", "saas"], "", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("disconnected alice from saas"), "{out}");
    assert!(!out.contains("secret-"), "{out}");
    let (_, out) = s.cli(&["connections", "list", "--user", "alice"], "", &[]);
    assert!(!out.lines().any(|l| l.starts_with("alice")), "{out}");
    let (ok, out) = s.cli(&["connections", "revoke", "alice", "saas"], "", &[]);
    assert!(!ok && out.contains("has no connection"), "{out}");
    let (ok, out) = s.cli(&["connections", "revoke", "alice", "fx"], "", &[]);
    assert!(
        !ok && out.contains("does not connect per-user accounts"),
        "{out}"
    );
}
