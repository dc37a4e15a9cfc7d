//! The SSRF guard of every fetch Warden makes on its own behalf for metadata — OpenID discovery,
//! JWKS, authorization-server metadata, token introspection, the consent page's token exchange.
//! A URL in configuration or in a fetched document must not turn Warden into a way into the
//! internal network, so:
//!
//! - **https only**, except for hosts on the allow-list (`[outbound] allow`);
//! - **no private destinations**: loopback, private (RFC 1918), link-local, unique-local,
//!   shared (100.64/10), unspecified and multicast addresses are refused — as IP literals in a URL,
//!   and as what a DNS name resolves to (the resolver drops them, so a name that resolves only to
//!   such addresses fails) — unless the host or address is allow-listed;
//! - **redirects re-checked**: every hop is put to the same rules, at most 5 of them;
//! - **bounded**: 10 s per request, 5 s to connect, and a response body of at most 1 MiB
//!   ([`read_json`]).
//!
//! Tests and `warden dev`, whose identity providers live on loopback, allow-list `127.0.0.1`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;

/// The largest metadata document read.
pub const MAX_BODY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 5;

/// One allow-list entry: a host name, an address, or a network in CIDR form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    Host(String),
    Net(IpAddr, u8),
}

impl Allowed {
    pub fn parse(text: &str) -> Result<Allowed, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        match (addr.parse::<IpAddr>(), bits) {
            (Ok(ip), None) => Ok(Allowed::Net(ip, if ip.is_ipv4() { 32 } else { 128 })),
            (Ok(ip), Some(b)) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                match b.parse::<u8>() {
                    Ok(n) if n <= max => Ok(Allowed::Net(ip, n)),
                    _ => Err(format!("{text:?}: the prefix length must be 0–{max}")),
                }
            }
            (Err(_), None) if !text.is_empty() && !text.contains(['/', ':', ' ']) => {
                Ok(Allowed::Host(text.to_ascii_lowercase()))
            }
            _ => Err(format!("{text:?} is not a host, an address or a network")),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let Allowed::Net(net, bits) = self else {
            return false;
        };
        match (net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Whether an address is one Warden may fetch from without an allow-list entry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The rules, shared by the client's resolver and redirect policy.
#[derive(Debug, Default)]
pub struct Guard {
    allow: Vec<Allowed>,
}

impl Guard {
    pub fn new(allow: Vec<Allowed>) -> Guard {
        Guard { allow }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        match host.parse::<IpAddr>() {
            Ok(ip) => self.allow.iter().any(|a| a.contains(ip)),
            Err(_) => self.allow.contains(&Allowed::Host(host)),
        }
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|a| a.contains(ip))
    }

    /// Checks a URL before Warden fetches it (and each redirect's target).
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?;
        let allowed = self.host_allowed(host);
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            scheme => {
                return Err(format!(
                    "{url}: {scheme} is refused for metadata (https only, unless [outbound] allow lists the host)"
                ));
            }
        }
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
            && !self.ip_allowed(ip)
        {
            return Err(format!(
                "{url}: {ip} is a private, loopback or link-local address; add it to [outbound] allow to reach it"
            ));
        }
        Ok(())
    }

    /// A client for metadata fetches that applies these rules to every connection.
    pub fn client(self: &Arc<Self>) -> reqwest::Client {
        let guard = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match guard.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        });
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(redirects)
            .dns_resolver(Arc::new(Resolver(self.clone())))
            .build()
            .unwrap_or_default()
    }
}

