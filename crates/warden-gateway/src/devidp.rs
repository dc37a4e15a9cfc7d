//! The development identity provider of `warden dev` (and of tests): a real OpenID issuer on
//! loopback — discovery document, JWKS with an RSA and an Ed25519 key, and signed JWT access
//! tokens — so the demo exercises exactly the verification path used in production.
//!
//! What it must never do: listen on anything but loopback, or be mistaken for a production
//! provider (its keys live in memory and change at every start).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use axum::Router;
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;

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
    task: tokio::task::JoinHandle<()>,
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
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials"],
            "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
            "subject_types_supported": ["public"],
        });
        let jwks_keys = keys.clone();
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route("/jwks", get(move || {
                let jwks = jwks_keys.read().unwrap_or_else(|e| e.into_inner()).jwks();
                async move { axum::Json(jwks) }
            }))
            .route("/token", post(|| async { (http::StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "unsupported_grant_type", "error_description": "the development provider mints tokens itself; use the token warden dev printed" }))) }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(DevIdp { issuer, keys, task })
    }

    /// A token with `claims` (plus `iss` unless given), signed with the current RSA key.
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with(DevAlg::Rs256, json!({}), claims)
    }

    /// A token signed with `alg`, with `header` fields added to the standard ones.
    pub fn mint_with(&self, alg: DevAlg, header: Value, mut claims: Value) -> String {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
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
        if claims.get("iss").is_none() {
            claims["iss"] = self.issuer.clone().into();
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
