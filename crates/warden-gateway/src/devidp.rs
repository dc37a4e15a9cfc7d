//! The development identity provider of `warden dev` (and of tests): a real OpenID issuer on
//! loopback — discovery document, JWKS with an RSA and an Ed25519 key, and signed JWT access
//! tokens — so the demo exercises exactly the verification path used in production.
//!
//! It also signs people in to Warden's consent page: one confidential client
//! ([`DevIdp::consent_client`], secret made at start), authorization code with PKCE (S256
//! required), a sign-in page that offers the demo users ([`DEMO_USERS`]) as buttons (no
//! passwords: it is a demo), single-use codes that live a minute, and RS256 ID tokens with
//! `nonce` and `groups`. Redirect URIs must be loopback `http://…/consent/callback` URLs.
//!
//! What it must never do: listen on anything but loopback, or be mistaken for a production
//! provider (its keys live in memory and change at every start).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use askama::Template;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The people of the demo, as (user, groups): the sign-in page offers each.
pub const DEMO_USERS: &[(&str, &[&str])] = &[
    ("demo-user", &["demo"]),
    ("demo-approver", &["demo", "finance-managers"]),
];
const CONSENT_CLIENT_ID: &str = "warden-dev-consent";
const CODE_TTL: Duration = Duration::from_secs(60);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signing algorithms the dev provider offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevAlg {
    Rs256,
    EdDsa,
}

struct Keys {
    generation: u32,
    rsa: RsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Keys {
    fn new(generation: u32) -> Result<Keys, String> {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "cannot make an RSA key")?;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| "cannot make an Ed25519 key")?;
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| "cannot read the Ed25519 key")?;
        Ok(Keys {
            generation,
            rsa,
            ed,
        })
    }

    fn kid(&self, alg: DevAlg) -> String {
        match alg {
            DevAlg::Rs256 => format!("dev-rsa-{}", self.generation),
            DevAlg::EdDsa => format!("dev-ed-{}", self.generation),
        }
    }

    fn jwks(&self) -> Value {
        let public = self.rsa.public_key();
        json!({ "keys": [
            { "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid(DevAlg::Rs256),
              "n": b64(public.modulus().big_endian_without_leading_zero()),
              "e": b64(public.exponent().big_endian_without_leading_zero()) },
            { "kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "kid": self.kid(DevAlg::EdDsa),
              "x": b64(self.ed.public_key().as_ref()) }
        ]})
    }
}

/// A running development provider.
pub struct DevIdp {
    pub issuer: String,
    keys: Arc<RwLock<Keys>>,
    consent_secret: String,
    task: tokio::task::JoinHandle<()>,
}

/// An authorization code not yet exchanged.
struct Code {
    user: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    issued: Instant,
}

struct Shared {
    issuer: String,
    keys: Arc<RwLock<Keys>>,
    secret: String,
    codes: Mutex<HashMap<String, Code>>,
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Set by the sign-in page's buttons.
    user: Option<String>,
}

#[derive(Template)]
#[template(path = "devidp_signin.html")]
struct SignInPage<'a> {
    users: Vec<(&'a str, String)>,
    fields: Vec<(&'static str, String)>,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// Where the consent page may be sent back to: its callback on loopback.
fn allowed_redirect(uri: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return false;
    };
    url.scheme() == "http"
        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        && url.path() == "/consent/callback"
        && url.query().is_none()
        && url.username().is_empty()
}

async fn authorize(State(s): State<Arc<Shared>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let redirect_uri = q.redirect_uri.clone().unwrap_or_default();
    if q.client_id.as_deref() != Some(CONSENT_CLIENT_ID) || !allowed_redirect(&redirect_uri) {
        return (StatusCode::BAD_REQUEST, "unknown client or redirect URI").into_response();
    }
    let challenge = q.code_challenge.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code")
        || q.code_challenge_method.as_deref() != Some("S256")
        || challenge.len() < 43
    {
        return (
            StatusCode::BAD_REQUEST,
            "authorization code with PKCE (S256) only",
        )
            .into_response();
    }
    let Some(user) = q.user.as_deref() else {
        let fields = [
            ("response_type", q.response_type.clone()),
            ("client_id", q.client_id.clone()),
            ("redirect_uri", q.redirect_uri.clone()),
            ("state", q.state.clone()),
            ("nonce", q.nonce.clone()),
            ("code_challenge", q.code_challenge.clone()),
            ("code_challenge_method", q.code_challenge_method.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let users = DEMO_USERS
            .iter()
            .map(|(u, groups)| (*u, groups.join(", ")))
            .collect();
        return match (SignInPage { users, fields }).render() {
            Ok(html) => (
                [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    };
    if !DEMO_USERS.iter().any(|(u, _)| *u == user) {
        return (StatusCode::BAD_REQUEST, "not a demo user").into_response();
    }
    let mut raw = [0u8; 16];
    rand::fill(&mut raw);
    let code = b64(&raw);
    {
        let mut codes = s.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        codes.insert(
            code.clone(),
            Code {
                user: user.to_string(),
                redirect_uri: redirect_uri.clone(),
                nonce: q.nonce.clone(),
                challenge,
                issued: Instant::now(),
            },
        );
    }
    let Ok(mut to) = reqwest::Url::parse(&redirect_uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.state.as_deref().unwrap_or_default())
        .append_pair("iss", &s.issuer);
    (
        StatusCode::SEE_OTHER,
        [(http::header::LOCATION, to.to_string())],
    )
        .into_response()
}

/// The client's HTTP Basic credentials.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if f.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the development provider mints access tokens itself; use the token warden dev printed",
        );
    }
    let client_ok = basic(&headers).is_some_and(|(id, secret)| {
        id == CONSENT_CLIENT_ID
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                secret.as_bytes(),
                s.secret.as_bytes(),
            ))
    });
    if !client_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let code = f.code.unwrap_or_default();
    let Some(c) = s
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&code)
        .filter(|c| c.issued.elapsed() < CODE_TTL)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    let verifier = f.code_verifier.unwrap_or_default();
    if f.redirect_uri.as_deref() != Some(c.redirect_uri.as_str())
        || b64(&Sha256::digest(verifier.as_bytes())) != c.challenge
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri or code_verifier does not match",
        );
    }
    let groups: Vec<&str> = DEMO_USERS
        .iter()
        .find(|(u, _)| *u == c.user)
        .map(|(_, g)| g.to_vec())
        .unwrap_or_default();
    let now = crate::store::now();
    let mut claims = json!({ "iss": s.issuer, "sub": c.user, "aud": CONSENT_CLIENT_ID, "iat": now, "exp": now + 300, "groups": groups });
    if let Some(nonce) = c.nonce {
        claims["nonce"] = nonce.into();
    }
    let id_token = sign(&s.keys, DevAlg::Rs256, json!({ "typ": "JWT" }), &claims);
    axum::Json(json!({ "token_type": "Bearer", "id_token": id_token, "expires_in": 300 }))
        .into_response()
}

