//! The identity provider's signing keys: found through OIDC discovery, fetched from its JWKS,
//! refetched when a token names a key we do not know (no more often than `jwks_min_refresh`)
//! and when the set is older than `jwks_max_age`, so a key the provider removed stops working
//! at the next refresh. Symmetric keys are never loaded.

use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::AuthError;

pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    pub family: AlgorithmFamily,
    /// The algorithm the key is published for, when the JWKS says so.
    pub alg: Option<Algorithm>,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.family == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<Key>>,
    fetched: Option<Instant>,
    jwks_uri: Option<String>,
}

pub struct Jwks {
    issuer: String,
    http: crate::outbound::Outbound,
    min_refresh: Duration,
    max_age: Duration,
    set: RwLock<KeySet>,
    refreshing: tokio::sync::Mutex<Option<Instant>>,
    removed: Mutex<Vec<String>>,
}

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

impl Jwks {
    pub fn new(
        issuer: String,
        http: crate::outbound::Outbound,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Jwks {
        Jwks {
            issuer,
            http,
            min_refresh,
            max_age,
            set: RwLock::default(),
            refreshing: tokio::sync::Mutex::new(None),
            removed: Mutex::default(),
        }
    }

    /// The key that verifies a token with this `kid` and `alg`.
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<Key>, AuthError> {
        let stale = self
            .read()
            .fetched
            .is_none_or(|t| t.elapsed() > self.max_age);
        if stale {
            self.refresh().await?;
        }
        if let Some(k) = self.find(kid, alg) {
            return Ok(k);
        }
        // Perhaps the provider rotated its keys: look again, but not too often.
        self.refresh().await?;
        self.find(kid, alg)
            .ok_or_else(|| AuthError::InvalidToken("unknown signing key".into()))
    }

    /// Key ids that left the set since the last call.
    pub fn take_removed(&self) -> Vec<String> {
        std::mem::take(&mut *self.removed.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<Key>> {
        let set = self.read();
        match kid {
            Some(kid) => set
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg))
                .cloned(),
            None => {
                let mut fitting = set.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Refetches the key set, at most once per `min_refresh`; concurrent callers wait for one fetch.
    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.refreshing.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return if self.read().keys.is_empty() {
                Err(AuthError::Unavailable("no signing keys yet".into()))
            } else {
                Ok(())
            };
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok((uri, keys)) => {
                let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
                let gone: Vec<String> = set
                    .keys
                    .iter()
                    .filter_map(|k| k.kid.clone())
                    .filter(|kid| !keys.iter().any(|n| n.kid.as_deref() == Some(kid)))
                    .collect();
                if !gone.is_empty() {
                    tracing::info!(removed = ?gone, "signing keys left the provider's JWKS");
                    self.removed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(gone);
                }
                *set = KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                    jwks_uri: Some(uri),
                };
                Ok(())
            }
            Err(why) => {
                tracing::warn!(issuer = %self.issuer, reason = %why, "cannot refresh the provider's signing keys");
                if self.read().keys.is_empty() {
                    Err(AuthError::Unavailable(why))
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let r = self
            .http
            .get(url)?
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status().as_u16()));
        }
        crate::outbound::read_json(r)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    async fn fetch(&self) -> Result<(String, Vec<Arc<Key>>), String> {
        let known = self.read().jwks_uri.clone();
        let uri = match known {
            Some(u) => u,
            None => self.discover().await?,
        };
        let set = self.get_json(&uri).await?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{uri}: no \"keys\" array"))?;
        Ok((
            uri,
            keys.iter().filter_map(parse_key).map(Arc::new).collect(),
        ))
    }

    /// The JWKS URL from the provider's metadata, whose `issuer` must be the configured one.
    async fn discover(&self) -> Result<String, String> {
        let base = self.issuer.trim_end_matches('/');
        let mut last = String::new();
        for well_known in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            match self.get_json(&format!("{base}{well_known}")).await {
                Ok(doc) => {
                    if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                        return Err(format!(
                            "the provider's metadata names another issuer than {}",
                            self.issuer
                        ));
                    }
                    return doc
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| "the provider publishes no jwks_uri".into());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// A signing key from a JWK; `None` for symmetric, encryption-only or unusable keys.
fn parse_key(value: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        _ => return None,
    };
    let alg = jwk
        .common
        .key_algorithm
        .and_then(|a| Algorithm::from_str(&a.to_string()).ok());
    if alg.is_some_and(|a| a.family() != family) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        decoding,
        family,
        alg,
    })
}
