//! The `WWW-Authenticate` challenges and the protected resource metadata (RFC 9728) that let a
//! client find the identity provider from a 401.

use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::AuthError;

pub struct Challenge {
    resource: String,
    metadata_url: String,
    metadata_path: String,
    scopes: Vec<String>,
}

impl Challenge {
    pub fn new(public_url: &str, scopes: &[String]) -> Challenge {
        let (origin, path) = split_url(public_url);
        let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
        Challenge {
            resource: public_url.to_string(),
            metadata_url: format!("{origin}{metadata_path}"),
            metadata_path,
            scopes: scopes.to_vec(),
        }
    }

    /// The paths the metadata is served at: path-inserted (RFC 9728) and at the root.
    pub fn metadata_paths(&self) -> [&str; 2] {
        ["/.well-known/oauth-protected-resource", &self.metadata_path]
    }

    pub fn metadata(&self, issuer: &str) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [issuer],
            "scopes_supported": self.scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Warden MCP gateway",
        })
    }

    /// The status and `WWW-Authenticate` value for a refusal.
    pub fn answer(&self, e: &AuthError) -> (StatusCode, HeaderValue) {
        let mut parts = vec![format!("resource_metadata=\"{}\"", self.metadata_url)];
        let status = match e {
            AuthError::InsufficientScope(needed) => {
                parts.insert(0, "error=\"insufficient_scope\"".into());
                parts.push(format!("scope=\"{}\"", needed.join(" ")));
                StatusCode::FORBIDDEN
            }
            AuthError::Unavailable(_) | AuthError::StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            other => {
                if !self.scopes.is_empty() {
                    parts.push(format!("scope=\"{}\"", self.scopes.join(" ")));
                }
                let code = match other {
                    AuthError::Missing => None,
                    AuthError::InvalidRequest(_) => Some("invalid_request"),
                    _ => Some("invalid_token"),
                };
                if let Some(code) = code {
                    parts.insert(0, format!("error=\"{code}\""));
                    parts.push(format!(
                        "error_description=\"{}\"",
                        quote_safe(&other.to_string())
                    ));
                }
                StatusCode::UNAUTHORIZED
            }
        };
        let value = format!("Bearer {}", parts.join(", "));
        (
            status,
            HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        )
    }
}

fn quote_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect()
}

/// `("https://host:port", "/path")` of an absolute URL.
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        let c = Challenge::new("https://warden.example.com/mcp", &["mcp:tools".into()]);
        assert_eq!(
            c.metadata_paths()[1],
            "/.well-known/oauth-protected-resource/mcp"
        );
        let (status, v) = c.answer(&AuthError::Missing);
        assert_eq!(status, 401);
        assert_eq!(
            v,
            "Bearer resource_metadata=\"https://warden.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
        );
        let (status, v) = c.answer(&AuthError::InsufficientScope(vec!["mcp:admin".into()]));
        assert_eq!(status, 403);
        assert!(
            v.to_str()
                .unwrap()
                .starts_with("Bearer error=\"insufficient_scope\"")
        );
        assert!(v.to_str().unwrap().contains("scope=\"mcp:admin\""));
        let (_, v) = c.answer(&AuthError::InvalidToken("expired \"x\"".into()));
        assert!(v.to_str().unwrap().contains("error=\"invalid_token\""));
        assert!(
            v.to_str()
                .unwrap()
                .contains("error_description=\"invalid token: expired x\"")
        );
    }
}