/// A JWT of `claims` signed with `alg`, with `header` fields added to the standard ones (a null
/// removes one).
fn sign(keys: &RwLock<Keys>, alg: DevAlg, header: Value, claims: &Value) -> String {
    let keys = keys.read().unwrap_or_else(|e| e.into_inner());
    let mut h = json!({ "alg": if alg == DevAlg::Rs256 { "RS256" } else { "EdDSA" }, "typ": "at+jwt", "kid": keys.kid(alg) });
    if let (Some(h), Some(extra)) = (h.as_object_mut(), header.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                h.remove(k);
            } else {
                h.insert(k.clone(), v.clone());
            }
        }
    }
    let input = format!(
        "{}.{}",
        b64(h.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match alg {
        DevAlg::Rs256 => {
            let mut sig = vec![0; keys.rsa.public_modulus_len()];
            // Signing with a freshly generated key and a buffer of the modulus length cannot fail.
            let _ = keys.rsa.sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            );
            sig
        }
        DevAlg::EdDsa => keys.ed.sign(input.as_bytes()).as_ref().to_vec(),
    };
    format!("{input}.{}", b64(&signature))
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DevIdp {
    /// Serves on `listener`, which must be bound to a loopback address.
    pub async fn start(listener: TcpListener) -> std::io::Result<DevIdp> {
        let addr: SocketAddr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other(format!(
                "the development identity provider only listens on loopback, not {addr}"
            )));
        }
        let issuer = format!("http://{addr}");
        let keys = Arc::new(RwLock::new(Keys::new(1).map_err(std::io::Error::other)?));
        let discovery = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
            "subject_types_supported": ["public"],
        });
        let mut secret = [0u8; 24];
        rand::fill(&mut secret);
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            keys: keys.clone(),
            secret: b64(&secret),
            codes: Mutex::new(HashMap::new()),
        });
        let consent_secret = shared.secret.clone();
        let jwks_keys = keys.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                get(move || {
                    let jwks = jwks_keys.read().unwrap_or_else(|e| e.into_inner()).jwks();
                    async move { axum::Json(jwks) }
                }),
            )
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(DevIdp {
            issuer,
            keys,
            consent_secret,
            task,
        })
    }

    /// The consent page's client at this provider: id and secret.
    pub fn consent_client(&self) -> (&'static str, &str) {
        (CONSENT_CLIENT_ID, &self.consent_secret)
    }

    /// A token with `claims` (plus `iss` unless given), signed with the current RSA key.
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with(DevAlg::Rs256, json!({}), claims)
    }

    /// A token signed with `alg`, with `header` fields added to the standard ones.
    pub fn mint_with(&self, alg: DevAlg, header: Value, mut claims: Value) -> String {
        if claims.get("iss").is_none() {
            claims["iss"] = self.issuer.clone().into();
        }
        sign(&self.keys, alg, header, &claims)
    }

    /// The RSA public key as DER, the bytes an attacker would try as an HMAC secret.
    pub fn rsa_public_der(&self) -> Vec<u8> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .rsa
            .public_key()
            .as_ref()
            .to_vec()
    }

    /// Replaces every key: tokens signed before stop verifying once Warden refreshes the JWKS.
    pub fn rotate(&self) -> Result<(), String> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        *keys = Keys::new(keys.generation + 1)?;
        Ok(())
    }
}

/// Standard claims for a token of `user` (acting through `agent`) for `audience`, valid `ttl` seconds.
pub fn claims(user: &str, agent: &str, audience: &str, ttl: i64, extra: Value) -> Value {
    let now = crate::store::now();
    let mut id = [0u8; 12];
    rand::fill(&mut id);
    let mut c = json!({ "sub": user, "client_id": agent, "aud": audience, "iat": now, "nbf": now, "exp": now + ttl, "jti": hex::encode(id) });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}
