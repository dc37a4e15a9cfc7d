//! Verifying a bearer JWT: its header is checked before any key is looked up (allowed
//! algorithms only; `none`, HMAC, `jku`/`x5u`/`jwk`/`x5c` and `crit` refused), then its signature
//! against the provider's key, then `iss`, `aud`, `exp`, `nbf` and `iat` with a small leeway.

use std::str::FromStr;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::jwks::Jwks;
use super::{AuthError, AuthMethod, Principal};
use crate::config::OidcConfig;

/// Header fields that would let a token choose its own key or semantics; refused outright.
const REFUSED_HEADER_FIELDS: &[&str] = &["jku", "x5u", "jwk", "x5c", "crit"];

/// An accepted algorithm by name: asymmetric ones only.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    let alg = Algorithm::from_str(name).ok()?;
    (alg.family() != jsonwebtoken::AlgorithmFamily::Hmac).then_some(alg)
}

pub struct Verifier {
    config: OidcConfig,
    allowed: Vec<Algorithm>,
    jwks: Jwks,
}

fn invalid(reason: impl Into<String>) -> AuthError {
    AuthError::InvalidToken(reason.into())
}

impl Verifier {
    pub fn new(config: OidcConfig, http: crate::outbound::Outbound) -> Verifier {
        let allowed = config
            .algorithms
            .iter()
            .filter_map(|a| algorithm(a))
            .collect();
        let jwks = Jwks::new(
            config.issuer.clone(),
            http,
            config.jwks_min_refresh,
            config.jwks_max_age,
        );
        Verifier {
            config,
            allowed,
            jwks,
        }
    }

    /// Key ids the provider dropped since the last call (their cached tokens must go).
    pub fn take_removed_keys(&self) -> Vec<String> {
        self.jwks.take_removed()
    }

    /// Verifies a token; returns the principal and the id of the key that signed it.
    pub async fn verify(&self, token: &str) -> Result<(Principal, Option<String>), AuthError> {
        let (principal, kid, _) = self.verify_claims(token).await?;
        Ok((principal, kid))
    }

    /// [`Verifier::verify`], also returning the token's claims (an ID token's `nonce`, say).
    pub async fn verify_claims(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<String>, Map<String, Value>), AuthError> {
        let header = self.check_header(token)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let alg = algorithm(alg_name)
            .filter(|a| self.allowed.contains(a))
            .ok_or_else(|| invalid(format!("algorithm {alg_name:?} is not accepted")))?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
            Some(_) => return Err(invalid("the key id is not a short string")),
        };
        let key = self.jwks.key(kid.as_deref(), alg).await?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(reason)?;
        let claims = data.claims;
        let now = crate::store::now();
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(0);
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now + leeway)
        {
            return Err(invalid("issued in the future"));
        }
        Ok((self.principal(&claims)?, key.kid.clone(), claims))
    }

    /// The header's own checks, before any key is looked up.
    fn check_header(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a JWT (it needs three dot-separated parts)"));
        };
        let base64url = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if h.is_empty() || p.is_empty() || !base64url(h) || !base64url(p) || !base64url(s) {
            return Err(invalid("not base64url"));
        }
        if s.is_empty() {
            return Err(invalid("unsigned (no signature)"));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| invalid("header is not base64url"))?;
        let header: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| invalid("header is not a JSON object"))?;
        if let Some(field) = REFUSED_HEADER_FIELDS
            .iter()
            .find(|f| header.contains_key(**f))
        {
            return Err(invalid(format!("header field {field:?} is refused")));
        }
        match header.get("alg").and_then(Value::as_str) {
            None => Err(invalid("no algorithm")),
            Some(a) if a.eq_ignore_ascii_case("none") => {
                Err(invalid("algorithm \"none\" is refused"))
            }
            Some(_) => Ok(header),
        }
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let user = claim(claims, &self.config.user_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        let user = user.ok_or_else(|| {
            invalid(format!(
                "no {:?} claim naming the user",
                self.config.user_claim
            ))
        })?;
        let agent = self
            .config
            .agent_claims
            .iter()
            .find_map(|c| claim(claims, c).and_then(Value::as_str));
        let mut groups = Vec::new();
        for path in &self.config.group_claims {
            groups.extend(strings(claim(claims, path)));
        }
        let mut scopes = strings(claims.get("scope"));
        scopes.extend(strings(claims.get("scp")));
        Ok(Principal {
            user: user.into(),
            agent: agent.map(Into::into),
            groups: groups.into_iter().map(Into::into).collect(),
            scopes: scopes.into_iter().map(Into::into).collect(),
            token_id: claims.get("jti").and_then(Value::as_str).map(Into::into),
            expires_at: claims.get("exp").and_then(Value::as_i64),
            method: AuthMethod::Jwt,
        })
    }
}

/// A claim by dotted path, e.g. `realm_access.roles`.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = claims.get(parts.next()?)?;
    parts.try_fold(first, |v, k| v.get(k))
}

/// Strings from a claim that is an array of strings or one space-separated string.
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn reason(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    invalid(match e.kind() {
        K::ExpiredSignature => "expired".to_string(),
        K::ImmatureSignature => "not yet valid".to_string(),
        K::InvalidIssuer => "issued by another issuer".to_string(),
        K::InvalidAudience => "issued for another audience".to_string(),
        K::InvalidSignature => "bad signature".to_string(),
        K::InvalidAlgorithm => "the algorithm does not fit the key".to_string(),
        K::MissingRequiredClaim(c) => format!("missing the {c:?} claim"),
        K::InvalidClaimFormat(c) => format!("the {c:?} claim is malformed"),
        _ => "malformed".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_unknown_algorithms_are_never_accepted() {
        assert_eq!(algorithm("RS256"), Some(Algorithm::RS256));
        assert_eq!(algorithm("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(algorithm("HS256"), None);
        assert_eq!(algorithm("none"), None);
        assert_eq!(algorithm("rs256"), None);
    }

    #[test]
    fn claims_are_read_by_path_and_split() {
        let c: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "realm_access": { "roles": ["a", "b"] }, "scope": "x y", "groups": "g"
        }))
        .unwrap();
        assert_eq!(strings(claim(&c, "realm_access.roles")), vec!["a", "b"]);
        assert_eq!(strings(claim(&c, "scope")), vec!["x", "y"]);
        assert_eq!(strings(claim(&c, "groups")), vec!["g"]);
        assert!(claim(&c, "realm_access.nope").is_none());
    }
}
