//! The identity provider Warden's identity stage is tested with (`idp/provider.mjs`,
//! oidc-provider 9.x on loopback) and its real clients: an agent's client-credentials request,
//! a user's sign-in in Chromium (`idp/login.mjs`), and the official client SDK's whole MCP
//! authorization dance (`clients/oauth-client.mjs`), here against the reference protected
//! endpoint `idp/resource-server.mjs` in front of the conformance fixture.

use serde_json::{Value, json};
use warden_interop::*;

const RESOURCE: &str = "http://127.0.0.1:8080/mcp";

async fn provider(extra: Value) -> (Peer, String) {
    require_node_modules();
    let idp = identity_provider(RESOURCE, extra)
        .await
        .expect("the identity provider starts");
    let issuer = idp.url.clone().expect("issuer");
    (idp, issuer)
}

async fn jwks_kids(issuer: &str) -> Vec<(String, String, String)> {
    let discovery = oidc_discovery(issuer).await.expect("discovery");
    let jwks = get_json(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .await
        .expect("jwks");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            assert!(k.get("d").is_none(), "a private key is published: {k}");
            let s = |name: &str| k[name].as_str().unwrap_or_default().to_string();
            (s("kid"), s("kty"), s("alg"))
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn discovery_and_jwks_describe_an_oauth_2_1_provider() {
    let (_idp, issuer) = provider(json!({})).await;
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let d = oidc_discovery(&issuer).await.expect("discovery");
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(d["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(d["registration_endpoint"], format!("{issuer}/reg"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for scope in ["mcp:tools", "mcp:admin"] {
        assert!(
            d["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope)),
            "{d}"
        );
    }
    let keys = jwks_kids(&issuer).await;
    let types: Vec<(&str, &str)> = keys
        .iter()
        .map(|(_, t, a)| (t.as_str(), a.as_str()))
        .collect();
    assert_eq!(types, [("RSA", "RS256"), ("EC", "ES256"), ("OKP", "EdDSA")]);
}

#[tokio::test]
async fn client_credentials_tokens_are_jwts_for_the_resource() {
    for (alg, kty) in [("RS256", "RSA"), ("ES256", "EC"), ("EdDSA", "OKP")] {
        let (_idp, issuer) = provider(json!({ "accessTokenAlg": alg })).await;
        let token = client_credentials_token(&issuer, RESOURCE, "mcp:tools")
            .await
            .expect("token");
        let (header, claims) = decode_jwt(&token).expect("a JWT");
        assert_eq!(header["typ"], "at+jwt", "RFC 9068 header: {header}");
        assert_eq!(header["alg"], alg);
        let kid = header["kid"].as_str().expect("kid");
        let keys = jwks_kids(&issuer).await;
        let key = keys.iter().find(|(k, _, _)| k == kid).expect("kid in JWKS");
        assert_eq!(key.1, kty);

        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["aud"], RESOURCE);
        assert_eq!(claims["sub"], AGENT_CLIENT_ID);
        assert_eq!(claims["client_id"], AGENT_CLIENT_ID);
        assert_eq!(claims["scope"], "mcp:tools");
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!((iat - now()).abs() < 60 && exp == iat + 600, "{claims}");
        assert!(
            claims.get("groups").is_none(),
            "agents have no groups: {claims}"
        );
    }
}

#[tokio::test]
async fn token_requests_follow_the_resource_and_reject_bad_ones() {
    let (_idp, issuer) = provider(json!({})).await;
    // No resource: the configured one, and every scope of it.
    let answer = token_request(
        &issuer,
        AGENT_CLIENT_ID,
        AGENT_CLIENT_SECRET,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect("token");
    let (_, claims) = decode_jwt(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 600);
    // Another resource is another audience (for wrong-audience tests).
    let other = client_credentials_token(&issuer, "http://127.0.0.1:9/other", "mcp:admin")
        .await
        .expect("token");
    let (_, claims) = decode_jwt(&other).unwrap();
    assert_eq!(claims["aud"], "http://127.0.0.1:9/other");
    assert_eq!(claims["scope"], "mcp:admin");

    let err = client_credentials_token(&issuer, "urn:not-http", "mcp:tools")
        .await
        .expect_err("not an http resource");
    assert!(err.to_string().contains("invalid_target"), "{err}");
    let err = token_request(
        &issuer,
        AGENT_CLIENT_ID,
        "wrong",
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect_err("wrong secret");
    assert!(err.to_string().contains("invalid_client"), "{err}");
}

#[tokio::test]
async fn minted_tokens_and_key_rotation() {
    let (_idp, issuer) = provider(json!({})).await;
    let alice = mint_token(&issuer, json!({ "sub": "alice", "alg": "EdDSA" }))
        .await
        .expect("mint");
    let (header, claims) = decode_jwt(&alice).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], json!(["engineering", "finance"]));
    assert_eq!(claims["scope"], "mcp:tools mcp:admin");
    let expired = mint_token(&issuer, json!({ "claims": { "exp": 1, "jti": null } }))
        .await
        .expect("mint");
    let (_, claims) = decode_jwt(&expired).unwrap();
    assert_eq!(claims["exp"], 1);
    assert!(claims.get("jti").is_none());
    assert_eq!(claims["sub"], AGENT_CLIENT_ID);

    let before = client_credentials_token(&issuer, RESOURCE, "mcp:tools")
        .await
        .unwrap();
    let old_kid = decode_jwt(&before).unwrap().0["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let new_kids = rotate_signing_keys(&issuer, false, None)
        .await
        .expect("rotate");
    let published: Vec<String> = jwks_kids(&issuer).await.into_iter().map(|k| k.0).collect();
    assert_eq!(published, new_kids);
    assert!(!published.contains(&old_kid));
    let after = client_credentials_token(&issuer, RESOURCE, "mcp:tools")
        .await
        .unwrap();
    let kid = decode_jwt(&after).unwrap().0["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid, new_kids[0]);

    // An overlapping rotation keeps the old keys published, and can change the algorithm.
    let newer = rotate_signing_keys(&issuer, true, Some("ES256"))
        .await
        .expect("rotate");
    let published: Vec<String> = jwks_kids(&issuer).await.into_iter().map(|k| k.0).collect();
    assert_eq!(published.len(), 6);
    assert!(published.contains(&kid) && published.contains(&newer[1]));
    let es = client_credentials_token(&issuer, RESOURCE, "mcp:tools")
        .await
        .unwrap();
    let header = decode_jwt(&es).unwrap().0;
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some(newer[1].as_str()))
    );
}

#[tokio::test]
async fn users_sign_in_with_chromium_and_get_tokens_with_groups() {
    require_chromium();
    let (_idp, issuer) = provider(json!({})).await;
    for (user, groups) in [
        ("alice", json!(["engineering", "finance"])),
        ("bob", json!(["engineering"])),
    ] {
        let got = user_token(&issuer, user, Some(RESOURCE), "mcp:tools")
            .await
            .expect("sign-in");
        let redirect = got["redirect"].as_str().unwrap();
        assert!(
            redirect.starts_with("http://127.0.0.1/callback?code="),
            "{redirect}"
        );
        assert!(
            redirect.contains("&iss=http%3A%2F%2F127.0.0.1%3A"),
            "RFC 9207: {redirect}"
        );
        let (header, claims) = decode_jwt(got["token"]["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(claims["sub"], user);
        assert_eq!(claims["groups"], groups);
        assert_eq!(claims["aud"], RESOURCE);
        assert_eq!(claims["scope"], "mcp:tools");
        assert_eq!(claims["client_id"], got["client_id"]);
        assert_eq!(claims["iss"], issuer);
    }
    // Without a resource the configured one is the audience.
    let got = user_token(&issuer, "alice", None, "mcp:admin")
        .await
        .expect("sign-in");
    let (_, claims) = decode_jwt(got["token"]["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        (claims["aud"].as_str(), claims["scope"].as_str()),
        (Some(RESOURCE), Some("mcp:admin"))
    );
    // Only configured users sign in: anyone else is sent back with access_denied.
    let err = user_token(&issuer, "mallory", Some(RESOURCE), "mcp:tools")
        .await
        .expect_err("unknown user");
    assert!(err.to_string().contains("error=access_denied"), "{err}");
}

#[tokio::test]
async fn the_sdk_client_runs_the_whole_authorization_dance() {
    require_chromium();
    let (_idp, issuer) = provider(json!({ "accessTokenAlg": "ES256" })).await;
    let fixture = conformance_fixture_http().await.expect("fixture");
    let rs = reference_resource_server(&issuer, fixture.url.as_deref().unwrap())
        .await
        .expect("resource server");
    let url = rs.url.clone().unwrap();
    let plan = json!({ "user": "bob", "calls": [{ "name": "test_simple_text", "arguments": {} }] });
    let report = run_oauth_client(&url, &plan).await.expect("oauth client");

    let metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        report["challenge"],
        format!("Bearer resource_metadata=\"{metadata}\", scope=\"mcp:tools\"")
    );
    assert_eq!(report["resourceMetadataUrl"], metadata);
    assert_eq!(report["authorizationServer"], issuer);
    assert_eq!(
        report["authorization"]["resource"], url,
        "RFC 8707: {report}"
    );
    assert_eq!(report["authorization"]["code_challenge_method"], "S256");
    let claims = &report["token"]["claims"];
    assert_eq!(claims["aud"], url);
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["groups"], json!(["engineering"]));
    assert_eq!(claims["client_id"], report["clientId"]);
    assert_eq!(report["token"]["header"]["alg"], "ES256");
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("test_simple_text")),
        "{report}"
    );
    assert_eq!(
        report["calls"][0]["text"],
        "This is a simple text response for testing."
    );
    let http: Vec<&str> = report["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(http[0].ends_with("/mcp 401"), "{http:?}");
    assert!(
        http.iter()
            .any(|h| h.starts_with("POST") && h.ends_with("/reg 201")),
        "{http:?}"
    );
}

/// Warden in front of the conformance fixture, trusting the provider's tokens for its own URL.
async fn warden_with_idp(issuer: &str, fixture: &str) -> warden_gateway::Running {
    let identity = format!("issuer = {issuer:?}\nscopes_supported = [\"mcp:tools\"]");
    let upstream = format!("[upstreams.conformance]\nurl = {fixture:?}\nprefix = \"\"\n");
    warden(&config_with_identity(&identity, &upstream))
        .await
        .expect("warden starts")
}

#[tokio::test]
async fn through_warden_the_sdk_client_signs_in_and_agents_use_client_credentials() {
    require_chromium();
    // The provider accepts any resource indicator, so it can start before Warden's port is known.
    let (_idp, issuer) = provider(json!({})).await;
    let fixture = conformance_fixture_http().await.expect("fixture");
    let gateway = warden_with_idp(&issuer, fixture.url.as_deref().unwrap()).await;
    let url = gateway.mcp_url();

    let plan =
        json!({ "user": "alice", "calls": [{ "name": "test_simple_text", "arguments": {} }] });
    let report = run_oauth_client(&url, &plan).await.expect("oauth client");
    assert_eq!(report["authorizationServer"], issuer, "{report}");
    assert_eq!(report["authorization"]["resource"], url);
    assert_eq!(report["token"]["claims"]["aud"], url);
    assert_eq!(report["token"]["claims"]["sub"], "alice");
    assert_eq!(
        report["calls"][0]["text"], "This is a simple text response for testing.",
        "{report}"
    );

    // An agent: client credentials for Warden's URL work; a token for another audience does not.
    let good = client_credentials_token(&issuer, &url, "mcp:tools")
        .await
        .unwrap();
    let other = client_credentials_token(&issuer, "http://127.0.0.1:9/mcp", "mcp:tools")
        .await
        .unwrap();
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "agent", "version": "1" } } });
    let post = |token: String| {
        http_client()
            .post(&url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&ping)
            .send()
    };
    assert_eq!(post(good).await.unwrap().status(), 200);
    let refused = post(other).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata="),
        "{:?}",
        refused.headers()
    );
    gateway.stop().await.expect("warden stops");
}
