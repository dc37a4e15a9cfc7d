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
use std::time::{Duration, Instant};

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use zeroize::Zeroize;

use crate::catalog::lock;
use crate::config::{Config, Grant, OAuthConfig};
use crate::consent::{Clock, random_id};
use crate::identity::{AuthMethod, Principal};
use crate::store::{ConsentRequest, Store, StoreError};
use crate::vault::{Secret, Vault, VaultError};

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

/// What Warden uses of the service's authorization-server metadata.
#[derive(Deserialize)]
struct Server {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

struct Attempt {
    state: String,
    verifier: String,
    /// The connect request this attempt completes.
    consent: String,
    upstream: usize,
    user: String,
    started: Instant,
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

/// Remembered subjects at most; the ones closest to expiry go first.
const MAX_SUBJECTS: usize = 100_000;

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

    /// Keeps the caller's verified access token for token exchange, when an upstream exchanges
    /// tokens (an API key or a test profile is no token of the service's authorization server).
    pub fn remember(&self, principal: &Principal, headers: &http::HeaderMap) {
        if !self.exchanges || principal.method != AuthMethod::Jwt {
            return;
        }
        let Some(token) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.trim())
        else {
            return;
        };
        let expires = principal.expires_at.unwrap_or(i64::MAX);
        let mut subjects = lock(&self.subjects);
        if subjects
            .get(&principal.user)
            .is_some_and(|(s, _)| s.expose() == token)
        {
            return;
        }
        if subjects.len() >= MAX_SUBJECTS {
            let now = self.clock.now();
            subjects.retain(|_, (_, at)| *at > now);
            if let Some(first) = subjects
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(u, _)| u.clone())
            {
                subjects.remove(&first);
            }
        }
        subjects.insert(
            principal.user.clone(),
            (Secret::new(token.to_string()), expires),
        );
    }

    /// A token of `user` for upstream `index` by RFC 8693 exchange of their remembered access
    /// token, or the exchanged one still fresh; `false` when there is nothing to exchange or the
    /// service refuses the subject.
    async fn exchange(
        &self,
        index: usize,
        oauth: &OAuthConfig,
        user: &Arc<str>,
    ) -> Result<bool, ConnectError> {
        let now = self.clock.now();
        let subject = lock(&self.subjects)
            .get(user)
            .filter(|(_, at)| *at > now)
            .map(|(s, _)| s.clone());
        let Some(subject) = subject else {
            return Ok(false);
        };
        let digest: [u8; 32] = Sha256::digest(subject.expose().as_bytes()).into();
        let bearer = self.bearer(index, user);
        let fresh = |entry: Option<&Exchanged>| {
            entry.is_some_and(|(d, at)| {
                *d == digest && at.is_none_or(|at| at - REFRESH_AHEAD > self.clock.now())
            })
        };
        if bearer.header().is_some() && fresh(lock(&self.exchanged).get(&(index, user.clone()))) {
            return Ok(true);
        }
        let gate = lock(&self.refreshing)
            .entry((index, user.clone()))
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        if bearer.header().is_some() && fresh(lock(&self.exchanged).get(&(index, user.clone()))) {
            return Ok(true);
        }
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject.expose()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("resource", oauth.resource.as_str()),
        ];
        let scope = oauth.scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        match self.token_request(oauth, &form).await {
            Ok(tokens) => {
                lock(&self.exchanged).insert((index, user.clone()), (digest, tokens.expires_at));
                bearer.set(authorization(&tokens.access_token));
                tracing::info!(event = "connection.exchanged", upstream = %self.names[index], user = %user, "caller's token exchanged (RFC 8693)");
                Ok(true)
            }
            Err(ConnectError::InvalidGrant) => {
                tracing::info!(event = "connection.exchange_refused", upstream = %self.names[index], user = %user, "the service refused to exchange the caller's token");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether upstream `index` gets the caller's token by exchange (nobody connects anything).
    pub fn exchanges(&self, index: usize) -> bool {
        self.oauth(index)
            .is_some_and(|o| o.grant == Grant::TokenExchange)
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

    async fn revoke_at_service(
        &self,
        oauth: &OAuthConfig,
        tokens: &Tokens,
    ) -> Result<(), ConnectError> {
        let server = self.server(oauth).await?;
        let Some(endpoint) = &server.revocation_endpoint else {
            return Ok(());
        };
        let (token, hint) = match &tokens.refresh_token {
            Some(r) => (r.as_str(), "refresh_token"),
            None => (tokens.access_token.as_str(), "access_token"),
        };
        let secret = self.client_secret(oauth).await?;
        let form = [("token", token), ("token_type_hint", hint)];
        let (status, _) = self
            .http
            .oauth_post(endpoint, &oauth.client_id, &secret, &form)
            .await
            .map_err(ConnectError::Unreachable)?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ConnectError::Refused(format!(
                "revocation answered {status}"
            )))
        }
    }

    async fn client_secret(
        &self,
        oauth: &OAuthConfig,
    ) -> Result<zeroize::Zeroizing<String>, ConnectError> {
        Ok(crate::vault::resolve(self.vault.as_deref(), &oauth.client_secret).await?)
    }

    /// The service's authorization-server metadata, read once per issuer.
    async fn server(&self, oauth: &OAuthConfig) -> Result<Arc<Server>, ConnectError> {
        let cell = lock(&self.servers)
            .entry(oauth.issuer.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async { self.discover(&oauth.issuer).await.map(Arc::new) })
            .await
            .cloned()
    }

    async fn discover(&self, issuer: &str) -> Result<Server, ConnectError> {
        let url = reqwest::Url::parse(issuer)
            .map_err(|e| ConnectError::Unreachable(format!("issuer: {e}")))?;
        let path = url.path().trim_end_matches('/');
        let origin = url.origin().ascii_serialization();
        // RFC 8414 first (the well-known part before the issuer's path), then OpenID discovery.
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut last = String::new();
        for url in candidates {
            let response = match self.http.get(&url) {
                Ok(r) => r.timeout(Duration::from_secs(10)).send().await,
                Err(e) => return Err(ConnectError::Unreachable(e)),
            };
            let response = match response {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    last = format!("{url} answered {}", r.status());
                    continue;
                }
                Err(e) => {
                    last = e.without_url().to_string();
                    continue;
                }
            };
            let doc = crate::outbound::read_json(response)
                .await
                .map_err(|e| ConnectError::Unreachable(format!("metadata: {e}")))?;
            let server: Server = serde_json::from_value(doc)
                .map_err(|e| ConnectError::Unreachable(format!("metadata: {e}")))?;
            if server.issuer.trim_end_matches('/') != issuer {
                return Err(ConnectError::Issuer(issuer.to_string()));
            }
            if server
                .code_challenge_methods_supported
                .as_ref()
                .is_some_and(|m| !m.iter().any(|m| m == "S256"))
            {
                return Err(ConnectError::Refused(
                    "the service does not support PKCE with S256".into(),
                ));
            }
            return Ok(server);
        }
        Err(ConnectError::Unreachable(last))
    }

    /// The origin of the service's authorization endpoint (where the connect page sends people).
    pub async fn authorization_origin(&self, index: usize) -> Result<String, ConnectError> {
        let oauth = self
            .oauth(index)
            .ok_or_else(|| ConnectError::NotPerUser(self.names[index].clone()))?;
        let server = self.server(oauth).await?;
        reqwest::Url::parse(&server.authorization_endpoint)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| ConnectError::Unreachable(format!("authorization endpoint: {e}")))
    }

    /// Starts connecting the account that connect request `request` asks for, for `person`
    /// (the page has checked that they are its caller): the service's authorization URL and
    /// the attempt id for its cookie.
    pub async fn begin(
        &self,
        request: &ConsentRequest,
        person: &str,
    ) -> Result<(String, String), ConnectError> {
        let index = self
            .index(&request.server)
            .ok_or_else(|| ConnectError::NotPerUser(request.server.clone()))?;
        let oauth = self
            .oauth(index)
            .ok_or_else(|| ConnectError::NotPerUser(request.server.clone()))?;
        let server = self.server(oauth).await?;
        let attempt = Attempt {
            state: random_id(),
            verifier: format!("{}{}", random_id(), random_id()),
            consent: request.id.clone(),
            upstream: index,
            user: person.to_string(),
            started: Instant::now(),
        };
        let challenge = crate::consent::b64(&Sha256::digest(attempt.verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&server.authorization_endpoint)
            .map_err(|e| ConnectError::Unreachable(format!("authorization endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &oauth.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("state", &attempt.state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", &oauth.resource);
            if !oauth.scopes.is_empty() {
                q.append_pair("scope", &oauth.scopes.join(" "));
            }
        }
        let id = random_id();
        let mut attempts = lock(&self.attempts);
        crate::consent::keep(
            &mut attempts,
            id.clone(),
            attempt,
            ATTEMPT_TTL,
            MAX_ATTEMPTS,
            |a| a.started,
        );
        Ok((url.to_string(), id))
    }

    /// Completes a connection from the service's redirect, for `person` signed in to the page:
    /// the tokens are stored, and the connect request to mark done is returned.
    pub async fn finish(
        &self,
        attempt_id: &str,
        query: &HashMap<String, String>,
        person: &str,
    ) -> Result<String, ConnectError> {
        // Used once, and only by the answer it was made for: a forged redirect to this page
        // cannot cancel a person's attempt.
        let attempt = {
            let mut attempts = lock(&self.attempts);
            let a = attempts
                .get(attempt_id)
                .filter(|a| a.started.elapsed() < ATTEMPT_TTL)
                .ok_or(ConnectError::UnknownAttempt)?;
            let state = query.get("state").map(String::as_str).unwrap_or_default();
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                state.as_bytes(),
                a.state.as_bytes(),
            )) {
                return Err(ConnectError::State);
            }
            attempts
                .remove(attempt_id)
                .ok_or(ConnectError::UnknownAttempt)?
        };
        if attempt.user != person {
            return Err(ConnectError::OtherPerson(attempt.user));
        }
        let oauth = self
            .oauth(attempt.upstream)
            .ok_or_else(|| ConnectError::NotPerUser(self.names[attempt.upstream].clone()))?;
        let server = self.server(oauth).await?;
        // RFC 9207: a server that says it names itself must, and the name must be its own.
        match query.get("iss") {
            Some(iss) if iss.trim_end_matches('/') != oauth.issuer => {
                return Err(ConnectError::Issuer(oauth.issuer.clone()));
            }
            None if server.authorization_response_iss_parameter_supported => {
                return Err(ConnectError::Issuer(oauth.issuer.clone()));
            }
            _ => {}
        }
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").cloned().unwrap_or_default();
            return Err(ConnectError::Refused(
                format!("{error} {description}").trim().to_string(),
            ));
        }
        let code = query
            .get("code")
            .ok_or_else(|| ConnectError::Refused("no authorization code".into()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", attempt.verifier.as_str()),
            ("resource", oauth.resource.as_str()),
        ];
        let tokens = self.token_request(oauth, &form).await?;
        let user: Arc<str> = Arc::from(attempt.user.as_str());
        {
            // Not while a refresh of an older connection of this account is under way.
            let gate = lock(&self.refreshing)
                .entry((attempt.upstream, user.clone()))
                .or_default()
                .clone();
            let _turn = gate.lock().await;
            self.write(attempt.upstream, &attempt.user, &tokens).await?;
        }
        let upstream = &self.names[attempt.upstream];
        tracing::info!(event = "connection.connected", upstream, user = %attempt.user, scope = ?tokens.scope, "account connected");
        self.bearer(attempt.upstream, &user)
            .replace(authorization(&tokens.access_token));
        Ok(attempt.consent)
    }

    /// One request to the service's token endpoint, with HTTP Basic client authentication.
    async fn token_request(
        &self,
        oauth: &OAuthConfig,
        form: &[(&str, &str)],
    ) -> Result<Tokens, ConnectError> {
        let server = self.server(oauth).await?;
        let secret = self.client_secret(oauth).await?;
        let (status, body) = self
            .http
            .oauth_post(&server.token_endpoint, &oauth.client_id, &secret, form)
            .await
            .map_err(|e| ConnectError::Unreachable(format!("token endpoint: {e}")))?;
        if status.is_server_error() {
            return Err(ConnectError::Unreachable(format!(
                "token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            if error == "invalid_grant" {
                return Err(ConnectError::InvalidGrant);
            }
            return Err(ConnectError::Refused(format!(
                "token endpoint answered {status}: {error}"
            )));
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let access_token = text("access_token")
            .filter(|t| authorization(t).is_some())
            .ok_or_else(|| {
                ConnectError::Refused("the token answer has no usable access_token".into())
            })?;
        if !text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
            return Err(ConnectError::Refused(
                "the token answer does not name a bearer token".into(),
            ));
        }
        let now = self.clock.now();
        // At most ten years; a lifetime that is not a number is treated as unknown.
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|s| s.clamp(0, 10 * 365 * 86_400));
        Ok(Tokens {
            access_token,
            refresh_token: text("refresh_token"),
            expires_at: lifetime.map(|s| now.saturating_add(s)),
            scope: text("scope"),
            connected_at: now,
            issued_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://auth.example.com";

    fn connections() -> Connections {
        let text = format!(
            "[identity]\nissuer = \"https://idp.example.com\"\n\
             [consent]\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [upstreams.saas]\nurl = \"https://saas.example.com/mcp\"\n\
             oauth = {{ issuer = \"{ISSUER}\", client_id = \"w\", client_secret = \"x\" }}\n"
        );
        let config = Config::from_toml(std::path::Path::new("warden.toml"), &text).unwrap();
        let c = Connections::new(
            &config,
            None,
            None,
            crate::outbound::Outbound::new(Vec::new()),
        );
        // The service's metadata, as if discovered (no network in these tests).
        let server = Server {
            issuer: ISSUER.into(),
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            revocation_endpoint: None,
            authorization_response_iss_parameter_supported: true,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
        };
        lock(&c.servers).insert(
            ISSUER.into(),
            Arc::new(OnceCell::new_with(Some(Arc::new(server)))),
        );
        c
    }

    fn attempt(c: &Connections, user: &str) -> String {
        let id = random_id();
        lock(&c.attempts).insert(
            id.clone(),
            Attempt {
                state: "the-state".into(),
                verifier: "v".into(),
                consent: "request".into(),
                upstream: 0,
                user: user.into(),
                started: Instant::now(),
            },
        );
        id
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn a_forged_answer_neither_connects_nor_cancels_the_attempt() {
        let c = connections();
        let id = attempt(&c, "alice");
        let forged = query(&[("state", "guessed"), ("code", "x"), ("iss", ISSUER)]);
        assert!(matches!(
            c.finish(&id, &forged, "alice").await,
            Err(ConnectError::State)
        ));
        assert!(lock(&c.attempts).contains_key(&id), "still there");
        // Unknown attempts and someone else's browser session.
        assert!(matches!(
            c.finish("nope", &forged, "alice").await,
            Err(ConnectError::UnknownAttempt)
        ));
        let right = query(&[("state", "the-state"), ("code", "x"), ("iss", ISSUER)]);
        assert!(matches!(
            c.finish(&id, &right, "mallory").await,
            Err(ConnectError::OtherPerson(u)) if u == "alice"
        ));
        // Used once, whatever happened.
        assert!(!lock(&c.attempts).contains_key(&id));
    }

    #[tokio::test]
    async fn the_answer_must_come_from_the_services_own_authorization_server() {
        let c = connections();
        for q in [
            query(&[
                ("state", "the-state"),
                ("code", "x"),
                ("iss", "https://evil.example"),
            ]),
            // The server says it names itself (RFC 9207), so an answer without `iss` is foreign.
            query(&[("state", "the-state"), ("code", "x")]),
        ] {
            let id = attempt(&c, "alice");
            assert!(matches!(
                c.finish(&id, &q, "alice").await,
                Err(ConnectError::Issuer(_))
            ));
        }
        let id = attempt(&c, "alice");
        let refused = query(&[
            ("state", "the-state"),
            ("iss", ISSUER),
            ("error", "access_denied"),
        ]);
        assert!(
            matches!(c.finish(&id, &refused, "alice").await, Err(ConnectError::Refused(e)) if e == "access_denied")
        );
    }

    #[test]
    fn a_token_is_refreshed_ahead_of_expiry_but_not_on_every_call() {
        let t = |issued_at, expires_at| Tokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_at: Some(expires_at),
            scope: None,
            connected_at: 0,
            issued_at,
        };
        // An hour's token: refreshed in its last `ahead` seconds.
        assert!(t(0, 3600).fresh(3000, 110));
        assert!(!t(0, 3600).fresh(3500, 110));
        // A one-minute token: refreshed in its second half, not at once.
        assert!(t(0, 60).fresh(10, 110));
        assert!(!t(0, 60).fresh(31, 110));
        assert!(t(0, 60).expired(60));
        // A lifetime the service did not give: never refreshed for expiry.
        let mut forever = t(0, 0);
        forever.expires_at = None;
        assert!(forever.fresh(i64::MAX, 110));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let c = connections();
        let shown = format!("{:?} {:?}", c.oauth(0).unwrap(), Bearer::default());
        assert!(!shown.contains("\"x\""), "{shown}");
    }
}
