//! What authentication costs per request: a token seen before (the cache), a token seen for the
//! first time (a signature check, RS256 and EdDSA), and an API key. Prints figures; asserts nothing.
//!
//! cargo bench -p warden-gateway --bench auth

mod common;

use std::time::{Duration, Instant};

use common::report;

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use warden_gateway::Config;
use warden_gateway::devidp::{DevAlg, DevIdp, claims};
use warden_gateway::identity::{Identity, keys};

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii token"),
    );
    h
}

async fn time_each(identity: &Identity, tokens: &[HeaderMap]) -> Vec<Duration> {
    let mut out = Vec::with_capacity(tokens.len());
    for h in tokens {
        let start = Instant::now();
        identity
            .authenticate(None, h)
            .await
            .expect("the bench's tokens are valid");
        out.push(start.elapsed());
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let idp = DevIdp::start(
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    )
    .await
    .expect("dev idp");
    let data = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:9\"\n[identity]\nissuer = {:?}\ntoken_cache_size = 100000\n[storage]\npath = {:?}\n[outbound]\nallow = [\"127.0.0.1\"]\n",
        idp.issuer,
        data.path().display().to_string()
    );
    let config = Config::from_toml(std::path::Path::new("bench.toml"), &text).expect("config");
    let audience = config.server.public_url.clone();
    let identity = Identity::new(
        &config,
        warden_gateway::outbound::Outbound::new(config.outbound.clone()),
    )
    .await
    .expect("identity");
    let n = 2000;
    let mint = |alg: DevAlg, i: usize| {
        idp.mint_with(
            alg,
            json!({}),
            claims(
                &format!("user-{i}"),
                "agent",
                &audience,
                3600,
                json!({ "groups": ["g1", "g2"] }),
            ),
        )
    };

    // Warm the key set so the first sample does not include the JWKS fetch.
    identity
        .authenticate(None, &headers(&mint(DevAlg::Rs256, 0)))
        .await
        .expect("warm-up");

    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "authentication (µs per request)", "n", "mean", "p50", "p99", "p99.9"
    );
    let rs: Vec<HeaderMap> = (1..=n).map(|i| headers(&mint(DevAlg::Rs256, i))).collect();
    report(
        "JWT RS256, first sight (uncached)",
        time_each(&identity, &rs).await,
    );
    report(
        "JWT RS256, seen before (cached)",
        time_each(&identity, &rs).await,
    );
    let ed: Vec<HeaderMap> = (1..=n)
        .map(|i| headers(&mint(DevAlg::EdDsa, n + i)))
        .collect();
    report(
        "JWT EdDSA, first sight (uncached)",
        time_each(&identity, &ed).await,
    );
    report(
        "JWT EdDSA, seen before (cached)",
        time_each(&identity, &ed).await,
    );

    let new = keys::generate("bench", vec!["bots".into()], vec![], None);
    identity
        .store()
        .expect("store")
        .insert_key(&new.stored)
        .await
        .expect("insert key");
    let key: Vec<HeaderMap> = (0..n).map(|_| headers(&new.key)).collect();
    identity.authenticate(None, &key[0]).await.expect("key");
    report("API key", time_each(&identity, &key).await);
}
