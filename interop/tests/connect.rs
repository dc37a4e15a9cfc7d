//! Per-user upstream accounts, end to end with real peers: a second `oidc-provider` plays the
//! SaaS's authorization server, `idp/resource-server.mjs` in front of the Rust fixture plays
//! the SaaS's MCP server (it accepts only that server's RFC 9068 tokens for its own URL, and
//! tells the test whose token came with each call). The official SDK clients call through
//! Warden; a person connects their account in headless Chromium (`idp/approve.mjs`, decision
//! `connect`: Warden's sign-in at the company's provider, then the service's own sign-in).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use warden_interop::*;

const CONSENT_CLIENT: &str = "warden-consent";
const CONSENT_SECRET: &str = "warden-consent-secret";
/// Warden's client at the service; its secret lives only in Warden's vault.
const SAAS_CLIENT: &str = "warden-at-saas";
const SAAS_SECRET: &str = "saas-client-secret-9f2c41d7e0";

/// Every log line of this test process (JSON, debug for Warden), for the secrets check.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter("warden_gateway=debug,info")
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The Rust fixture behind `idp/resource-server.mjs`, which accepts only `issuer`'s tokens for
/// its own URL: the peer and that URL.
async fn protected_fixture(issuer: &str) -> (Peer, String) {
    let fixture = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fixture_url = format!("http://{}/mcp", fixture.local_addr().expect("addr"));
    tokio::spawn(warden_fixture::serve_http_with(
        fixture,
        warden_fixture::Options::default(),
    ));
    let rs = reference_resource_server(issuer, &fixture_url)
        .await
        .expect("the upstream starts");
    let url = rs.url.clone().expect("url");
    (rs, url)
}

/// Puts the gateway-wide secret `name` into a running Warden's vault, as `warden vault put` does.
async fn put_secret(gateway: &warden_gateway::Running, name: &str, value: &str) {
    let vault = gateway.gateway.vault.clone().expect("the vault is open");
    let store = gateway.gateway.identity.store().expect("store").clone();
    let row = vault.seal(name, "", value, 1).expect("sealed");
    let mut tx = store.begin().await.expect("tx");
    tx.vault_put(&row).await.expect("put");
    tx.commit().await.expect("commit");
}

struct World {
    _idp: Peer,
    _saas: Peer,
    _rs: Peer,
    data: tempfile::TempDir,
    issuer: String,
    saas: String,
    rs: String,
    gateway: warden_gateway::Running,
}

impl World {
    async fn start() -> World {
        require_node_modules();
        require_chromium();
        logs();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let users = json!({
            "alice": { "groups": ["engineering"] },
            "bob": { "groups": ["engineering"] },
        });
        let idp = identity_provider(
            &format!("{origin}/mcp"),
            json!({
                "users": users,
                "webClients": [{
                    "client_id": CONSENT_CLIENT,
                    "client_secret": CONSENT_SECRET,
                    "redirect_uris": [format!("{origin}/consent/callback")],
                }],
            }),
        )
        .await
        .expect("the company's identity provider starts");
        // The service: its own accounts, short-lived access tokens, refresh tokens.
        let saas = identity_provider(
            "http://127.0.0.1/unused",
            json!({
                "users": users,
                "accessTokenTTL": 300,
                "clients": [],
                "webClients": [{
                    "client_id": SAAS_CLIENT,
                    "client_secret": SAAS_SECRET,
                    "redirect_uris": [format!("{origin}/consent/connected")],
                    "grant_types": ["authorization_code", "refresh_token"],
                }],
            }),
        )
        .await
        .expect("the service's authorization server starts");
        let saas_issuer = saas.url.clone().expect("issuer");
        let (rs, rs_url) = protected_fixture(&saas_issuer).await;
        let data = tempfile::tempdir().expect("temp dir");
        let issuer = idp.url.clone().expect("issuer");
        let policies = interop_dir().join("policies/consent");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n\
             [identity]\nissuer = {issuer:?}\nscopes_supported = [\"mcp:tools\"]\n\n\
             [consent]\nclient_id = {CONSENT_CLIENT:?}\nclient_secret = {CONSENT_SECRET:?}\nhold = \"50s\"\n\n\
             [storage]\npath = {:?}\n\n[policy]\ndir = {:?}\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n\
             [upstreams.fx]\nurl = {rs_url:?}\n\
             oauth = {{ issuer = {saas_issuer:?}, client_id = {SAAS_CLIENT:?}, client_secret = \"${{vault:saas_client}}\", scopes = [\"mcp:tools\"] }}\n",
            data.path().display().to_string(),
            policies.display().to_string(),
        );
        let gateway = warden_on(listener, &config).await.expect("warden starts");
        // The operator's one step: Warden's client secret at the service, into the vault.
        put_secret(&gateway, "saas_client", SAAS_SECRET).await;
        World {
            _idp: idp,
            _saas: saas,
            _rs: rs,
            data,
            issuer,
            saas: saas_issuer,
            rs: rs_url,
            gateway,
        }
    }

