//! The consent page signs people in at the organisation's OpenID provider, as a confidential
//! client of its own (`consent.client_id`, `consent.client_secret`): authorization code with
//! PKCE (S256), `state` and `nonce`, the `iss` of the answer checked (RFC 9207), the code
//! exchanged with HTTP Basic client authentication, and the ID token verified like an access
//! token (signature by the provider's JWKS, `iss`, `aud` = the client id, `exp`, and the `nonce`
//! of this attempt).
//!
//! Both the attempt and the browser session that follows are server-side records behind random
//! ids in `__Host-` cookies (Secure, HttpOnly, SameSite=Lax, Path=/); a browser session carries
//! the person (user and groups, as the identity settings read them from the ID token) and the
//! CSRF token of its forms. Both are bounded in number and time, and kept in memory: a restart
//! signs people out, and loses no decision.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::random_id;
use crate::catalog::lock;
use crate::config::{ConsentSignIn, IdentityConfig, OidcConfig};
use crate::identity::{Principal, Verifier};

/// How long a sign-in may take at the provider.
const ATTEMPT_TTL: Duration = Duration::from_secs(600);
/// How long a browser stays signed in to the consent page.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// Bounds of the in-memory records; the oldest go first.
const MAX_ATTEMPTS: usize = 10_000;
const MAX_SESSIONS: usize = 10_000;

pub const ATTEMPT_COOKIE: &str = "__Host-warden-signin";
pub const SESSION_COOKIE: &str = "__Host-warden-consent";

struct Attempt {
    state: String,
    nonce: String,
    verifier: String,
    /// The consent request to show after signing in: an id, never a URL (no open redirect).
    consent: String,
    started: Instant,
}

/// A browser signed in to the consent page.
#[derive(Clone, Debug)]
pub struct BrowserSession {
    pub person: Principal,
    pub csrf: String,
    started: Instant,
}

#[derive(Deserialize)]
struct Endpoints {
    authorization_endpoint: String,
    token_endpoint: String,
}

pub struct SignIn {
    config: ConsentSignIn,
    verifier: Verifier,
    http: crate::outbound::Outbound,
    redirect_uri: String,
    endpoints: OnceCell<Endpoints>,
    attempts: Mutex<HashMap<String, Attempt>>,
    sessions: Mutex<HashMap<String, BrowserSession>>,
}

/// Why a sign-in did not complete. Shown to the person; never holds a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("this sign-in is unknown or took too long; open the consent link again")]
    UnknownAttempt,
    #[error("the sign-in answer does not belong to this browser's sign-in (state mismatch)")]
    State,
    #[error("the answer came from another identity provider than {0}")]
    Issuer(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's ID token is not valid: {0}")]
    IdToken(String),
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One OAuth client's request for an authorization code with PKCE (S256), as Warden makes it
/// for the consent page's sign-in and for connecting an account.
pub(crate) struct CodeRequest<'a> {
    pub endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    /// The PKCE verifier; the URL carries its challenge.
    pub verifier: &'a str,
    /// More parameters (`scope`, `nonce`, `resource` …).
    pub extra: &'a [(&'a str, &'a str)],
}

impl CodeRequest<'_> {
    /// The authorization URL to send the browser to; the error says what is wrong with the
    /// endpoint.
    pub fn url(&self) -> Result<String, String> {
        let mut url = reqwest::Url::parse(self.endpoint)
            .map_err(|e| format!("authorization endpoint: {e}"))?;
        let challenge = b64(&Sha256::digest(self.verifier.as_bytes()));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("state", self.state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .extend_pairs(self.extra);
        Ok(url.to_string())
    }
}

/// Whether the `state` of an authorization response is `expected`, compared in constant time.
pub(crate) fn state_matches(query: &HashMap<String, String>, expected: &str) -> bool {
    let state = query.get("state").map(String::as_str).unwrap_or_default();
    bool::from(subtle::ConstantTimeEq::ct_eq(
        state.as_bytes(),
        expected.as_bytes(),
    ))
}

/// Inserts into a bounded record map under a new random id, which it returns: entries older than
/// `ttl` go first, then the oldest one if the map is still full.
pub(crate) fn keep<T>(
    map: &Mutex<HashMap<String, T>>,
    value: T,
    ttl: Duration,
    max: usize,
    started: impl Fn(&T) -> Instant,
) -> String {
    let id = random_id();
    let mut map = lock(map);
    map.retain(|_, v| started(v).elapsed() < ttl);
    if map.len() >= max
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| started(v))
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(id.clone(), value);
    id
}

