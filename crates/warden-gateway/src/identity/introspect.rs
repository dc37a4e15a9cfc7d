//! RFC 7662 token introspection, for providers that issue opaque access tokens: the gateway
//! asks the provider whether a token is active, authenticating itself as a client. The answer
//! is cached (by the caller) no longer than the token lives.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{AuthError, AuthMethod, Principal};
use crate::config::{Introspection, OidcConfig};

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn introspect(
    http: &crate::outbound::Outbound,
    config: &OidcConfig,
    endpoint: &Introspection,
    token: &str,
) -> Result<Principal, AuthError> {
    let response = http
        .post(&endpoint.url)
        .map_err(|e| AuthError::Unavailable(format!("introspection: {e}")))?
        .basic_auth(&endpoint.client_id, Some(&endpoint.client_secret))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| AuthError::Unavailable(format!("introspection: {}", e.without_url())))?;
    if !response.status().is_success() {
        return Err(AuthError::Unavailable(format!(
            "introspection answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let answer: Map<String, Value> = crate::outbound::read_json(response)
        .await
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| {
            AuthError::Unavailable("introspection answered with something other than JSON".into())
        })?;
    principal(config, &answer)
}

/// The principal an introspection answer describes, after the same checks a JWT gets.
fn principal(config: &OidcConfig, a: &Map<String, Value>) -> Result<Principal, AuthError> {
    let invalid = |why: &str| AuthError::InvalidToken(why.to_string());
    if a.get("active").and_then(Value::as_bool) != Some(true) {
        return Err(invalid("not active"));
    }
    let now = crate::store::now();
    let exp = a
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the provider gave no expiry"))?;
    if exp <= now {
        return Err(invalid("expired"));
    }
    if a.get("iss")
        .and_then(Value::as_str)
        .is_some_and(|iss| iss != config.issuer)
    {
        return Err(invalid("issued by another issuer"));
    }
    let audience_ok = match a.get("aud") {
        Some(Value::String(aud)) => *aud == config.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|v| v.as_str() == Some(config.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid("issued for another audience"));
    }
    let user = a
        .get(&config.user_claim)
        .or_else(|| a.get("sub"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no user"))?;
    let agent = config
        .agent_claims
        .iter()
        .find_map(|c| a.get(c).and_then(Value::as_str));
    let list = |v: Option<&Value>| -> Vec<std::sync::Arc<str>> {
        super::jwt::strings(v).into_iter().map(Into::into).collect()
    };
    Ok(Principal {
        user: user.into(),
        agent: agent.map(Into::into),
        groups: config
            .group_claims
            .iter()
            .flat_map(|c| list(a.get(c)))
            .collect(),
        scopes: list(a.get("scope")),
        token_id: a.get("jti").and_then(Value::as_str).map(Into::into),
        expires_at: Some(exp),
        method: AuthMethod::Jwt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://idp".into(),
            audience: "https://w/mcp".into(),
            algorithms: vec![],
            leeway: Duration::from_secs(0),
            user_claim: "sub".into(),
            agent_claims: vec!["client_id".into()],
            group_claims: vec!["groups".into()],
            jwks_min_refresh: Duration::from_secs(1),
            jwks_max_age: Duration::from_secs(1),
            introspection: None,
        }
    }

    #[test]
    fn only_active_unexpired_tokens_for_this_audience_pass() {
        let now = crate::store::now();
        let ok = json!({ "active": true, "sub": "alice", "client_id": "cli", "aud": ["https://w/mcp"], "exp": now + 60, "scope": "a b", "groups": ["g"] });
        let p = principal(&config(), ok.as_object().unwrap()).unwrap();
        assert_eq!(
            (&*p.user, p.agent.as_deref(), p.scopes.len(), p.groups.len()),
            ("alice", Some("cli"), 2, 1)
        );
        for (change, why) in [
            (json!({ "active": false }), "not active"),
            (json!({ "exp": now - 1 }), "expired"),
            (json!({ "exp": null }), "no expiry"),
            (json!({ "aud": "https://other/mcp" }), "another audience"),
            (json!({ "aud": null }), "another audience"),
            (json!({ "iss": "https://evil" }), "another issuer"),
        ] {
            let mut a = ok.clone();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    a.as_object_mut().unwrap().remove(k);
                } else {
                    a[k] = v.clone();
                }
            }
            let e = principal(&config(), a.as_object().unwrap()).unwrap_err();
            assert!(e.to_string().contains(why), "{change}: {e}");
        }
    }
}
