use std::collections::HashMap;
use std::time::Instant;

use super::*;
use crate::consent::random_id;

const ISSUER: &str = "https://auth.example.com";

fn connections() -> Connections {
    let text = format!(
        "[identity]\nissuer = \"https://idp.example.com\"\n\
         [consent]\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         [upstreams.saas]\nurl = \"https://saas.example.com/mcp\"\n\
         oauth = {{ issuer = \"{ISSUER}\", client_id = \"w\", client_secret = \"x\" }}\n"
    );
    let config = Config::from_toml(std::path::Path::new("warden.toml"), &text).unwrap();
    let c = Connections::new(
        &config,
        None,
        None,
        crate::outbound::Outbound::new(Vec::new()),
    );
    // The service's metadata, as if discovered (no network in these tests).
    let server = Server {
        issuer: ISSUER.into(),
        authorization_endpoint: format!("{ISSUER}/authorize"),
        token_endpoint: format!("{ISSUER}/token"),
        revocation_endpoint: None,
        authorization_response_iss_parameter_supported: true,
        code_challenge_methods_supported: Some(vec!["S256".into()]),
    };
    lock(&c.servers).insert(
        ISSUER.into(),
        Arc::new(OnceCell::new_with(Some(Arc::new(server)))),
    );
    c
}

fn attempt(c: &Connections, user: &str) -> String {
    let id = random_id();
    lock(&c.attempts).insert(
        id.clone(),
        Attempt {
            state: "the-state".into(),
            verifier: "v".into(),
            consent: "request".into(),
            upstream: 0,
            user: user.into(),
            started: Instant::now(),
        },
    );
    id
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_forged_answer_neither_connects_nor_cancels_the_attempt() {
    let c = connections();
    let id = attempt(&c, "alice");
    let forged = query(&[("state", "guessed"), ("code", "x"), ("iss", ISSUER)]);
    assert!(matches!(
        c.finish(&id, &forged, "alice").await,
        Err(ConnectError::State)
    ));
    assert!(lock(&c.attempts).contains_key(&id), "still there");
    // Unknown attempts and someone else's browser session.
    assert!(matches!(
        c.finish("nope", &forged, "alice").await,
        Err(ConnectError::UnknownAttempt)
    ));
    let right = query(&[("state", "the-state"), ("code", "x"), ("iss", ISSUER)]);
    assert!(matches!(
        c.finish(&id, &right, "mallory").await,
        Err(ConnectError::OtherPerson(u)) if u == "alice"
    ));
    // Used once, whatever happened.
    assert!(!lock(&c.attempts).contains_key(&id));
}

#[tokio::test]
async fn the_answer_must_come_from_the_services_own_authorization_server() {
    let c = connections();
    for q in [
        query(&[
            ("state", "the-state"),
            ("code", "x"),
            ("iss", "https://evil.example"),
        ]),
        // The server says it names itself (RFC 9207), so an answer without `iss` is foreign.
        query(&[("state", "the-state"), ("code", "x")]),
    ] {
        let id = attempt(&c, "alice");
        assert!(matches!(
            c.finish(&id, &q, "alice").await,
            Err(ConnectError::Issuer(_))
        ));
    }
    let id = attempt(&c, "alice");
    let refused = query(&[
        ("state", "the-state"),
        ("iss", ISSUER),
        ("error", "access_denied"),
    ]);
    assert!(
        matches!(c.finish(&id, &refused, "alice").await, Err(ConnectError::Refused(e)) if e == "access_denied")
    );
}

#[test]
fn a_token_is_refreshed_ahead_of_expiry_but_not_on_every_call() {
    let t = |issued_at, expires_at| Tokens {
        access_token: "a".into(),
        refresh_token: None,
        expires_at: Some(expires_at),
        scope: None,
        connected_at: 0,
        issued_at,
    };
    // An hour's token: refreshed in its last `ahead` seconds.
    assert!(t(0, 3600).fresh(3000, 110));
    assert!(!t(0, 3600).fresh(3500, 110));
    // A one-minute token: refreshed in its second half, not at once.
    assert!(t(0, 60).fresh(10, 110));
    assert!(!t(0, 60).fresh(31, 110));
    assert!(t(0, 60).expired(60));
    // A lifetime the service did not give: never refreshed for expiry.
    let mut forever = t(0, 0);
    forever.expires_at = None;
    assert!(forever.fresh(i64::MAX, 110));
}

#[test]
fn debug_output_holds_no_secret() {
    let c = connections();
    let shown = format!("{:?} {:?}", c.oauth(0).unwrap(), Bearer::default());
    assert!(!shown.contains("\"x\""), "{shown}");
}