impl SignIn {
    pub fn new(
        config: ConsentSignIn,
        identity: &IdentityConfig,
        origin: &str,
        http: crate::outbound::Outbound,
    ) -> SignIn {
        // The ID token is read with the identity settings (user and group claims), but it is
        // addressed to the consent client.
        let base = identity.oidc.clone();
        let oidc = OidcConfig {
            issuer: config.issuer.clone(),
            audience: config.client_id.clone(),
            algorithms: base.as_ref().map_or_else(
                || {
                    crate::config::DEFAULT_ALGORITHMS
                        .iter()
                        .map(|a| a.to_string())
                        .collect()
                },
                |b| b.algorithms.clone(),
            ),
            leeway: base.as_ref().map_or(Duration::from_secs(60), |b| b.leeway),
            user_claim: base
                .as_ref()
                .map_or_else(|| "sub".into(), |b| b.user_claim.clone()),
            agent_claims: Vec::new(),
            group_claims: base
                .as_ref()
                .map_or_else(|| vec!["groups".into()], |b| b.group_claims.clone()),
            jwks_min_refresh: base
                .as_ref()
                .map_or(Duration::from_secs(30), |b| b.jwks_min_refresh),
            jwks_max_age: base
                .as_ref()
                .map_or(Duration::from_secs(3600), |b| b.jwks_max_age),
            introspection: None,
        };
        SignIn {
            verifier: Verifier::new(oidc, http.clone()),
            redirect_uri: format!("{origin}/consent/callback"),
            config,
            http,
            endpoints: OnceCell::new(),
            attempts: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    async fn endpoints(&self) -> Result<&Endpoints, SignInError> {
        self.endpoints
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let response = self
                    .http
                    .get(&url)
                    .map_err(SignInError::Unreachable)?
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| SignInError::Unreachable(e.without_url().to_string()))?;
                if !response.status().is_success() {
                    return Err(SignInError::Unreachable(format!(
                        "its discovery document answered {}",
                        response.status()
                    )));
                }
                let doc = crate::outbound::read_json(response)
                    .await
                    .map_err(|e| SignInError::Unreachable(format!("discovery document: {e}")))?;
                serde_json::from_value::<Endpoints>(doc)
                    .map_err(|e| SignInError::Unreachable(format!("discovery document: {e}")))
            })
            .await
    }

    /// Starts a sign-in that ends on consent request `consent`: the provider's authorization URL
    /// and the attempt id for its cookie.
    pub async fn begin(&self, consent: &str) -> Result<(String, String), SignInError> {
        let endpoints = self.endpoints().await?;
        let attempt = Attempt {
            state: random_id(),
            nonce: random_id(),
            verifier: format!("{}{}", random_id(), random_id()),
            consent: consent.to_string(),
            started: Instant::now(),
        };
        let url = CodeRequest {
            endpoint: &endpoints.authorization_endpoint,
            client_id: &self.config.client_id,
            redirect_uri: &self.redirect_uri,
            state: &attempt.state,
            verifier: &attempt.verifier,
            extra: &[("scope", "openid"), ("nonce", &attempt.nonce)],
        }
        .url()
        .map_err(SignInError::Unreachable)?;
        let id = keep(&self.attempts, attempt, ATTEMPT_TTL, MAX_ATTEMPTS, |a| {
            a.started
        });
        Ok((url, id))
    }

    /// Completes a sign-in from the provider's redirect: the new browser session's id and the
    /// consent request to show.
    pub async fn finish(
        &self,
        attempt_id: &str,
        query: &HashMap<String, String>,
    ) -> Result<(String, String), SignInError> {
        // An attempt is used once, whatever happens next.
        let attempt = lock(&self.attempts)
            .remove(attempt_id)
            .filter(|a| a.started.elapsed() < ATTEMPT_TTL)
            .ok_or(SignInError::UnknownAttempt)?;
        if !state_matches(query, &attempt.state) {
            return Err(SignInError::State);
        }
        // RFC 9207: when the provider names itself, it must be ours.
        if let Some(iss) = query.get("iss")
            && iss.trim_end_matches('/') != self.config.issuer.trim_end_matches('/')
        {
            return Err(SignInError::Issuer(self.config.issuer.clone()));
        }
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").cloned().unwrap_or_default();
            return Err(SignInError::Refused(
                format!("{error} {description}").trim().to_string(),
            ));
        }
        let code = query
            .get("code")
            .ok_or_else(|| SignInError::Refused("no authorization code".into()))?;
        let endpoints = self.endpoints().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", attempt.verifier.as_str()),
        ];
        let (status, body) = self
            .http
            .oauth_post(
                &endpoints.token_endpoint,
                &self.config.client_id,
                &self.config.client_secret,
                &form,
            )
            .await
            .map_err(|e| SignInError::Unreachable(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            return Err(SignInError::Refused(format!(
                "token endpoint answered {status}: {error}"
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SignInError::IdToken("the token answer has no id_token".into()))?;
        let (person, _, claims) = self
            .verifier
            .verify_claims(id_token)
            .await
            .map_err(|e| SignInError::IdToken(e.to_string()))?;
        let nonce = claims
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            nonce.as_bytes(),
            attempt.nonce.as_bytes(),
        )) {
            return Err(SignInError::IdToken(
                "its nonce is not this sign-in's".into(),
            ));
        }
        tracing::info!(event = "consent.signed_in", user = %person.user, "signed in to the consent page");
        let session = BrowserSession {
            person,
            csrf: random_id(),
            started: Instant::now(),
        };
        let id = keep(&self.sessions, session, SESSION_TTL, MAX_SESSIONS, |s| {
            s.started
        });
        Ok((id, attempt.consent))
    }

    /// The browser session behind a cookie value, if it is live.
    pub fn session(&self, id: &str) -> Option<BrowserSession> {
        lock(&self.sessions)
            .get(id)
            .filter(|s| s.started.elapsed() < SESSION_TTL)
            .cloned()
    }
}