/// Resolves names and drops the addresses the guard refuses.
struct Resolver(Arc<Guard>);

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = guard.host_allowed(&host);
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| by_name || guard.ip_allowed(a.ip()))
                .collect();
            if kept.is_empty() {
                let why = format!(
                    "{host} resolves only to private, loopback or link-local addresses; add it to [outbound] allow to reach it"
                );
                return Err(why.into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes.
pub async fn read_json(response: reqwest::Response) -> Result<Value, String> {
    let body = read_body(response).await?;
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

/// Reads a body of at most [`MAX_BODY`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("the response is larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str]) -> Guard {
        Guard::new(allow.iter().map(|a| Allowed::parse(a).unwrap()).collect())
    }

    #[test]
    fn private_and_plain_http_destinations_are_refused_unless_allowed() {
        let g = guard(&[]);
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(
            g.check(&url("https://login.example.com/.well-known/x"))
                .is_ok()
        );
        for bad in [
            "http://login.example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert!(g.check(&url(bad)).is_err(), "{bad} passed");
        }
        let g = guard(&["127.0.0.1", "10.0.0.0/8", "idp.internal"]);
        assert!(g.check(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(g.check(&url("https://10.9.9.9/")).is_ok());
        assert!(g.check(&url("http://idp.internal/")).is_ok());
        assert!(g.check(&url("https://192.168.1.1/")).is_err());
        assert!(Allowed::parse("10.0.0.0/33").is_err());
        assert!(Allowed::parse("").is_err());
    }

    /// A loopback server: `/redirect` sends to `target`, `/big` answers 2 MiB, `/` answers `{}`.
    async fn server(target: String) -> String {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/", get(|| async { "{}" }))
            .route("/big", get(|| async { "x".repeat(2 << 20) }))
            .route(
                "/redirect",
                get(move || async move { axum::response::Redirect::temporary(&target) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn fetch(out: &Outbound, url: &str) -> Result<Value, String> {
        let response = out.get(url)?.send().await.map_err(|e| format!("{e:?}"))?;
        read_json(response).await
    }

    #[tokio::test]
    async fn ssrf_attempts_are_refused() {
        let base = server(String::new()).await;
        let port = base.rsplit(':').next().unwrap().to_string();
        // A private address, without an allow-list entry.
        let e = fetch(&Outbound::new(Vec::new()), &format!("{base}/"))
            .await
            .unwrap_err();
        assert!(e.contains("[outbound] allow"), "{e}");
        // Allowed, it answers.
        let allowed = Outbound::new(vec![Allowed::parse("127.0.0.1").unwrap()]);
        assert_eq!(
            fetch(&allowed, &format!("{base}/")).await.unwrap(),
            serde_json::json!({})
        );
        // A redirect from an allowed host to a loopback address that is not allowed.
        let hop = server(format!("http://127.0.0.2:{port}/")).await;
        let e = fetch(&allowed, &format!("{hop}/redirect"))
            .await
            .unwrap_err();
        assert!(e.contains("127.0.0.2"), "{e}");
        // A name that resolves to loopback, over https: the resolver refuses it.
        let e = fetch(
            &Outbound::new(Vec::new()),
            &format!("https://localhost:{port}/"),
        )
        .await
        .unwrap_err();
        assert!(e.contains("resolves only to private"), "{e}");
        // A body over the bound.
        let e = fetch(&allowed, &format!("{base}/big")).await.unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let g = Arc::new(guard(&[]));
        let r = Resolver(g.clone());
        let e = r
            .resolve("localhost".parse::<Name>().unwrap())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("resolves only to private"), "{e}");
        let allowed = Arc::new(guard(&["localhost"]));
        assert!(
            Resolver(allowed)
                .resolve("localhost".parse::<Name>().unwrap())
                .await
                .is_ok()
        );
    }
}

/// The client of metadata fetches and its guard: every request is checked before it is sent.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    guard: Arc<Guard>,
}

impl Outbound {
    pub fn new(allow: Vec<Allowed>) -> Outbound {
        let guard = Arc::new(Guard::new(allow));
        Outbound {
            client: guard.client(),
            guard,
        }
    }

    fn checked(&self, url: &str) -> Result<Url, String> {
        let url = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        self.guard.check(&url)?;
        Ok(url)
    }

    /// A GET of `url`, if the guard lets it through.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        Ok(self.client.get(self.checked(url)?))
    }

    /// A POST to `url`, if the guard lets it through.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        Ok(self.client.post(self.checked(url)?))
    }

    /// `form` POSTed to an OAuth endpoint (token, revocation) as client `client_id` with HTTP
    /// Basic authentication, within 10 s: the status and the JSON answer (`null` when the body
    /// is empty). The error says why nothing usable came back, never holding a form value.
    pub async fn oauth_post(
        &self,
        url: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let response = self
            .post(url)?
            .basic_auth(client_id, Some(secret))
            .form(form)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let body = read_body(response).await?;
        if body.is_empty() {
            return Ok((status, Value::Null));
        }
        let json = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        Ok((status, json))
    }
}
