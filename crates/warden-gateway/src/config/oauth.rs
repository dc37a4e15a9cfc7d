//! `oauth` of an HTTP upstream: each user calls it with their own account at the service's
//! authorization server, connected once on the consent page (see `crate::connections`).

use serde::Deserialize;

use super::raw::Check;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    resource: Option<String>,
    grant: Option<String>,
}

/// How Warden gets a user's token at the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The user connects their account once on the consent page (code + PKCE); tokens are kept.
    AuthorizationCode,
    /// RFC 8693: the caller's own access token is exchanged for one at the service, per call
    /// as needed; nothing is kept but the exchanged token, in memory, until it expires.
    TokenExchange,
}

/// How Warden connects a user's account at an upstream's service, as an OAuth client of it.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// The service's authorization server (its metadata is found under this issuer).
    pub issuer: String,
    pub client_id: String,
    /// A `${vault:NAME}` reference (or, not recommended, the secret itself).
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// The RFC 8707 resource indicator the tokens are for; default the upstream's URL.
    pub resource: String,
    pub grant: Grant,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("resource", &self.resource)
            .field("grant", &self.grant)
            .finish()
    }
}

pub(super) fn oauth(
    check: &mut Check,
    at: usize,
    name: &str,
    url: &str,
    raw: RawOAuth,
) -> Option<OAuthConfig> {
    let mut missing = |what: &str, value: Option<String>| {
        let value = value.filter(|v| !v.trim().is_empty());
        if value.is_none() {
            check.err(
                at,
                format!("upstream {name:?}: oauth.{what} is missing"),
                "per-user accounts need issuer, client_id and client_secret of Warden's client at the service",
            );
        }
        value
    };
    let issuer = missing("issuer", raw.issuer);
    let client_id = missing("client_id", raw.client_id);
    let client_secret = missing("client_secret", raw.client_secret);
    let (issuer, client_id, client_secret) = (issuer?, client_id?, client_secret?);
    if reqwest::Url::parse(&issuer).is_err() {
        check.err(
            at,
            format!("upstream {name:?}: oauth.issuer {issuer:?} is not a URL"),
            "write the authorization server's issuer, like \"https://auth.example.com\"",
        );
        return None;
    }
    if !client_secret.contains("${vault:") {
        tracing::warn!(
            upstream = name,
            "oauth.client_secret is written in the config file; keep it in the vault instead (${{vault:NAME}})"
        );
    }
    let grant = match raw.grant.as_deref() {
        None | Some("authorization_code") => Grant::AuthorizationCode,
        Some("token_exchange") => Grant::TokenExchange,
        Some(other) => {
            check.err(
                at,
                format!("upstream {name:?}: oauth.grant = {other:?} is not known"),
                "use \"authorization_code\" (users connect their accounts) or \"token_exchange\" (RFC 8693)",
            );
            return None;
        }
    };
    Some(OAuthConfig {
        grant,
        issuer: issuer.trim_end_matches('/').to_string(),
        client_id,
        client_secret,
        scopes: raw.scopes,
        resource: raw.resource.unwrap_or_else(|| url.to_string()),
    })
}
