//! The edge guard, in front of every route (a layer of the router; the MCP endpoint's POST, which
//! skips the router, calls [`refusal`] itself): `Host` must be one of ours and a present `Origin`
//! must be allowed (DNS-rebinding defence), before any body is read. Navigations to the consent
//! page (`GET /consent/…`) are exempt from the `Origin` check only.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{HOST, ORIGIN};

use crate::call::Refusal;
use crate::gateway::Gateway;
use warden_mcp::era::Era;

pub async fn guard(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    match refusal(&gw, &request, peer) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The edge's answer to a request it refuses, or `None` to let it through: the layer above, and
/// the MCP endpoint's own way in (see `transport::Entry`), which passes no layer.
pub fn refusal(gw: &Gateway, request: &Request, peer: Option<IpAddr>) -> Option<Response> {
    let server = &gw.config.server;
    if let (Some(limit), Some(ip)) = (&gw.limiter.per_address, peer)
        && let Err(wait) = limit.take(&ip, std::time::Instant::now())
    {
        let who = "this address".to_string();
        return Some(Refusal::Limited { who, wait }.respond(gw, Era::Legacy, None));
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name);
    if let Some(host) = host
        && !server
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    {
        return Some(Refusal::HostNotAllowed.respond_to(gw, Era::Legacy, None, peer));
    }
    // The consent page's links are followed from other sites' pages (the identity provider
    // redirects back, a chat client opens them), and browsers then send `Origin: null` or
    // none: a navigation cannot be a rebinding attack's read. Its form posts are checked.
    let navigation =
        request.method() == http::Method::GET && request.uri().path().starts_with("/consent/");
    if let Some(origin) = request.headers().get(ORIGIN).filter(|_| !navigation) {
        let origin = origin.to_str().unwrap_or_default();
        // The gateway's own origin (its consent page's forms) is always allowed.
        let own = origin.eq_ignore_ascii_case(gw.consents.origin());
        if !own
            && !origin_allowed(
                origin,
                &server.allowed_origins,
                server.listen.ip().is_loopback(),
            )
        {
            return Some(Refusal::OriginNotAllowed.respond_to(gw, Era::Legacy, None, peer));
        }
    }
    None
}

/// The host name of a `Host` header, without its port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// An Origin is allowed when it is configured, or — for a gateway on loopback — when it is itself
/// a loopback origin (a page served from this machine). A rebinding attack's page keeps its own
/// Origin, so it is refused.
pub fn origin_allowed(origin: &str, allowed: &[String], loopback: bool) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    loopback && matches!(host_name(rest), "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn only_loopback_or_configured_origins_pass() {
        let allowed = vec!["https://app.example.com".to_string()];
        assert!(origin_allowed("http://localhost:6274", &allowed, true));
        assert!(origin_allowed("http://127.0.0.1:3000", &allowed, true));
        assert!(origin_allowed("https://app.example.com", &allowed, true));
        assert!(!origin_allowed("http://evil.example", &allowed, true));
        assert!(!origin_allowed(
            "http://localhost.evil.example",
            &allowed,
            true
        ));
        assert!(!origin_allowed("null", &allowed, true));
        assert!(!origin_allowed("http://localhost:6274", &allowed, false));
    }
}
