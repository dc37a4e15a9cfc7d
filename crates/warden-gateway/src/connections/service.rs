//! The service's authorization server, as Warden's OAuth client of it: metadata (RFC 8414, then
//! OpenID discovery, through the SSRF guard), the connect attempt (code + PKCE + `resource`,
//! `iss` checked), the token endpoint, and revocation (RFC 7009).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::{ATTEMPT_TTL, ConnectError, Connections, MAX_ATTEMPTS, Tokens, authorization};
use crate::catalog::lock;
use crate::config::OAuthConfig;
use crate::consent::{CodeRequest, random_id, state_matches};
use crate::store::ConsentRequest;

/// What Warden uses of the service's authorization-server metadata.
#[derive(Deserialize)]
pub(super) struct Server {
    pub(super) issuer: String,
    pub(super) authorization_endpoint: String,
    pub(super) token_endpoint: String,
    #[serde(default)]
    pub(super) revocation_endpoint: Option<String>,
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub(super) code_challenge_methods_supported: Option<Vec<String>>,
}

pub(super) struct Attempt {
    pub(super) state: String,
    pub(super) verifier: String,
    /// The connect request this attempt completes.
    pub(super) consent: String,
    pub(super) upstream: usize,
    pub(super) user: String,
    pub(super) started: Instant,
}

impl Connections {
    pub(super) async fn revoke_at_service(
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

    /// The service's authorization-server metadata, read once per issuer.
    pub(super) async fn server(&self, oauth: &OAuthConfig) -> Result<Arc<Server>, ConnectError> {
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
        let scopes = oauth.scopes.join(" ");
        let mut extra = vec![("resource", oauth.resource.as_str())];
        if !scopes.is_empty() {
            extra.push(("scope", &scopes));
        }
        let url = CodeRequest {
            endpoint: &server.authorization_endpoint,
            client_id: &oauth.client_id,
            redirect_uri: &self.redirect_uri,
            state: &attempt.state,
            verifier: &attempt.verifier,
            extra: &extra,
        }
        .url()
        .map_err(ConnectError::Unreachable)?;
        let id = crate::consent::keep(&self.attempts, attempt, ATTEMPT_TTL, MAX_ATTEMPTS, |a| {
            a.started
        });
        Ok((url, id))
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
            if !state_matches(query, &a.state) {
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
    pub(super) async fn token_request(
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