    async fn token(&self, user: &str) -> String {
        mint_token(
            &self.issuer,
            json!({ "sub": user, "resource": self.gateway.mcp_url(), "scope": "mcp:tools" }),
        )
        .await
        .expect("token")
    }

    /// Runs `clients/consent.mjs` as `user` (whose agent token it mints) with the rest of `plan`.
    async fn run(&self, user: &str, mut plan: Value) -> Value {
        plan["token"] = self.token(user).await.into();
        let report = run_client("consent.mjs", &self.gateway.mcp_url(), &plan)
            .await
            .expect("the client runs");
        assert!(report.get("fatal").is_none(), "the client failed: {report}");
        for approval in report["approvals"].as_array().into_iter().flatten() {
            assert!(
                approval.get("fatal").is_none(),
                "the browser failed: {report}"
            );
        }
        report
    }

    /// What the service's MCP server accepted so far: whose token came with which call.
    async fn seen(&self) -> Vec<Value> {
        let url = self.rs.replace("/mcp", "/test-admin/seen");
        let all = get_json(&url).await.expect("seen");
        all["seen"]
            .as_array()
            .expect("seen")
            .iter()
            .filter(|s| s["method"] == "tools/call")
            .cloned()
            .collect()
    }

    /// The tokens Warden holds for `user` (access and refresh), read from its vault.
    async fn stored(&self, user: &str) -> Option<(String, String)> {
        let vault = self.gateway.gateway.vault.as_ref().expect("vault");
        let secret = vault.get("connection.fx", user).await.ok()?;
        let t: Value = serde_json::from_str(secret.expose()).expect("tokens");
        Some((
            t["access_token"].as_str()?.to_string(),
            t["refresh_token"].as_str()?.to_string(),
        ))
    }

    fn clock(&self) -> &warden_gateway::consent::Clock {
        &self.gateway.gateway.connections.clock
    }
}

fn echo(text: &str) -> Value {
    json!({ "name": "fx__echo", "arguments": { "text": text }, "progress": true })
}

fn person(user: &str) -> Value {
    json!({ "user": user, "decision": "connect", "when": "asked" })
}

