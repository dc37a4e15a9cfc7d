//! RFC 8693 token exchange: the caller's verified access token, remembered per user in memory
//! while an upstream exchanges tokens, traded at the service for a token of the same user.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{ConnectError, Connections, Exchanged, REFRESH_AHEAD, authorization};
use crate::catalog::lock;
use crate::config::{Grant, OAuthConfig};
use crate::identity::{AuthMethod, Principal};
use crate::vault::Secret;

/// Remembered subjects at most; the ones closest to expiry go first.
const MAX_SUBJECTS: usize = 100_000;

impl Connections {
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
    pub(super) async fn exchange(
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
}
