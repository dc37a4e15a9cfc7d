//! Zero-trust identity: every request proves who the user and the agent are. An attack
//! battery where each forged, stale, misdirected or revoked credential gets 401 (403 for a
//! missing scope) and a log line that names the reason without echoing the credential.

mod common;

use aws_lc_rs::hmac;
use base64::Engine as _;
use common::logs::capture_logs;
use common::signed_in::setup;
use common::*;
use serde_json::{Value, json};
use warden_gateway::devidp::{DevAlg, claims};
use warden_gateway::store::now;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Re-signs `header.payload` with HMAC-SHA256 under `secret`.
fn hs256(header: &Value, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{payload}", b64(header.to_string().as_bytes()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_and_misdirected_tokens_are_refused_and_logged_without_the_token() {
    let logs = capture_logs();
    let s = setup().await;
    let now = warden_gateway::store::now();

    // The baseline: a good token works, with either of the provider's algorithms.
    let good = s.token("alice", json!({}));
    let (status, _, reply) = s.call(&good).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["content"][0]["text"], "in");
    let ed = s.idp.mint_with(
        DevAlg::EdDsa,
        json!({}),
        claims("alice", "agent-1", &s.url, 300, json!({})),
    );
    assert_eq!(s.call(&ed).await.0, 200);

    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, sig) = (parts[0], parts[1], parts[2]);
    let payload_of = |claims: Value| b64(claims.to_string().as_bytes());
    let mut tampered_sig = sig.to_string().into_bytes();
    tampered_sig[10] = if tampered_sig[10] == b'A' { b'B' } else { b'A' };
    let rsa_der = s.idp.rsa_public_der();
    let tampered_payload = payload_of(claims(
        "mallory",
        "agent-1",
        &s.url,
        300,
        json!({ "jti": "x" }),
    ));

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            format!("{}.{p}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
            "unsigned",
        ),
        (
            "alg none with a signature",
            format!("{}.{p}.{sig}", b64(br#"{"alg":"none"}"#)),
            "\"none\" is refused",
        ),
        (
            "alg None spelled oddly",
            format!("{}.{p}.{sig}", b64(br#"{"alg":"NoNe"}"#)),
            "\"none\" is refused",
        ),
        (
            "HS256 signed with the RSA public key",
            hs256(&json!({ "alg": "HS256", "kid": "dev-rsa-1" }), p, &rsa_der),
            "algorithm \"HS256\" is not accepted",
        ),
        (
            "HS512 signed with the RSA public key",
            hs256(&json!({ "alg": "HS512" }), p, &rsa_der),
            "algorithm \"HS512\" is not accepted",
        ),
        (
            "unknown kid",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "kid": "no-such-key" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "unknown signing key",
        ),
        (
            "kid with a path",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "kid": "../../../../etc/passwd" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "unknown signing key",
        ),
        (
            "kid with SQL",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "kid": "' OR '1'='1' --" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "unknown signing key",
        ),
        (
            "RSA key with the PS256 algorithm",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "alg": "PS256" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "unknown signing key",
        ),
        (
            "expired",
            s.token(
                "alice",
                json!({ "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200 }),
            ),
            "expired",
        ),
        (
            "not yet valid",
            s.token("alice", json!({ "nbf": now + 3600 })),
            "not yet valid",
        ),
        (
            "issued in the future",
            s.token("alice", json!({ "iat": now + 3600 })),
            "issued in the future",
        ),
        (
            "wrong issuer",
            s.token("alice", json!({ "iss": "https://evil.example" })),
            "another issuer",
        ),
        (
            "wrong audience",
            s.token("alice", json!({ "aud": "https://other.example/mcp" })),
            "another audience",
        ),
        (
            "missing audience",
            s.token("alice", json!({ "aud": null })),
            "\"aud\"",
        ),
        (
            "a token for another resource on this host",
            s.token("alice", json!({ "aud": s.url.replace("/mcp", "/other") })),
            "another audience",
        ),
        (
            "missing exp",
            s.token("alice", json!({ "exp": null })),
            "\"exp\"",
        ),
        (
            "no user",
            s.token("alice", json!({ "sub": null })),
            "\"sub\"",
        ),
        ("stripped signature", format!("{h}.{p}."), "unsigned"),
        (
            "corrupted signature",
            format!("{h}.{p}.{}", String::from_utf8(tampered_sig).unwrap()),
            "bad signature",
        ),
        (
            "payload swapped under a good signature",
            format!("{h}.{tampered_payload}.{sig}"),
            "bad signature",
        ),
        (
            "jku pointing elsewhere",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "jku": "http://127.0.0.1:9/jwks" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "\"jku\" is refused",
        ),
        (
            "x5u pointing elsewhere",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "x5u": "http://127.0.0.1:9/cert" }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "\"x5u\" is refused",
        ),
        (
            "embedded jwk",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "jwk": { "kty": "oct", "k": "c2VjcmV0" } }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "\"jwk\" is refused",
        ),
        (
            "crit header",
            s.idp.mint_with(
                DevAlg::Rs256,
                json!({ "crit": ["exp"] }),
                claims("alice", "agent-1", &s.url, 300, json!({})),
            ),
            "\"crit\" is refused",
        ),
        ("two parts", format!("{h}.{p}"), "three dot-separated parts"),
        (
            "four parts",
            format!("{good}.x"),
            "three dot-separated parts",
        ),
        ("not base64url", format!("{h}.{p}!.{sig}"), "not base64url"),
        (
            "header not JSON",
            format!("{}.{p}.{sig}", b64(b"not json")),
            "not a JSON object",
        ),
        ("oversized", "a".repeat(40_000), "longer than"),
        (
            "random opaque string",
            "opaque-token-value".to_string(),
            "three dot-separated parts",
        ),
    ];
    assert!(cases.len() >= 25);
    let mut secrets = Vec::new();
    for (name, token, reason) in &cases {
        let (status, challenge, reply) = s.call(token).await;
        assert_eq!(status, 401, "{name}: {reply}");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata="),
            "{name}: {challenge}"
        );
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason),
            "{name}: expected {reason:?} in {message:?}"
        );
        assert!(
            !message.contains(token.as_str()),
            "{name}: the answer echoes the token"
        );
        secrets.push((name, token.clone(), reason));
    }

    // Malformed requests rather than bad tokens.
    let requests: [(&str, Option<&[u8]>, &str, &str); 5] = [
        ("no credentials", None, "", "Bearer resource_metadata="),
        (
            "basic auth",
            Some(b"Basic YWxpY2U6cHc="),
            "",
            "error=\"invalid_request\"",
        ),
        (
            "empty bearer",
            Some(b"Bearer "),
            "",
            "error=\"invalid_request\"",
        ),
        (
            "token in the query string",
            None,
            "?access_token=whatever",
            "error=\"invalid_request\"",
        ),
        (
            "non-UTF-8 garbage",
            Some(b"Bearer \xff\xfe\xfd"),
            "",
            "error=\"invalid_token\"",
        ),
    ];
    for (name, header, query, expect) in requests {
        let http = reqwest::Client::new();
        let body = modern_body(1, "tools/list", json!({}));
        let mut r = modern_request(&http, &format!("{}{query}", s.url), &body);
        if let Some(h) = header {
            r = r.header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(h).unwrap(),
            );
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401, "{name}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains(expect), "{name}: {challenge}");
    }
    let twice = reqwest::Client::new()
        .post(&s.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("authorization", format!("Bearer {good}"))
        .header("authorization", format!("Bearer {ed}"))
        .body(modern_body(1, "tools/list", json!({})).to_string());
    assert_eq!(
        twice.send().await.unwrap().status(),
        401,
        "two Authorization headers"
    );

    // Every refusal is logged with its reason; no token, nor its signature, appears in the logs.
    let text = logs.text();
    let refusals = logs.lines("authentication refused");
    assert!(
        refusals.len() >= cases.len(),
        "{} refusals logged for {} attacks",
        refusals.len(),
        cases.len()
    );
    for (name, token, reason) in secrets {
        assert!(
            refusals.iter().any(|l| l["fields"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(reason)),
            "{name}: no log line says {reason:?}"
        );
        let secret_part = token.rsplit('.').next().unwrap_or(&token);
        if secret_part.len() > 8 {
            assert!(
                !text.contains(secret_part),
                "{name}: the log holds the token"
            );
        }
    }
    assert!(
        !text.contains(&good) && !text.contains(sig),
        "a good token never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_cuts_off_tokens_users_agents_and_keys_on_the_next_request() {
    let s = setup().await;
    let store = s.warden.gateway.identity.store().unwrap().clone();

    let token = s.token("alice", json!({ "jti": "tok-1" }));
    assert_eq!(s.call(&token).await.0, 200);
    store
        .revoke("token", "tok-1", "leaked", now())
        .await
        .unwrap();
    let (status, challenge, reply) = s.call(&token).await;
    assert_eq!(status, 401, "{reply}");
    assert!(challenge.contains("revoked token"), "{challenge}");
    assert_eq!(
        s.call(&s.token("alice", json!({}))).await.0,
        200,
        "alice's other tokens still work"
    );

    store
        .revoke("user", "alice", "left the company", now())
        .await
        .unwrap();
    assert_eq!(
        s.call(&s.token("alice", json!({}))).await.0,
        401,
        "a revoked user"
    );
    assert_eq!(s.call(&s.token("bob", json!({}))).await.0, 200);
    store.unrevoke("user", "alice").await.unwrap();
    assert_eq!(
        s.call(&s.token("alice", json!({}))).await.0,
        200,
        "restored"
    );

    let rogue = s
        .idp
        .mint(claims("bob", "rogue-agent", &s.url, 300, json!({})));
    assert_eq!(s.call(&rogue).await.0, 200);
    store
        .revoke("agent", "rogue-agent", "compromised", now())
        .await
        .unwrap();
    assert_eq!(
        s.call(&rogue).await.0,
        401,
        "a revoked agent, even for a good user"
    );

    // API keys: shown once, hashed at rest, one changed byte refused, revocable.
    let new = warden_gateway::identity::keys::generate("ci-bot", vec!["bots".into()], vec![], None);
    store.insert_key(&new.stored).await.unwrap();
    assert_eq!(s.call(&new.key).await.0, 200);
    let mut bytes = new.key.clone().into_bytes();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'x' { b'y' } else { b'x' };
    assert_eq!(
        s.call(&String::from_utf8(bytes).unwrap()).await.0,
        401,
        "API key with one byte changed"
    );
    store.revoke_key("ci-bot", now()).await.unwrap();
    assert_eq!(s.call(&new.key).await.0, 401, "a revoked key");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_out_keys_stop_working_at_the_next_refresh() {
    let s = setup().await;
    let old = s.token("alice", json!({}));
    assert_eq!(s.call(&old).await.0, 200);
    s.idp.rotate().unwrap();
    assert_eq!(
        s.call(&old).await.0,
        200,
        "still cached until the JWKS is refreshed"
    );
    // A token under the new key makes Warden refresh; the old key is gone from then on.
    assert_eq!(s.call(&s.token("alice", json!({}))).await.0, 200);
    let (status, _, reply) = s.call(&old).await;
    assert_eq!(status, 401, "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_principal_and_scopes_step_up() {
    let s = setup().await;
    let alice = s.token("alice", json!({}));
    let client = Legacy::connect_as(&s.url, &alice).await;
    assert_eq!(
        client
            .tool("fx__echo", json!({ "text": "mine" }))
            .await
            .text(),
        "mine"
    );

    // The same session id with another user's token (or another agent's) is unknown.
    for other in [
        s.token("bob", json!({})),
        s.idp
            .mint(claims("alice", "agent-2", &s.url, 300, json!({}))),
    ] {
        let r = client
            .http
            .post(&s.url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-session-id", &client.session)
            .bearer_auth(&other)
            .body(json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    // A tool that needs a scope: 403 with the scope to step up to, then allowed with it.
    let a = client
        .tool("fx__delete_records", json!({ "table": "t" }))
        .await;
    assert_eq!(a.status, 403);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\", resource_metadata=")
    );
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"mcp:admin\"")
    );
    let admin =
        Legacy::connect_as(&s.url, &s.token("alice", json!({ "scope": "mcp:admin" }))).await;
    assert!(
        admin
            .tool("fx__delete_records", json!({ "table": "t" }))
            .await
            .text()
            .contains("deleted")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_resource_metadata_leads_to_the_provider() {
    let s = setup().await;
    let (status, challenge, _) = s.call_with(None, "").await;
    assert_eq!(status, 401);
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(metadata_url.ends_with("/.well-known/oauth-protected-resource/mcp"));
    for url in [metadata_url.clone(), metadata_url.replace("/mcp", "")] {
        let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], s.url.as_str());
        assert_eq!(doc["authorization_servers"], json!([s.idp.issuer]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_is_for_admins_and_revokes_at_once() {
    let s = setup().await;
    let base = format!("http://{}", s.warden.addr);
    let http = reqwest::Client::new();
    let user = s.token("bob", json!({}));
    let admin = s.token("root", json!({ "groups": ["admins"] }));
    let r = http
        .post(format!("{base}/admin/revocations"))
        .bearer_auth(&user)
        .json(&json!({ "kind": "user", "value": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not an administrator");
    assert_eq!(
        http.get(format!("{base}/admin/keys"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = http
        .post(format!("{base}/admin/revocations"))
        .bearer_auth(&admin)
        .json(&json!({ "kind": "user", "value": "bob", "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.call(&user).await.0, 401);
    let r = http
        .post(format!("{base}/admin/keys"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "svc", "groups": ["bots"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    assert_eq!(s.call(key["key"].as_str().unwrap()).await.0, 200);
    let listed: Value = http
        .get(format!("{base}/admin/keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed.to_string().contains("svc")
            && !listed.to_string().contains(key["key"].as_str().unwrap()),
        "keys are listed, never shown again"
    );

    // Grants made on the consent page: listed (per user) and ended by an administrator.
    let store = s.warden.gateway.identity.store().unwrap().clone();
    let now = warden_gateway::store::now();
    for (id, user) in [("g-alice", "alice"), ("g-carol", "carol")] {
        store
            .insert_grant(&warden_gateway::store::Grant {
                id: id.into(),
                user: user.into(),
                agent: None,
                tool: "fx.transfer_funds".into(),
                kind: warden_gateway::store::GrantKind::Standing,
                created_at: now,
                expires_at: now + 600,
                consumed_at: None,
            })
            .await
            .unwrap();
    }
    let grants = |query: &'static str| {
        let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
        async move {
            http.get(format!("{base}/admin/grants{query}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(grants("").await.as_array().unwrap().len(), 2);
    let alices = grants("?user=alice").await;
    assert_eq!(alices[0]["id"], "g-alice", "{alices}");
    assert_eq!(alices[0]["kind"], "standing");
    let refused = http
        .delete(format!("{base}/admin/grants/g-alice"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "bob is revoked by now");
    let ended = http
        .delete(format!("{base}/admin/grants/g-alice"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let again = http
        .delete(format!("{base}/admin/grants/g-alice"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(grants("").await.as_array().unwrap().len(), 1);
}
