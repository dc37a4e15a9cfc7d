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
    config: String,
    gateway: Option<warden_gateway::Running>,
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
             [storage]\npath = {:?}\n\n[policy]\ndir = {:?}\n\n[outbound]\nallow = [\"127.0.0.1\"]\n\n\
             [upstreams.fx]\nurl = {fixture_url:?}\n",
            data.path().display().to_string(),
            policies.display().to_string(),
        );
        let gateway = warden_on(listener, &config).await.expect("warden starts");
        World {
            _idp: idp,
            _data: data,
            issuer,
            config,
            gateway: Some(gateway),
        }
    }

    fn gw(&self) -> &warden_gateway::Running {
        self.gateway.as_ref().expect("warden runs")
    }

    /// Stops Warden and starts it again on the same data directory, on a new port.
    async fn restart(&mut self) {
        if let Some(old) = self.gateway.take() {
            old.stop().await.expect("warden stops");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.gateway = Some(
            warden_on(listener, &self.config)
                .await
                .expect("warden starts again"),
        );
    }

    async fn token(&self, user: &str) -> String {
        mint_token(
            &self.issuer,
            json!({ "sub": user, "resource": self.gw().mcp_url(), "scope": "mcp:tools" }),
        )
        .await
        .expect("token")
    }

    /// Runs `clients/consent.mjs` for `user` with the rest of the plan.
    async fn run(&self, user: &str, mut plan: Value) -> Value {
        plan["token"] = self.token(user).await.into();
        let report = run_client("consent.mjs", &self.gw().mcp_url(), &plan)
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
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1",
                "calls": [transfer(10), transfer(10)],
                "person": { "user": "alice", "decision": "once", "when": "asked" },
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
                world.gw().mcp_url().trim_end_matches("/mcp")
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_for_a_while_lets_calls_through_until_it_expires_for_a_client_without_elicitation()
{
    let world = World::start("50s").await;
    // The page of this test (both choices offered) is the one docs/consent.md shows.
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consent-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let add = json!({ "name": "fx__add", "arguments": { "a": 2, "b": 3 }, "retry": true });
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1-plain",
                "calls": [add],
                "person": { "user": "alice", "decision": "for", "minutes": 15, "when": "retry", "screenshots": shots },
            }),
        )
        .await;
    let call = &report["calls"][0];
    // Without elicitation the first answer is a tool error whose text holds the link...
    assert_eq!(call["first"]["isError"], true, "{report}");
    assert!(
        call["first"]["text"]
            .as_str()
            .unwrap()
            .contains("/consent/"),
        "{report}"
    );
    // ...and the retry after approval returns the real result.
    assert_eq!(call["isError"], false, "{report}");
    assert_eq!(call["text"], "5", "{report}");
    assert_eq!(report["approvals"][0]["title"], "Approved", "{report}");
    for shot in ["consent-desktop.png", "consent-phone.png"] {
        let bytes = std::fs::read(shots.join(shot)).expect("screenshot kept");
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }

    // Other arguments, other calls: the tool is approved for a while, no one is asked.
    let more: Vec<Value> = (0..3)
        .map(|i| json!({ "name": "fx__add", "arguments": { "a": i, "b": 1 } }))
        .collect();
    let report = world
        .run("alice", json!({ "client": "v1-plain", "calls": more }))
        .await;
    for (i, call) in report["calls"].as_array().unwrap().iter().enumerate() {
        assert_eq!(call["text"], (i + 1).to_string(), "{report}");
    }
    // Not for another user.
    let report = world
        .run("bob", json!({ "client": "v1-plain", "calls": [{ "name": "fx__add", "arguments": { "a": 1, "b": 1 } }] }))
        .await;
    assert_eq!(report["calls"][0]["isError"], true, "{report}");

    // Fifteen minutes later (on Warden's clock) the grant has expired: asked again.
    world
        .gw()
        .gateway
        .consents
        .clock
        .advance(Duration::from_secs(15 * 60 + 1));
    let report = world
        .run("alice", json!({ "client": "v1-plain", "calls": [{ "name": "fx__add", "arguments": { "a": 1, "b": 1 } }] }))
        .await;
    assert_eq!(report["calls"][0]["isError"], true, "{report}");
    assert!(
        report["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("/consent/"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_hold_a_legacy_call_gets_32042_and_its_retry_after_approval_succeeds() {
    let world = World::start("2s").await;
    // Default request options: no progress, the client's own 60 s timer.
    let call = json!({ "name": "fx__transfer_funds", "arguments": { "to": "Ann", "amount": 7 }, "retry": true });
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1",
                "calls": [call],
                "person": { "user": "alice", "decision": "once", "when": "retry" },
            }),
        )
        .await;
    let call = &report["calls"][0];
    let first = &call["first"];
    assert_eq!(first["code"], -32042, "{report}");
    let link = first["data"]["elicitations"][0]["url"].as_str().unwrap();
    assert_eq!(link, report["elicitations"][0]["url"], "the same link");
    assert_eq!(call["isError"], false, "{report}");
    assert_eq!(call["text"], "transferred 7 to Ann", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_client_waits_through_input_required_rounds_and_gets_its_result() {
    let world = World::start("2s").await;
    let report = world
        .run(
            "alice",
            json!({
                "client": "v2",
                "calls": [{ "name": "fx__transfer_funds", "arguments": { "to": "Cy", "amount": 3 } }],
                // Approved after more than one hold period: the client is asked again meanwhile.
                "person": { "user": "alice", "decision": "once", "when": { "afterMs": 3500 } },
            }),
        )
        .await;
    assert_eq!(report["era"], "modern", "{report}");
    let call = &report["calls"][0];
    assert_eq!(call["isError"], false, "{report}");
    assert_eq!(call["text"], "transferred 3 to Cy", "{report}");
    let asked = report["elicitations"].as_array().unwrap();
    assert!(asked.len() >= 2, "asked again after a hold: {report}");
    assert!(
        asked.iter().all(|e| e["url"] == asked[0]["url"]),
        "one link: {report}"
    );
    assert!(asked[0].get("elicitationId").is_none(), "{report}");
    assert!(call["ms"].as_u64().unwrap() >= 3500, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_ends_the_held_call_with_a_clear_message() {
    let world = World::start("50s").await;
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1",
                "calls": [transfer(99)],
                "person": { "user": "alice", "decision": "deny", "when": "asked" },
            }),
        )
        .await;
    let call = &report["calls"][0];
    assert_eq!(call["code"], -32054, "{report}");
    assert!(
        call["error"]
            .as_str()
            .unwrap()
            .contains("alice declined it on the consent page"),
        "{report}"
    );
    assert_eq!(report["approvals"][0]["title"], "Declined", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn four_eyes_the_caller_cannot_approve_a_member_of_the_approver_group_can() {
    let world = World::start("50s").await;
    let report = world
        .run(
            "alice",
            json!({
                "client": "v1",
                "calls": [{ "name": "fx__delete_records", "arguments": { "table": "invoices" }, "progress": true }],
                "person": {
                    "user": "carol", "decision": "once", "when": "asked",
                    "visitors": [{ "user": "alice", "decision": null }, { "user": "bob", "decision": null }],
                },
            }),
        )
        .await;
    let visits = report["approvals"].as_array().unwrap();
    assert_eq!(visits.len(), 3, "{report}");
    for refused in &visits[..2] {
        assert_eq!(refused["status"], 403, "{report}");
        assert_eq!(refused["title"], "Not yours to decide", "{report}");
        assert!(
            !refused["text"].as_str().unwrap().contains("invoices"),
            "no details shown: {report}"
        );
    }
    assert_eq!(visits[2]["user"], "carol");
    assert_eq!(visits[2]["title"], "Approved once", "{report}");
    let call = &report["calls"][0];
    assert_eq!(call["isError"], false, "{report}");
    assert!(
        call["text"].as_str().unwrap().contains("invoices"),
        "{report}"
    );
}

impl World {
    /// A person at the consent page (`idp/approve.mjs`), outside any client.
    async fn visit(&self, link: &str, options: Value) -> Value {
        let options = options.to_string();
        let out = run_node(
            &["idp/approve.mjs", link, &options],
            &[],
            Duration::from_secs(60),
        )
        .await
        .expect("the browser runs");
        let line = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .expect("a line");
        serde_json::from_str(line).expect("JSON")
    }

    /// One 2026-07-28 `tools/call` of `fx__transfer_funds` by `token`, with URL elicitation
    /// declared and `extra` merged into its params; the answer's last JSON-RPC message.
    async fn modern_call(&self, token: &str, id: u64, arguments: Value, extra: Value) -> Value {
        let mut params = json!({ "name": "fx__transfer_funds", "arguments": arguments });
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.modern(token, id, "tools/call", params).await
    }

    /// One 2026-07-28 request of `method` by `token` with URL elicitation declared; the answer's
    /// last JSON-RPC message (a held call answers as SSE).
    async fn modern(&self, token: &str, id: u64, method: &str, mut params: Value) -> Value {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": { "elicitation": { "url": {} } },
        });
        let name = params["name"]
            .as_str()
            .or(params["uri"].as_str())
            .unwrap_or_default()
            .to_string();
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let response = http_client()
            .post(self.gw().mcp_url())
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("mcp-name", name)
            .json(&body)
            .send()
            .await
            .expect("Warden answers");
        let text = response.text().await.expect("body");
        let last = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .unwrap_or(text.as_str());
        serde_json::from_str(last).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }
}

