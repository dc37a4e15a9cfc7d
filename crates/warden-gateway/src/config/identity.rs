//! `[identity]`: how callers prove who they are — tokens from the organisation's OpenID provider,
//! API keys for headless agents, or (loopback only) a fixed test identity.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::raw::{Check, duration_text};
use super::{ConfigError, ServerConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    test_user: Option<String>,
    #[serde(default)]
    test_groups: Vec<String>,
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    leeway: Option<String>,
    user_claim: Option<String>,
    agent_claims: Option<Vec<String>>,
    group_claims: Option<Vec<String>>,
    scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    required_scopes: BTreeMap<String, Vec<String>>,
    jwks_min_refresh: Option<String>,
    jwks_max_age: Option<String>,
    max_token_bytes: Option<usize>,
    token_cache_size: Option<usize>,
    api_keys: Option<bool>,
    #[serde(default)]
    admin_groups: Vec<String>,
    introspection_url: Option<String>,
    introspection_client_id: Option<String>,
    introspection_client_secret: Option<String>,
}

/// Who is calling, and how that is proven.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Loopback-only test profile: every request acts as this user, unauthenticated.
    pub test: Option<TestProfile>,
    pub oidc: Option<OidcConfig>,
    /// Accept API keys created with `warden keys create`.
    pub api_keys: bool,
    /// Scopes a method (`tools/call`) or one tool (`tools/call:crm__delete`) requires.
    pub required_scopes: BTreeMap<String, Vec<String>>,
    pub scopes_supported: Vec<String>,
    /// Members of these groups may use the admin API.
    pub admin_groups: Vec<String>,
    pub token_cache_size: usize,
    pub max_token_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct TestProfile {
    pub user: String,
    pub groups: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub issuer: String,
    /// The `aud` tokens must carry: the gateway's public MCP URL unless configured.
    pub audience: String,
    pub algorithms: Vec<String>,
    pub leeway: Duration,
    pub user_claim: String,
    pub agent_claims: Vec<String>,
    pub group_claims: Vec<String>,
    pub jwks_min_refresh: Duration,
    pub jwks_max_age: Duration,
    pub introspection: Option<Introspection>,
}

/// RFC 7662 token introspection, for opaque tokens.
#[derive(Clone, Debug)]
pub struct Introspection {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Algorithms accepted unless configured: asymmetric only.
pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];
const KNOWN_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

pub(super) fn identity(
    check: &mut Check,
    raw: Option<Spanned<RawIdentity>>,
    server: &ServerConfig,
) -> IdentityConfig {
    let mut config = IdentityConfig {
        test: None,
        oidc: None,
        api_keys: false,
        required_scopes: BTreeMap::new(),
        scopes_supported: Vec::new(),
        admin_groups: Vec::new(),
        token_cache_size: 10_000,
        max_token_bytes: 16 << 10,
    };
    let Some(raw) = raw else {
        check.errors.push(ConfigError::file(
            check.file,
            "no [identity] section: Warden does not run without knowing who calls",
            "add [identity] with issuer = \"https://your-idp\" (or test_user = \"you\" for a loopback-only test profile)",
        ));
        return config;
    };
    let at = raw.span().start;
    let raw = raw.into_inner();
    config.api_keys = raw.api_keys.unwrap_or(raw.issuer.is_some());
    config.required_scopes = raw.required_scopes;
    config.admin_groups = raw.admin_groups;
    config.token_cache_size = raw.token_cache_size.unwrap_or(config.token_cache_size);
    config.max_token_bytes = raw.max_token_bytes.unwrap_or(config.max_token_bytes);
    let mut scopes: Vec<String> = raw.scopes_supported.unwrap_or_default();
    for s in config.required_scopes.values().flatten() {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    config.scopes_supported = scopes;

    if let Some(user) = raw.test_user.filter(|u| !u.is_empty()) {
        if raw.issuer.is_some() {
            check.err(
                at,
                "test_user and issuer cannot be combined: the test profile skips authentication",
                "remove test_user to verify tokens from the issuer",
            );
        }
        if !server.listen.ip().is_loopback() {
            check.err(at, format!("the test identity profile (test_user) fixes every caller's identity, so it only runs on a loopback address, not {}", server.listen), "listen on 127.0.0.1 or [::1]");
        }
        config.test = Some(TestProfile {
            user,
            groups: raw.test_groups,
        });
    }
    if let Some(issuer) = raw.issuer {
        if !(issuer.starts_with("https://") || is_loopback_http(&issuer)) {
            check.err(
                at,
                format!("issuer {issuer:?} must be an https URL (http only on loopback)"),
                "use your identity provider's https issuer URL",
            );
        }
        let algorithms = raw
            .algorithms
            .unwrap_or_else(|| DEFAULT_ALGORITHMS.iter().map(|a| a.to_string()).collect());
        for a in &algorithms {
            if !KNOWN_ALGORITHMS.contains(&a.as_str()) {
                check.err(
                    at,
                    format!(
                        "algorithm {a:?} is not accepted (symmetric algorithms and none never are)"
                    ),
                    format!("choose from {}", KNOWN_ALGORITHMS.join(", ")),
                );
            }
        }
        let introspection = match (
            raw.introspection_url,
            raw.introspection_client_id,
            raw.introspection_client_secret,
        ) {
            (None, None, None) => None,
            (Some(url), Some(client_id), Some(client_secret)) => Some(Introspection {
                url,
                client_id,
                client_secret,
            }),
            _ => {
                check.err(at, "introspection needs introspection_url, introspection_client_id and introspection_client_secret together", "set all three, or none");
                None
            }
        };
        config.oidc = Some(OidcConfig {
            issuer,
            audience: raw.audience.unwrap_or_else(|| server.public_url.clone()),
            algorithms,
            leeway: duration_text(check, at, raw.leeway.as_deref(), 30),
            user_claim: raw.user_claim.unwrap_or_else(|| "sub".into()),
            agent_claims: raw
                .agent_claims
                .unwrap_or_else(|| vec!["client_id".into(), "azp".into()]),
            group_claims: raw
                .group_claims
                .unwrap_or_else(|| vec!["groups".into(), "roles".into()]),
            jwks_min_refresh: duration_text(check, at, raw.jwks_min_refresh.as_deref(), 10),
            jwks_max_age: duration_text(check, at, raw.jwks_max_age.as_deref(), 300),
            introspection,
        });
    }
    if config.test.is_none() && config.oidc.is_none() && !config.api_keys {
        check.err(at, "[identity] names no way to identify callers", "set issuer = \"https://your-idp\", api_keys = true, or test_user = \"you\" (loopback-only test profile)");
    }
    config
}

fn is_loopback_http(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        matches!(name, "127.0.0.1" | "localhost" | "[::1]")
    })
}