/// The `seen` entry of the call whose echo text was `text`.
fn call_with<'a>(seen: &'a [Value], text: &str) -> &'a Value {
    seen.iter()
        .find(|s| s["arguments"]["text"] == text)
        .unwrap_or_else(|| panic!("the service never saw {text:?}: {seen:?}"))
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            all.extend(bytes_under(&p));
        } else {
            all.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_own_account_is_connected_in_the_browser_refreshed_revoked_and_never_shared() {
    let world = World::start().await;
    let mut secrets = vec![SAAS_SECRET.to_string()];
    let mut received = String::new();

    // Alice's first call: Warden holds it and hands out the link; she connects her account;
    // the same call returns the service's answer.
    let report = world
        .run(
            "alice",
            json!({ "client": "v1", "calls": [echo("alice 1")], "person": person("alice") }),
        )
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "alice 1", "{report}");
    assert_eq!(report["calls"][0]["isError"], false, "{report}");
    let asked = report["elicitations"].as_array().expect("elicitations");
    assert_eq!(asked.len(), 1, "{report}");
    assert!(
        asked[0]["message"].as_str().unwrap().contains("account"),
        "{report}"
    );
    assert_eq!(report["approvals"][0]["title"], "Connected", "{report}");
    let first = world
        .stored("alice")
        .await
        .expect("alice's tokens are stored");
    secrets.extend([first.0.clone(), first.1.clone()]);

    // Later calls use the stored token: nobody is asked.
    let report = world
        .run(
            "alice",
            json!({ "client": "v1", "calls": [echo("alice 2")] }),
        )
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "alice 2", "{report}");
    assert!(
        report["elicitations"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let seen = world.seen().await;
    let (one, two) = (call_with(&seen, "alice 1"), call_with(&seen, "alice 2"));
    assert_eq!(one["sub"], "alice");
    assert_eq!(two["sub"], "alice");
    assert_eq!(one["jti"], two["jti"], "the same access token");

    // An hour later (on Warden's clock) the access token has expired: refreshed on the way,
    // and the user notices nothing.
    world.clock().advance(Duration::from_secs(3600));
    let report = world
        .run(
            "alice",
            json!({ "client": "v1", "calls": [echo("alice 3")] }),
        )
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "alice 3", "{report}");
    assert!(
        report["elicitations"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let seen = world.seen().await;
    let three = call_with(&seen, "alice 3");
    assert_eq!(three["sub"], "alice");
    assert_ne!(three["jti"], two["jti"], "a fresh access token");
    let refreshed = world.stored("alice").await.expect("still connected");
    assert_ne!(refreshed.0, first.0);
    secrets.extend([refreshed.0.clone(), refreshed.1.clone()]);

    // Bob is asked for his own account; his calls carry his token, never Alice's.
    let report = world
        .run("bob", json!({ "client": "v1", "calls": [echo("bob 1"), echo("bob 2")], "person": person("bob") }))
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "bob 1", "{report}");
    assert_eq!(report["calls"][1]["text"], "bob 2", "{report}");
    assert_eq!(
        report["elicitations"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let seen = world.seen().await;
    for text in ["bob 1", "bob 2"] {
        assert_eq!(call_with(&seen, text)["sub"], "bob", "{seen:?}");
    }
    for s in &seen {
        let caller = s["arguments"]["text"].as_str().unwrap_or_default();
        assert!(caller.starts_with(s["sub"].as_str().unwrap()), "{s}");
    }
    let bobs = world.stored("bob").await.expect("bob's tokens");
    secrets.extend([bobs.0.clone(), bobs.1.clone()]);

    // Revoked: Alice is asked again, and connects again.
    assert!(
        world
            .gateway
            .gateway
            .connections
            .revoke("fx", "alice")
            .await
            .expect("revoke")
    );
    assert!(world.stored("alice").await.is_none());
    let report = world
        .run(
            "alice",
            json!({ "client": "v1", "calls": [echo("alice 4")], "person": person("alice") }),
        )
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "alice 4", "{report}");
    assert_eq!(
        report["elicitations"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let again = world.stored("alice").await.expect("connected again");
    secrets.extend([again.0.clone(), again.1.clone()]);

    // The service revokes Bob's refresh token: once his access token expires, the refresh is
    // refused and he is asked to connect again.
    let discovery = oidc_discovery(&world.saas).await.expect("discovery");
    let revocation = discovery["revocation_endpoint"]
        .as_str()
        .expect("revocation endpoint");
    let answer = http_client()
        .post(revocation)
        .basic_auth(SAAS_CLIENT, Some(SAAS_SECRET))
        .form(&[
            ("token", bobs.1.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .expect("revoke at the service");
    assert!(answer.status().is_success());
    world.clock().advance(Duration::from_secs(3600));
    let report = world
        .run(
            "bob",
            json!({ "client": "v1", "calls": [echo("bob 3")], "person": person("bob") }),
        )
        .await;
    received += &report.to_string();
    assert_eq!(report["calls"][0]["text"], "bob 3", "{report}");
    assert_eq!(
        report["elicitations"].as_array().unwrap().len(),
        1,
        "asked to reconnect: {report}"
    );
    if let Some(t) = world.stored("bob").await {
        secrets.extend([t.0, t.1]);
    }
    if let Some(t) = world.stored("alice").await {
        secrets.extend([t.0, t.1]);
    }

    // No token and no client secret in anything the clients received, in any log line, or in
    // any byte Warden wrote (audit trail, store: only sealed).
    world.gateway.gateway.audit.close();
    let written = bytes_under(world.data.path());
    let logged = logs().lock().unwrap().clone();
    assert!(!logged.is_empty(), "logs were captured");
    assert!(
        holds(&logged, "connection.refreshed"),
        "the refresh was logged"
    );
    for secret in &secrets {
        assert!(
            !received.contains(secret.as_str()),
            "a client received a secret"
        );
        assert!(!holds(&logged, secret), "a log line holds a secret");
        assert!(
            !holds(&written, secret),
            "Warden wrote a secret in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_url_elicitation_and_2026_clients_get_the_link_and_go_on_once_connected() {
    let world = World::start().await;
    // No elicitation: the link comes as a tool error; the retry after connecting goes through.
    let call = json!({ "name": "fx__echo", "arguments": { "text": "alice plain" }, "retry": true });
    // Bob opens Alice's link first: it is not his to answer.
    let person = json!({
        "user": "alice", "decision": "connect", "when": "retry",
        "visitors": [{ "user": "bob", "decision": null }],
    });
    let report = world
        .run(
            "alice",
            json!({ "client": "v1-plain", "calls": [call], "person": person }),
        )
        .await;
    let call = &report["calls"][0];
    assert_eq!(call["first"]["isError"], true, "{report}");
    let first = call["first"]["text"].as_str().unwrap();
    assert!(
        first.contains("Account needed") && first.contains("/consent/"),
        "{report}"
    );
    assert_eq!(call["text"], "alice plain", "{report}");
    let bobs = &report["approvals"][0];
    assert_eq!(bobs["user"], "bob", "{report}");
    assert_eq!(bobs["status"], 403, "{report}");
    assert_eq!(bobs["title"], "Not yours to decide", "{report}");
    assert!(world.stored("bob").await.is_none(), "bob connected nothing");

    // A 2026-07-28 client: `input_required` with the link; once connected, its retry meets
    // consent (transfer_funds needs an approval): a second `input_required`, approved, and the
    // call returns — the connect state and the consent state never mixed up.
    let report = world
        .run(
            "bob",
            json!({
                "client": "v2",
                "calls": [{ "name": "fx__transfer_funds", "arguments": { "to": "Ann", "amount": 4 } }],
                "person": { "user": "bob", "decision": ["connect", "once"], "when": "asked" },
            }),
        )
        .await;
    assert_eq!(report["era"], "modern", "{report}");
    assert_eq!(
        report["calls"][0]["text"], "transferred 4 to Ann",
        "{report}"
    );
    let asked = report["elicitations"].as_array().unwrap();
    let links: std::collections::BTreeSet<&str> =
        asked.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(
        links.len(),
        2,
        "one link to connect, one to approve: {report}"
    );
    assert!(
        asked[0]["message"].as_str().unwrap().contains("account"),
        "{report}"
    );
    assert!(
        asked.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("approval"),
        "{report}"
    );
    let titles: Vec<&str> = report["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Connected", "Approved once"], "{report}");
    let seen = world.seen().await;
    let transfer = seen
        .iter()
        .find(|s| s["name"] == "transfer_funds")
        .expect("the transfer ran");
    assert_eq!(transfer["sub"], "bob");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_exchange_gives_each_caller_a_token_of_their_own_and_never_forwards_theirs() {
    require_node_modules();
    logs();
    const EXCHANGE_CLIENT: &str = "warden-exchange";
    const EXCHANGE_SECRET: &str = "exchange-secret-41c0";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    // One authorization server for both: it issued the agents' tokens for Warden, and it
    // exchanges them for tokens for the upstream (RFC 8693).
    let idp = identity_provider(
        &format!("{origin}/mcp"),
        json!({ "exchangeClients": [{ "client_id": EXCHANGE_CLIENT, "client_secret": EXCHANGE_SECRET }] }),
    )
    .await
    .expect("the identity provider starts");
    let issuer = idp.url.clone().expect("issuer");
    let (_rs, rs_url) = protected_fixture(&issuer).await;
    let data = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [identity]\nissuer = {issuer:?}\nscopes_supported = [\"mcp:tools\"]\n\n\
         [storage]\npath = {:?}\n\n[policy]\ndir = {:?}\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n\
         [upstreams.fx]\nurl = {rs_url:?}\n\
         oauth = {{ issuer = {issuer:?}, client_id = {EXCHANGE_CLIENT:?}, client_secret = \"${{vault:exchange}}\", grant = \"token_exchange\", scopes = [\"mcp:tools\"] }}\n",
        data.path().display().to_string(),
        interop_dir()
            .join("policies/allow-all")
            .display()
            .to_string(),
    );
    let gateway = warden_on(listener, &config).await.expect("warden starts");
    put_secret(&gateway, "exchange", EXCHANGE_SECRET).await;

    let mut agent_tokens = Vec::new();
    for user in ["alice", "bob", "alice"] {
        let token = mint_token(
            &issuer,
            json!({ "sub": user, "resource": gateway.mcp_url(), "scope": "mcp:tools" }),
        )
        .await
        .expect("token");
        let plan = json!({ "client": "v1", "token": token, "calls": [echo(&format!("{user} via exchange"))] });
        let report = run_client("consent.mjs", &gateway.mcp_url(), &plan)
            .await
            .expect("the client runs");
        assert_eq!(
            report["calls"][0]["text"],
            format!("{user} via exchange"),
            "{report}"
        );
        assert!(
            report["elicitations"].as_array().unwrap().is_empty(),
            "nobody is asked: {report}"
        );
        agent_tokens.push(token);
    }
    let all = get_json(&rs_url.replace("/mcp", "/test-admin/seen"))
        .await
        .expect("seen");
    assert_eq!(
        all["refused"], 0,
        "every request carried a token for the upstream: {all}"
    );
    let seen: Vec<&Value> = all["seen"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["method"] == "tools/call")
        .collect();
    assert_eq!(seen.len(), 3, "{all}");
    let agent_jtis: Vec<Value> = agent_tokens
        .iter()
        .map(|t| decode_jwt(t).expect("jwt").1["jti"].clone())
        .collect();
    for s in &seen {
        let text = s["arguments"]["text"].as_str().unwrap();
        assert!(
            text.starts_with(s["sub"].as_str().unwrap()),
            "each caller's own: {s}"
        );
        assert!(
            !agent_jtis.contains(&s["jti"]),
            "an exchanged token, not the agent's: {s}"
        );
    }
    // A caller Warden accepts but the service does not know: refused with a clear error, and
    // nothing reaches the upstream.
    let carol = mint_token(
        &issuer,
        json!({ "sub": "carol", "resource": gateway.mcp_url(), "scope": "mcp:tools" }),
    )
    .await
    .expect("token");
    let plan = json!({ "client": "v1", "token": carol, "calls": [echo("carol via exchange")] });
    let report = run_client("consent.mjs", &gateway.mcp_url(), &plan)
        .await
        .expect("the client runs");
    let error = report["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("in exchange (RFC 8693)") && error.contains("carol"),
        "{report}"
    );
    let after = get_json(&rs_url.replace("/mcp", "/test-admin/seen"))
        .await
        .expect("seen");
    assert_eq!(
        after["seen"].as_array().unwrap().len(),
        all["seen"].as_array().unwrap().len()
    );
    let logged = logs().lock().unwrap().clone();
    assert!(
        holds(&logged, "connection.exchanged"),
        "the exchange was logged"
    );
    agent_tokens.push(carol);
    for t in &agent_tokens {
        assert!(!holds(&logged, t), "no agent token is logged");
    }
}
