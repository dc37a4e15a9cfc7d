//! Who is calling. Every request resolves to a [`Principal`] — or is refused — before anything
//! else happens to it: a bearer JWT from the organisation's OpenID provider (verified against its
//! published keys), an API key of a headless agent, or, on loopback only, the test profile.
//!
//! What it must never do: accept a token it did not verify, trust a session id, let a revoked
//! token, user or agent through on the next request, or put a token in a log line or an error.

mod cache;
mod challenge;
mod introspect;
mod jwks;
mod jwt;
pub mod keys;
pub mod revocation;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use sha2::{Digest, Sha256};

pub use challenge::Challenge;
pub use jwt::{Verifier, algorithm};

use crate::config::Config;
use crate::store::{Generation, Store, StoreError};

/// How a principal proved itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    TestProfile,
    Jwt,
    ApiKey,
}

/// The caller of one request: the user, the agent acting for them, and what they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: Arc<str>,
    pub agent: Option<Arc<str>>,
    pub groups: Vec<Arc<str>>,
    pub scopes: Vec<Arc<str>>,
    /// `jti` of a token, or the id of an API key.
    pub token_id: Option<Arc<str>>,
    /// Unix seconds after which the credential is no longer valid.
    pub expires_at: Option<i64>,
    pub method: AuthMethod,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| &**s == scope)
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| &**g == group)
    }
}

/// Why a request was not authenticated. The text names the reason and never the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("malformed request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("revoked {0}")]
    Revoked(&'static str),
    #[error("the identity provider cannot be reached to verify the token: {0}")]
    Unavailable(String),
    #[error("insufficient scope: needs {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
    /// The detail stays in the gateway's log: it names files of the gateway's host.
    #[error("the gateway cannot read its keys and revocations; try again later")]
    StoreUnavailable,
}

/// Resolves callers and answers for the identity stage.
pub struct Identity {
    config: crate::config::IdentityConfig,
    test: Option<Arc<Principal>>,
    verifier: Option<Verifier>,
    http: crate::outbound::Outbound,
    keys: keys::ApiKeys,
    revocations: revocation::Revocations,
    cache: cache::TokenCache,
    store: Option<Arc<dyn Store>>,
    /// The generation the keys and revocations held were read at.
    seen: Mutex<Option<Generation>>,
    /// Held while they are read again, so that calls meanwhile wait for the new ones.
    reloading: tokio::sync::Mutex<()>,
    /// The store's failures, logged once per [`OUTAGE_LOG_EVERY`] rather than once per refusal.
    outage: Mutex<Outage>,
    pub challenge: Challenge,
}

/// How often a store that stays unreadable is logged again, with the refusals counted since.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Requests refused while the store cannot be read, for the log.
#[derive(Default)]
struct Outage {
    /// When the last message about it was logged; `None` while the store works.
    logged: Option<Instant>,
    /// Refusals since then.
    refused: u64,
}

impl Identity {
    pub async fn new(
        config: &Config,
        http: crate::outbound::Outbound,
    ) -> Result<Identity, StoreError> {
        let identity = &config.identity;
        let test = identity.test.as_ref().map(|t| {
            Arc::new(Principal {
                user: Arc::from(t.user.as_str()),
                agent: None,
                groups: t.groups.iter().map(|g| Arc::from(g.as_str())).collect(),
                scopes: identity
                    .scopes_supported
                    .iter()
                    .map(|s| Arc::from(s.as_str()))
                    .collect(),
                token_id: None,
                expires_at: None,
                method: AuthMethod::TestProfile,
            })
        });
        // Tool integrity keeps its pins there too.
        let pins = config
            .upstreams
            .iter()
            .any(|u| u.integrity.pin != crate::config::PinMode::Off);
        let needs_store = identity.api_keys
            || identity.oidc.is_some()
            || config.consent.sign_in.is_some()
            || config.uses_vault()
            || pins;
        let store = if needs_store {
            Some(crate::store::open(&config.storage).await?)
        } else {
            None
        };
        let this = Identity {
            config: identity.clone(),
            test,
            verifier: identity
                .oidc
                .as_ref()
                .map(|o| Verifier::new(o.clone(), http.clone())),
            http,
            keys: keys::ApiKeys::default(),
            revocations: revocation::Revocations::default(),
            cache: cache::TokenCache::new(identity.token_cache_size),
            store,
            seen: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            outage: Mutex::default(),
            challenge: Challenge::new(&config.server.public_url, &identity.scopes_supported),
        };
        // A store that cannot be read now refuses requests until it can; the gateway still starts.
        let _ = this.sync().await;
        Ok(this)
    }

    /// The identity provider's issuer, for the protected resource metadata.
    pub fn issuer(&self) -> Option<&str> {
        self.config.oidc.as_ref().map(|o| o.issuer.as_str())
    }

    pub fn scopes_supported(&self) -> &[String] {
        &self.config.scopes_supported
    }

    pub fn is_admin(&self, p: &Principal) -> bool {
        p.method == AuthMethod::TestProfile
            || self.config.admin_groups.iter().any(|g| p.in_group(g))
    }