/// The consent link of an `input_required` answer.
fn link_of(answer: &Value) -> String {
    answer["result"]["inputRequests"]["warden-consent"]["params"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no consent link in {answer}"))
        .to_string()
}

fn error_text(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_states_that_are_tampered_moved_foreign_replayed_or_expired_are_refused() {
    let world = World::start("5s").await;
    let (alice, bob) = (world.token("alice").await, world.token("bob").await);
    let args = json!({ "to": "Dee", "amount": 1 });
    let first = world.modern_call(&alice, 1, args.clone(), json!({})).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let link = link_of(&first);
    let with = |s: &str| json!({ "requestState": s, "inputResponses": { "warden-consent": { "action": "accept" } } });

    // Changed by one character.
    let mut tampered = state.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let answer = world
        .modern_call(&alice, 2, args.clone(), with(&tampered))
        .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(error_text(&answer).contains("changed"), "{answer}");
    // Moved to a call with other arguments.
    let other = json!({ "to": "Dee", "amount": 1000 });
    let answer = world
        .modern_call(&alice, 3, other.clone(), with(&state))
        .await;
    assert!(error_text(&answer).contains("another call"), "{answer}");
    // Used by another user.
    let answer = world.modern_call(&bob, 4, args.clone(), with(&state)).await;
    assert!(error_text(&answer).contains("another caller"), "{answer}");
    // Bob cannot open Alice's link either.
    let seen = world
        .visit(&link, json!({ "user": "bob", "decision": null }))
        .await;
    assert_eq!(seen["status"], 403, "{seen}");

    // Approved once: of two concurrent retries with the state, exactly one runs.
    let approved = world
        .visit(&link, json!({ "user": "alice", "decision": "once" }))
        .await;
    assert_eq!(approved["title"], "Approved once", "{approved}");
    let (a, b) = tokio::join!(
        world.modern_call(&alice, 5, args.clone(), with(&state)),
        world.modern_call(&alice, 6, args.clone(), with(&state)),
    );
    let ran: Vec<&Value> = [&a, &b]
        .into_iter()
        .filter(|r| r["result"]["content"][0]["text"] == "transferred 1 to Dee")
        .collect();
    assert_eq!(ran.len(), 1, "{a}\n{b}");
    let refused = if ran[0] == &a { &b } else { &a };
    assert!(error_text(refused).contains("already used"), "{refused}");
    // Replayed after use.
    let answer = world
        .modern_call(&alice, 7, args.clone(), with(&state))
        .await;
    assert!(error_text(&answer).contains("already used"), "{answer}");
    // The approval was for those arguments only.
    let answer = world.modern_call(&alice, 8, other, json!({})).await;
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");

    // A state whose request expired undecided.
    let fresh = world
        .modern_call(&alice, 9, json!({ "to": "Eve", "amount": 2 }), json!({}))
        .await;
    let expired = fresh["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    world
        .gw()
        .gateway
        .consents
        .clock
        .advance(Duration::from_secs(11 * 60));
    let answer = world
        .modern_call(
            &alice,
            10,
            json!({ "to": "Eve", "amount": 2 }),
            with(&expired),
        )
        .await;
    assert!(error_text(&answer).contains("expired"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consent_page_refuses_forged_forms_frames_redirects_and_expired_requests() {
    let world = World::start("5s").await;
    let alice = world.token("alice").await;
    let first = world
        .modern_call(&alice, 1, json!({ "to": "Fay", "amount": 5 }), json!({}))
        .await;
    let link = link_of(&first);
    let origin = link.split("/consent/").next().unwrap().to_string();

    // Forms posted without, or with a wrong, CSRF token decide nothing.
    for tamper in ["no-csrf", "bad-csrf"] {
        let seen = world
            .visit(
                &link,
                json!({ "user": "alice", "decision": "once", "tamper": tamper }),
            )
            .await;
        assert_eq!(seen["status"], 403, "{tamper}: {seen}");
        assert!(
            seen["text"]
                .as_str()
                .unwrap()
                .contains("Nothing was decided"),
            "{seen}"
        );
    }
    let id = link.rsplit('/').next().unwrap();
    let request = world
        .gw()
        .gateway
        .consents
        .request(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, warden_gateway::store::ConsentState::Pending);

    // Not in a frame, no referrer to other sites; a signed-out visit goes to the provider only.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    for url in [
        link.clone(),
        format!("{link}?next=javascript:alert(1)"),
        format!("{link}?redirect_uri=https://evil.example/"),
    ] {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 303, "{url}");
        let h = r.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-frame-options"], "DENY");
        let to = h["location"].to_str().unwrap();
        assert!(to.starts_with(&format!("{}/auth?", world.issuer)), "{to}");
        assert!(!to.contains("evil") && !to.contains("javascript"), "{to}");
        assert!(
            h["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("__Host-warden-signin=")
        );
    }
    for (path, status) in [
        ("/consent/javascript:alert(1)", 404),
        ("/consent/callback?code=x&state=y", 400),
        (
            "/consent/callback?code=x&state=y&redirect_uri=https://evil.example/",
            400,
        ),
    ] {
        let r = http.get(format!("{origin}{path}")).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(r.headers().get("location").is_none(), "{path}");
    }
    // A form from another site (its own Origin) is refused at the edge.
    let forged = http
        .post(&link)
        .header("origin", "https://evil.example")
        .form(&[("decision", "once")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Expired: the page says so and cannot be used.
    world
        .gw()
        .gateway
        .consents
        .clock
        .advance(Duration::from_secs(11 * 60));
    let seen = world
        .visit(&link, json!({ "user": "alice", "decision": "once" }))
        .await;
    assert_eq!(seen["status"], 410, "{seen}");
    assert_eq!(seen["title"], "This request has expired", "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_and_resources_ask_too_and_return_their_real_content_once_approved() {
    let world = World::start("5s").await;
    let alice = world.token("alice").await;
    let asks = [
        (
            "prompts/get",
            json!({ "name": "fx__greeting", "arguments": { "name": "Ada" } }),
        ),
        ("resources/read", json!({ "uri": "fixture://data.json" })),
    ];
    for (i, (method, params)) in asks.into_iter().enumerate() {
        let id = 10 * i as u64;
        let first = world.modern(&alice, id + 1, method, params.clone()).await;
        assert_eq!(
            first["result"]["resultType"], "input_required",
            "{method}: {first}"
        );
        let link = link_of(&first);
        let seen = world
            .visit(&link, json!({ "user": "alice", "decision": "once" }))
            .await;
        assert_eq!(seen["title"], "Approved once", "{seen}");
        let mut retry = params.clone();
        retry["requestState"] = first["result"]["requestState"].clone();
        retry["inputResponses"] = json!({ "warden-consent": { "action": "accept" } });
        let answer = world.modern(&alice, id + 2, method, retry).await;
        let result = &answer["result"];
        assert_eq!(result["resultType"], "complete", "{method}: {answer}");
        match method {
            "prompts/get" => assert!(
                result["messages"][0]["content"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("Ada"),
                "{answer}"
            ),
            _ => assert_eq!(
                result["contents"][0]["uri"], "fixture://data.json",
                "{answer}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_requests_per_user_are_bounded_and_identical_calls_share_one() {
    let world = World::start("5s").await;
    let alice = world.token("alice").await;
    let mut links = Vec::new();
    for amount in 1..=20 {
        let a = world
            .modern_call(
                &alice,
                amount,
                json!({ "to": "G", "amount": amount }),
                json!({}),
            )
            .await;
        assert_eq!(a["result"]["resultType"], "input_required", "{a}");
        links.push(link_of(&a));
    }
    // The same call again shares its request...
    let again = world
        .modern_call(&alice, 99, json!({ "to": "G", "amount": 1 }), json!({}))
        .await;
    assert_eq!(link_of(&again), links[0]);
    // ...a 21st different one is refused clearly, for this user only.
    let over = world
        .modern_call(&alice, 100, json!({ "to": "G", "amount": 21 }), json!({}))
        .await;
    assert_eq!(over["error"]["code"], -32052, "{over}");
    assert!(
        error_text(&over).contains("20 requests for consent are already waiting for alice"),
        "{over}"
    );
    let bob = world.token("bob").await;
    let other = world
        .modern_call(&bob, 101, json!({ "to": "G", "amount": 21 }), json!({}))
        .await;
    assert_eq!(other["result"]["resultType"], "input_required", "{other}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_survives_a_restart_of_the_gateway() {
    let mut world = World::start("5s").await;
    let alice = world.token("alice").await;
    let args = json!({ "to": "Hal", "amount": 4 });
    let first = world.modern_call(&alice, 1, args.clone(), json!({})).await;
    let state = first["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let link = link_of(&first);
    let seen = world
        .visit(&link, json!({ "user": "alice", "decision": "once" }))
        .await;
    assert_eq!(seen["title"], "Approved once", "{seen}");
    // Warden stops and starts again on the same data directory (on a new port).
    world.restart().await;
    let alice = world.token("alice").await;
    let retry = json!({ "requestState": state, "inputResponses": { "warden-consent": { "action": "accept" } } });
    let answer = world.modern_call(&alice, 2, args, retry).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "transferred 4 to Hal",
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn declining_the_link_in_the_client_ends_the_call_in_both_eras() {
    let world = World::start("50s").await;
    for client in ["v1", "v2"] {
        let report = world
            .run(
                "alice",
                json!({
                    "client": client,
                    "answer": "decline",
                    "calls": [{ "name": "fx__transfer_funds", "arguments": { "to": "Ivy", "amount": 8 } }],
                }),
            )
            .await;
        let call = &report["calls"][0];
        assert_eq!(call["code"], -32054, "{client}: {report}");
        assert!(
            call["error"]
                .as_str()
                .unwrap()
                .contains("declined in the client"),
            "{client}: {report}"
        );
        assert!(
            call["ms"].as_u64().unwrap() < 20_000,
            "ended at once, not after the hold: {report}"
        );
    }
}
