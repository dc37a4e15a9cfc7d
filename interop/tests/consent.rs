//! Self-healing auth, end to end with real peers: the official SDK clients call tools that
//! policy allows only with consent (`policies/consent`); Warden pauses the call and hands out
//! its consent page; a person signs in there at the real identity provider (`oidc-provider`)
//! in headless Chromium (`idp/approve.mjs`) and answers; the same call goes on and returns the
//! fixture's real result — or ends cleanly when they decline.

use std::time::Duration;

use serde_json::{Value, json};
use warden_interop::*;

/// A consent test's world: the identity provider (with Warden's consent page registered as a
/// web client), the Rust fixture over HTTP, and Warden in front of it.
struct World {
    _idp: Peer,
    _data: tempfile::TempDir,
    issuer: String,
    gateway: warden_gateway::Running,
}

const CONSENT_CLIENT: &str = "warden-consent";
const CONSENT_SECRET: &str = "warden-consent-secret";

impl World {
    async fn start(hold: &str) -> World {
        require_node_modules();
        require_chromium();
        // Warden's port first: the provider must know the consent page's redirect URI.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let idp = identity_provider(
            &format!("{origin}/mcp"),
            json!({
                "users": {
                    "alice": { "groups": ["engineering"] },
                    "bob": { "groups": ["engineering"] },
                    "carol": { "groups": ["finance-managers"] },
                },
                "webClients": [{
                    "client_id": CONSENT_CLIENT,
                    "client_secret": CONSENT_SECRET,
                    "redirect_uris": [format!("{origin}/consent/callback")],
                }],
            }),
        )
        .await
        .expect("the identity provider starts");
        let issuer = idp.url.clone().expect("issuer");
        let fixture = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let fixture_url = format!("http://{}/mcp", fixture.local_addr().expect("addr"));
        tokio::spawn(warden_fixture::serve_http_with(
            fixture,
            warden_fixture::Options::default(),
        ));
        let data = tempfile::tempdir().expect("temp dir");
        let policies = interop_dir().join("policies/consent");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n\
             [identity]\nissuer = {issuer:?}\nscopes_supported = [\"mcp:tools\"]\n\n\
             [consent]\nclient_id = {CONSENT_CLIENT:?}\nclient_secret = {CONSENT_SECRET:?}\nhold = {hold:?}\n\n\
             [storage]\npath = {:?}\n\n[policy]\ndir = {:?}\n\n\
             [upstreams.fx]\nurl = {fixture_url:?}\n",
            data.path().display().to_string(),
            policies.display().to_string(),
        );
        let gateway = warden_on(listener, &config).await.expect("warden starts");
        World {
            _idp: idp,
            _data: data,
            issuer,
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

    /// Runs `clients/consent.mjs` for `user` with the rest of the plan.
    async fn run(&self, user: &str, mut plan: Value) -> Value {
        plan["token"] = self.token(user).await.into();
        let report = run_client("consent.mjs", &self.gateway.mcp_url(), &plan)
            .await
            .expect("the consent client runs");
        assert!(report.get("fatal").is_none(), "the client failed: {report}");
        for approval in report["approvals"].as_array().into_iter().flatten() {
            assert!(
                approval.get("fatal").is_none(),
                "the browser failed: {report}"
            );
        }
        report
    }
}

fn transfer(amount: u64) -> Value {
    json!({ "name": "fx__transfer_funds", "arguments": { "to": "Bob", "amount": amount }, "progress": true })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_call_waits_for_approval_in_the_browser_and_returns_its_real_result() {
    let world = World::start("5s").await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consent-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1",
                "calls": [transfer(10), transfer(10)],
                "person": { "user": "alice", "decision": "once", "when": "asked", "screenshots": shots },
            }),
        )
        .await;
    let calls = report["calls"].as_array().expect("calls");
    // The same call came back with the fixture's real result, both times...
    for call in calls {
        assert_eq!(call["isError"], false, "{report}");
        assert_eq!(call["text"], "transferred 10 to Bob", "{report}");
    }
    // ...and the identical second call needed a second approval: a one-call grant is used up.
    let asked = report["elicitations"].as_array().expect("elicitations");
    assert_eq!(asked.len(), 2, "{report}");
    for e in asked {
        assert_eq!(e["mode"], "url");
        assert!(
            e["url"].as_str().unwrap().starts_with(&format!(
                "{}/consent/",
                world.gateway.mcp_url().trim_end_matches("/mcp")
            )),
            "{e}"
        );
    }
    assert_ne!(asked[0]["url"], asked[1]["url"], "a new request each time");
    let approvals = report["approvals"].as_array().expect("approvals");
    assert!(
        approvals.iter().all(|a| a["title"] == "Approved once"),
        "{report}"
    );
    for shot in ["consent-desktop.png", "consent-phone.png"] {
        let bytes = std::fs::read(shots.join(shot)).expect("screenshot kept");
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
    let _ = Duration::ZERO;
}