    /// Authenticates one request from its URI query and headers.
    pub async fn authenticate(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Arc<Principal>, AuthError> {
        if let Some(p) = &self.test {
            return Ok(p.clone());
        }
        if query.is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("access_token=") || kv.starts_with("api_key="))
        }) {
            return Err(AuthError::InvalidRequest(
                "credentials in the URL are refused; send an Authorization header",
            ));
        }
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(AuthError::Missing);
        };
        if values.next().is_some() {
            return Err(AuthError::InvalidRequest(
                "more than one Authorization header",
            ));
        }
        if value.len() > self.config.max_token_bytes + 7 {
            return Err(AuthError::InvalidToken(format!(
                "longer than {} bytes",
                self.config.max_token_bytes
            )));
        }
        let value = value
            .to_str()
            .map_err(|_| AuthError::InvalidToken("not printable ASCII".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(AuthError::InvalidRequest(
                    "the Authorization scheme must be Bearer",
                ));
            }
        };
        if token.is_empty() {
            return Err(AuthError::InvalidRequest("empty bearer token"));
        }
        self.sync().await?;
        let principal = self.verify(token).await?;
        self.revocations.check(&principal)?;
        Ok(principal)
    }

    async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        if token.starts_with(keys::PREFIX) {
            if !self.config.api_keys {
                return Err(AuthError::InvalidToken(
                    "API keys are not accepted here".into(),
                ));
            }
            return self.keys.verify(token).map(Arc::new);
        }
        let Some(verifier) = &self.verifier else {
            return Err(AuthError::InvalidToken(
                "only API keys are accepted here".into(),
            ));
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(p) = self.cache.get(&digest, crate::store::now()) {
            return Ok(p);
        }
        let oidc = self.config.oidc.as_ref();
        let opaque = token.split('.').count() != 3;
        let (principal, kid) = match oidc.and_then(|o| o.introspection.as_ref().map(|i| (o, i))) {
            Some((o, endpoint)) if opaque => (
                introspect::introspect(&self.http, o, endpoint, token).await?,
                None,
            ),
            _ => verifier.verify(token).await?,
        };
        let principal = Arc::new(principal);
        let removed = verifier.take_removed_keys();
        if !removed.is_empty() {
            self.cache.purge_keys(&removed);
        }
        self.cache.insert(digest, principal.clone(), kid);
        Ok(principal)
    }

    /// The scopes a call needs that the principal lacks: a method's, and a tool's own.
    pub fn check_scopes(
        &self,
        p: &Principal,
        method: &str,
        tool: Option<&str>,
    ) -> Result<(), AuthError> {
        let required = &self.config.required_scopes;
        if required.is_empty() {
            return Ok(());
        }
        let mut needed: Vec<String> = Vec::new();
        let tool_key = tool.map(|t| format!("{method}:{t}"));
        for key in std::iter::once(method).chain(tool_key.as_deref()) {
            if let Some(scopes) = required.get(key) {
                needed.extend(scopes.iter().filter(|s| !p.has_scope(s)).cloned());
            }
        }
        if needed.is_empty() {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(needed))
        }
    }

    /// Reloads API keys and revocations when the store changed (another process may write it).
    /// While the store cannot be read, every request is refused: a revocation written there
    /// could not be seen.
    pub async fn sync(&self) -> Result<(), AuthError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = store.generation().await.map_err(|e| self.unreadable(&e))?;
        let current = || *self.seen.lock().unwrap_or_else(|e| e.into_inner()) == Some(now);
        if current() {
            return Ok(());
        }
        // Not answered before the new state is in place: a call that arrives while it is read
        // waits for it rather than going on with the revocations read before.
        let _reloading = self.reloading.lock().await;
        if current() {
            return Ok(());
        }
        let (keys, revocations) = read_cached_state(&**store)
            .await
            .map_err(|e| self.unreadable(&e))?;
        self.keys.replace(keys);
        if self.revocations.replace(revocations) {
            self.cache.purge_all();
        }
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        let mut outage = self.outage.lock().unwrap_or_else(|e| e.into_inner());
        if outage.logged.take().is_some() {
            tracing::warn!(
                refused = std::mem::take(&mut outage.refused),
                "keys and revocations can be read again; serving requests"
            );
        }
        Ok(())
    }

    /// Refuses while the store cannot be read. Logged when it starts and then once per
    /// [`OUTAGE_LOG_EVERY`], so that a long outage under load does not flood the log.
    fn unreadable(&self, e: &StoreError) -> AuthError {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut outage = self.outage.lock().unwrap_or_else(|e| e.into_inner());
        outage.refused += 1;
        let now = Instant::now();
        if outage
            .logged
            .is_none_or(|t| now.duration_since(t) >= OUTAGE_LOG_EVERY)
        {
            tracing::error!(
                error = %e,
                refused = std::mem::take(&mut outage.refused),
                "cannot read keys and revocations; refusing requests until the store works"
            );
            outage.logged = Some(now);
        }
        AuthError::StoreUnavailable
    }

    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }
}

/// Keys and revocations as one snapshot (one transaction).
async fn read_cached_state(
    store: &dyn Store,
) -> Result<(Vec<crate::store::StoredKey>, Vec<crate::store::Revocation>), StoreError> {
    let mut tx = store.begin_read().await?;
    let keys = tx.keys().await?;
    let revocations = tx.revocations().await?;
    tx.commit().await?;
    Ok((keys, revocations))
}

/// A hex SHA-256, as stored for API keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
