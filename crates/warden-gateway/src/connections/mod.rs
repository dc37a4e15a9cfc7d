//! Per-user upstream accounts: an upstream with `oauth` is called with each user's own token
//! at its service, never with a shared key and never with the agent's token.
//!
//! - **Connecting** is a request on the consent page ([`crate::store::CONNECT`]): the call that
//!   found no account waits exactly like a call that waits for consent (`crate::stage::connect`).
//!   On the page the signed-in person — who must be the caller — chooses to connect; Warden
//!   then acts as an OAuth client of the service: authorization code with PKCE (S256), `state`,
//!   the RFC 8707 `resource`, the RFC 9207 `iss` of the answer checked, the code exchanged with
//!   HTTP Basic client authentication (the client secret from the vault).
//! - **Tokens** are stored in the vault as the secret `connection.<upstream>` owned by the user
//!   (sealed, bound to that name and owner). The user's links to the upstream send the access
//!   token ([`Bearer`]); the connect stage refreshes it before it expires (60 s plus the
//!   longest consent hold ahead), one refresh per account at a time. A refused refresh
//!   deletes the connection, so the next call asks the user to connect again.
//! - **Revoking** (`warden connections revoke`, or the admin API) deletes the stored tokens and
//!   revokes the refresh token at the service when it offers RFC 7009 revocation.
//!
//! - **Token exchange** (RFC 8693, `grant = "token_exchange"`): no connecting; the caller's own
//!   access token (an OIDC token Warden verified, remembered per user in memory only while an
//!   upstream needs it) is exchanged at the service's token endpoint for a token of the same user
//!   for the upstream's `resource`, kept in memory until it is about to expire.
//!
//! Authorization-server metadata is found by RFC 8414 (then OpenID discovery) through the SSRF
//! guard, like every metadata fetch; its `issuer` must be the configured one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use zeroize::Zeroize;

use crate::catalog::lock;
use crate::config::{Config, Grant, OAuthConfig};
use crate::consent::Clock;
use crate::store::{Store, StoreError};
use crate::vault::{Secret, Vault, VaultError};

mod exchange;
mod service;
#[cfg(test)]
mod tests;

use service::{Attempt, Server};

/// The vault name of a user's tokens for `upstream`.
pub fn secret_name(upstream: &str) -> String {
    format!("{PREFIX}{upstream}")
}

/// The upstream whose connection a vault name holds, if it holds one.
pub fn upstream_of(secret_name: &str) -> Option<&str> {
    secret_name.strip_prefix(PREFIX)
}

const PREFIX: &str = "connection.";
/// How long the service's sign-in may take.
const ATTEMPT_TTL: Duration = Duration::from_secs(600);
const MAX_ATTEMPTS: usize = 10_000;
/// Refreshed when it has less than this (plus the consent hold) to live.
const REFRESH_AHEAD: i64 = 60;

pub const ATTEMPT_COOKIE: &str = "__Host-warden-connect";

/// The access token a user's links to an upstream send, kept fresh on the way to them.
#[derive(Default)]
pub struct Bearer {
    token: RwLock<Option<HeaderValue>>,
    /// Counts connections and disconnections: a link opened under another one is done (its
    /// upstream session belongs to another account, or to none).
    epoch: AtomicU64,
}

impl Bearer {
    /// The `Authorization` value, while the user is connected.
    pub fn header(&self) -> Option<HeaderValue> {
        crate::catalog::read(&self.token).clone()
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A refreshed token of the same account.
    fn set(&self, token: Option<HeaderValue>) {
        if *crate::catalog::read(&self.token) != token {
            *crate::catalog::write(&self.token) = token;
        }
    }

    /// Another account, or none: links opened before are done.
    fn replace(&self, token: Option<HeaderValue>) {
        *crate::catalog::write(&self.token) = token;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// The `Authorization` value of an access token; `None` when it cannot be a header value.
fn authorization(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(<token>)")
    }
}

/// A user's tokens at a service, as the vault keeps them.
#[derive(Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Unix seconds; `None`: the service did not say.
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    connected_at: i64,
    /// When this access token was issued (Unix seconds).
    #[serde(default)]
    issued_at: i64,
}

impl Drop for Tokens {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(r) = &mut self.refresh_token {
            r.zeroize();
        }
    }
}

impl Tokens {
    /// Whether it lives longer than `ahead` (at most half its lifetime, so that a short-lived
    /// token is not refreshed on every call).
    fn fresh(&self, now: i64, ahead: i64) -> bool {
        self.expires_at.is_none_or(|at| {
            let ahead = ahead.min((at - self.issued_at) / 2).max(0);
            at.saturating_sub(ahead) > now
        })
    }

    fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Why an account could not be connected or used. Shown to people and logged: never holds a
/// token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("this connection attempt is unknown or took too long; open the link again")]
    UnknownAttempt,
    #[error("the answer does not belong to this browser's connection attempt (state mismatch)")]
    State,
    #[error("this account connection was started by someone else; sign in as {0}")]
    OtherPerson(String),
    #[error("the answer came from another authorization server than {0}")]
    Issuer(String),
    #[error("the service refused: {0}")]
    Refused(String),
    /// The service no longer honours the grant (RFC 6749 `invalid_grant`): revoked or expired.
    #[error("the service no longer honours this connection (invalid_grant)")]
    InvalidGrant,
    #[error("the service's authorization server cannot be reached: {0}")]
    Unreachable(String),
    #[error("upstream {0:?} does not connect per-user accounts")]
    NotPerUser(String),
    #[error("the vault: {0}")]
    Vault(#[from] VaultError),
    #[error("the store: {0}")]
    Store(#[from] StoreError),
}

type Account = (usize, Arc<str>);

/// An exchanged token's subject (its SHA-256) and expiry.
type Exchanged = ([u8; 32], Option<i64>);

pub struct Connections {
    names: Vec<String>,
    oauth: Vec<Option<OAuthConfig>>,
    store: Option<Arc<dyn Store>>,
    vault: Option<Arc<Vault>>,
    http: crate::outbound::Outbound,
    redirect_uri: String,
    /// Seconds before expiry at which a token is refreshed.
    ahead: i64,
    /// Unix seconds, which tests move forward to see tokens expire.
    pub clock: Clock,
    servers: Mutex<HashMap<String, Arc<OnceCell<Arc<Server>>>>>,
    attempts: Mutex<HashMap<String, Attempt>>,
    live: Mutex<HashMap<Account, Arc<Bearer>>>,
    refreshing: Mutex<HashMap<Account, Arc<tokio::sync::Mutex<()>>>>,
    /// Whether an upstream exchanges callers' tokens (then they are remembered).
    exchanges: bool,
    /// Each user's latest verified access token and its expiry, for token exchange.
    subjects: Mutex<HashMap<Arc<str>, (Secret, i64)>>,
    /// Exchanged tokens: which subject they came from (its SHA-256) and when they expire.
    exchanged: Mutex<HashMap<Account, Exchanged>>,
}

impl Connections {
    pub fn new(
        config: &Config,
        store: Option<Arc<dyn Store>>,
        vault: Option<Arc<Vault>>,
        http: crate::outbound::Outbound,
    ) -> Connections {
        let origin = crate::consent::origin_of(&config.server.public_url);
        let hold = i64::try_from(config.consent.hold.as_secs()).unwrap_or(60);
        Connections {
            names: config.upstreams.iter().map(|u| u.name.clone()).collect(),
            oauth: config
                .upstreams
                .iter()
                .map(|u| u.oauth().cloned())
                .collect(),
            store,
            vault,
            http,
            redirect_uri: format!("{origin}/consent/connected"),
            ahead: REFRESH_AHEAD + hold,
            clock: Clock::default(),
            servers: Mutex::default(),
            attempts: Mutex::default(),
            live: Mutex::default(),
            refreshing: Mutex::default(),
            exchanges: config
                .upstreams
                .iter()
                .any(|u| u.oauth().is_some_and(|o| o.grant == Grant::TokenExchange)),
            subjects: Mutex::default(),
            exchanged: Mutex::default(),
        }
    }

    /// How users of upstream `index` connect their accounts, if they must.
    pub fn oauth(&self, index: usize) -> Option<&OAuthConfig> {
        self.oauth.get(index).and_then(Option::as_ref)
    }

    /// The upstream index of a configured name.
    pub fn index(&self, upstream: &str) -> Option<usize> {
        self.names.iter().position(|n| n == upstream)
    }

    /// The token holder the user's links to upstream `index` read.
    pub fn bearer(&self, index: usize, user: &Arc<str>) -> Arc<Bearer> {
        lock(&self.live)
            .entry((index, user.clone()))
            .or_default()
            .clone()
    }

    fn vault(&self) -> Result<&Arc<Vault>, ConnectError> {
        self.vault
            .as_ref()
            .ok_or(ConnectError::Vault(VaultError::Key(
                "is not open (the store is off)".into(),
            )))
    }

    /// The user's stored tokens for upstream `index`; `None` when not connected.
    async fn read(&self, index: usize, user: &str) -> Result<Option<Tokens>, ConnectError> {
        let name = secret_name(&self.names[index]);
        let secret = match self.vault()?.get(&name, user).await {
            Ok(s) => s,
            Err(VaultError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_str::<Tokens>(secret.expose()) {
            Ok(t) => Ok(Some(t)),
            Err(_) => {
                tracing::warn!(upstream = %self.names[index], user, "a stored connection is unreadable; the user is asked to connect again");
                Ok(None)
            }
        }
    }

    async fn write(&self, index: usize, user: &str, tokens: &Tokens) -> Result<(), ConnectError> {
        let name = secret_name(&self.names[index]);
        let mut text = serde_json::to_string(tokens).unwrap_or_default();
        let row = self.vault()?.seal(&name, user, &text, self.clock.now());
        text.zeroize();
        let store = self.store()?;
        let mut tx = store.begin().await?;
        tx.vault_put(&row?).await?;
        tx.commit().await?;
        Ok(())
    }

    fn store(&self) -> Result<&Arc<dyn Store>, ConnectError> {
        self.store
            .as_ref()
            .ok_or(ConnectError::Store(StoreError::Corrupt {
                what: "connections",
                reason: "no store".into(),
            }))
    }

    /// Whether `user` has a usable account at upstream `index`, refreshing its token when it
    /// is about to expire; the user's links then send the fresh token. `false`: not connected
    /// (or the service refused to refresh, and the connection is gone).
    pub async fn ensure(&self, index: usize, user: &Arc<str>) -> Result<bool, ConnectError> {
        let Some(oauth) = self.oauth(index) else {
            return Ok(true);
        };
        if oauth.grant == Grant::TokenExchange {
            return self.exchange(index, oauth, user).await;
        }
        let bearer = self.bearer(index, user);
        let now = self.clock.now();
        let tokens = match self.read(index, user).await? {
            Some(t) if t.fresh(now, self.ahead) => Some(t),
            None => None,
            Some(_) => {
                // One refresh per account at a time: who waited finds it done.
                let gate = lock(&self.refreshing)
                    .entry((index, user.clone()))
                    .or_default()
                    .clone();
                let _turn = gate.lock().await;
                match self.read(index, user).await? {
                    Some(t) if t.fresh(self.clock.now(), self.ahead) => Some(t),
                    Some(t) => {
                        let usable = !t.expired(self.clock.now());
                        let old = usable.then(|| t.access_token.clone());
                        match self.refresh(index, oauth, user, t).await {
                            Ok(fresh) => fresh,
                            // The service is unreachable: the old token serves until it expires.
                            Err(e @ ConnectError::Unreachable(_)) if usable => {
                                tracing::warn!(upstream = %self.names[index], user = %user, error = %e, "cannot refresh yet; the current token is still valid");
                                bearer.set(old.as_deref().and_then(authorization));
                                return Ok(true);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    None => None,
                }
            }
        };
        match tokens {
            Some(t) => {
                if bearer.header().is_none() {
                    bearer.replace(authorization(&t.access_token));
                } else {
                    bearer.set(authorization(&t.access_token));
                }
                Ok(true)
            }
            None => {
                if bearer.header().is_some() {
                    bearer.replace(None);
                }
                Ok(false)
            }
        }
    }

    /// The tokens of a refresh; `None` (and the connection deleted) when the service refused.
    async fn refresh(
        &self,
        index: usize,
        oauth: &OAuthConfig,
        user: &str,
        old: Tokens,
    ) -> Result<Option<Tokens>, ConnectError> {
        let upstream = &self.names[index];
        let Some(refresh_token) = old.refresh_token.as_deref() else {
            tracing::info!(
                event = "connection.expired",
                upstream,
                user,
                "the access token expired and there is no refresh token; the user is asked to connect again"
            );
            self.forget(index, user).await?;
            return Ok(None);
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", oauth.resource.as_str()),
        ];
        match self.token_request(oauth, &form).await {
            Ok(mut fresh) => {
                // A service that does not rotate refresh tokens keeps the old one valid.
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = old.refresh_token.clone();
                }
                fresh.connected_at = old.connected_at;
                self.write(index, user, &fresh).await?;
                tracing::info!(
                    event = "connection.refreshed",
                    upstream,
                    user,
                    "access token refreshed"
                );
                Ok(Some(fresh))
            }
            Err(ConnectError::InvalidGrant) => {
                tracing::info!(
                    event = "connection.refresh_refused",
                    upstream,
                    user,
                    "the service no longer honours the refresh token; the user is asked to connect again"
                );
                self.forget(index, user).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn forget(&self, index: usize, user: &str) -> Result<bool, ConnectError> {
        let store = self.store()?;
        let mut tx = store.begin().await?;
        let removed = tx.vault_rm(&secret_name(&self.names[index]), user).await?;
        tx.commit().await?;
        if let Some(b) = lock(&self.live).get(&(index, Arc::from(user))) {
            b.replace(None);
        }
        Ok(removed)
    }

    /// Deletes `user`'s connection to `upstream` and revokes its refresh token at the service
    /// (RFC 7009) when the service offers that. `false`: there was none.
    pub async fn revoke(&self, upstream: &str, user: &str) -> Result<bool, ConnectError> {
        let index = self
            .index(upstream)
            .filter(|i| self.oauth(*i).is_some())
            .ok_or_else(|| ConnectError::NotPerUser(upstream.to_string()))?;
        let tokens = self.read(index, user).await?;
        let removed = self.forget(index, user).await?;
        if let (Some(tokens), Some(oauth)) = (tokens, self.oauth(index))
            && let Err(e) = self.revoke_at_service(oauth, &tokens).await
        {
            tracing::warn!(upstream, user, error = %e, "the service did not confirm the revocation; the tokens are deleted here");
        }
        tracing::info!(
            event = "connection.revoked",
            upstream,
            user,
            removed,
            "connection revoked"
        );
        Ok(removed)
    }

    async fn client_secret(
        &self,
        oauth: &OAuthConfig,
    ) -> Result<zeroize::Zeroizing<String>, ConnectError> {
        Ok(crate::vault::resolve(self.vault.as_deref(), &oauth.client_secret).await?)
    }
}
