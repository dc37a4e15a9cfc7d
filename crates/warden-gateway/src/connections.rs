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
//! Authorization-server metadata is found by RFC 8414 (then OpenID discovery) through the SSRF
//! guard, like every metadata fetch; its `issuer` must be the configured one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use zeroize::Zeroize;

use crate::config::{Config, OAuthConfig};
use crate::consent::{Clock, random_id};
use crate::store::{ConsentRequest, Store, StoreError};
use crate::vault::{Vault, VaultError};

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

/// The access token a user's links to an upstream send, kept fresh by the connect stage.
#[derive(Default)]
pub struct Bearer(RwLock<Option<HeaderValue>>);

impl Bearer {
    /// The `Authorization` value, while the user is connected.
    pub fn header(&self) -> Option<HeaderValue> {
        crate::catalog::read(&self.0).clone()
    }

    fn set(&self, token: Option<&str>) {
        let value = token.and_then(|t| {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        if *crate::catalog::read(&self.0) != value {
            *crate::catalog::write(&self.0) = value;
        }
    }
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
    fn fresh(&self, now: i64, ahead: i64) -> bool {
        self.expires_at.is_none_or(|at| at - ahead > now)
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
                    Some(t) => self.refresh(index, oauth, user, t).await?,
                    None => None,
                }
            }
        };
        bearer.set(tokens.as_ref().map(|t| t.access_token.as_str()));
        Ok(tokens.is_some())
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
            Err(ConnectError::Refused(why)) => {
                tracing::info!(
                    event = "connection.refresh_refused",
                    upstream,
                    user,
                    why,
                    "the service refused to refresh; the user is asked to connect again"
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
            b.set(None);
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
        let response = self
            .http
            .post(endpoint)
            .map_err(ConnectError::Unreachable)?
            .basic_auth(&oauth.client_id, Some(secret.as_str()))
            .form(&[("token", token), ("token_type_hint", hint)])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(e.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ConnectError::Refused(format!(
                "revocation answered {}",
                response.status()
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
        let attempt = lock(&self.attempts)
            .remove(attempt_id)
            .filter(|a| a.started.elapsed() < ATTEMPT_TTL)
            .ok_or(ConnectError::UnknownAttempt)?;
        let state = query.get("state").map(String::as_str).unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            state.as_bytes(),
            attempt.state.as_bytes(),
        )) {
            return Err(ConnectError::State);
        }
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
        self.write(attempt.upstream, &attempt.user, &tokens).await?;
        let upstream = &self.names[attempt.upstream];
        tracing::info!(event = "connection.connected", upstream, user = %attempt.user, scope = ?tokens.scope, "account connected");
        let user: Arc<str> = Arc::from(attempt.user.as_str());
        self.bearer(attempt.upstream, &user)
            .set(Some(&tokens.access_token));
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
        let response = self
            .http
            .post(&server.token_endpoint)
            .map_err(ConnectError::Unreachable)?
            .basic_auth(&oauth.client_id, Some(secret.as_str()))
            .form(form)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = crate::outbound::read_json(response)
            .await
            .map_err(|e| ConnectError::Unreachable(format!("token endpoint: {e}")))?;
        if status.is_server_error() {
            return Err(ConnectError::Unreachable(format!(
                "token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            return Err(ConnectError::Refused(format!(
                "token endpoint answered {status}: {error}"
            )));
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let access_token = text("access_token")
            .ok_or_else(|| ConnectError::Refused("the token answer has no access_token".into()))?;
        if text("token_type").is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(ConnectError::Refused(
                "the token is not a bearer token".into(),
            ));
        }
        let now = self.clock.now();
        Ok(Tokens {
            access_token,
            refresh_token: text("refresh_token"),
            expires_at: body
                .get("expires_in")
                .and_then(Value::as_i64)
                .map(|s| now + s),
            scope: text("scope"),
            connected_at: now,
        })
    }
}
