//! What the consent stage costs a call that a grant already covers, with 10,000 live grants in
//! the store: the canonical form and digest of the arguments, and the grant check (the store's
//! change counter, then the in-memory grant cache). A one-call grant is also timed: using it up
//! is a write to the store, as it must be. Prints figures; asserts nothing.
//!
//! cargo bench -p warden-gateway --bench consent

use std::sync::Arc;
mod common;

use std::time::Instant;

use common::report;

use serde_json::json;
use warden_gateway::Config;
use warden_gateway::consent::{Consents, canonical};
use warden_gateway::identity::{AuthMethod, Principal};
use warden_gateway::store::{self, Grant, GrantKind};

const LIVE_GRANTS: usize = 10_000;
const SAMPLES: usize = 20_000;

fn principal(user: &str) -> Principal {
    Principal {
        user: Arc::from(user),
        agent: Some(Arc::from("bench-agent")),
        groups: Vec::new(),
        scopes: Vec::new(),
        token_id: None,
        expires_at: None,
        method: AuthMethod::Jwt,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let data = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:9\"\n[identity]\ntest_user = \"x\"\n[consent]\nclient_id = \"c\"\nclient_secret = \"s\"\nissuer = \"http://127.0.0.1:9\"\n[storage]\npath = {:?}\n",
        data.path().display().to_string()
    );
    let config = Config::from_toml(std::path::Path::new("bench.toml"), &text).expect("config");
    let db = store::open(&config.storage).await.expect("store");
    // The audit trail is on, as by default: a grant used is a record.
    let audit = std::sync::Arc::new(
        warden_gateway::audit::Audit::open(&config, &Default::default()).expect("audit"),
    );
    let consents = Consents::new(
        &config,
        Some(db.clone()),
        warden_gateway::outbound::Outbound::new(config.outbound.clone()),
        audit,
    );
    let now = store::now();
    // 10,000 live grants: standing and one-call, over 2,000 users and 5 tools.
    let mut tx = db.begin().await.expect("tx");
    for i in 0..LIVE_GRANTS {
        let kind = if i % 2 == 0 {
            GrantKind::Standing
        } else {
            GrantKind::OneCall {
                arguments_digest: format!("{i:064x}"),
            }
        };
        let grant = Grant {
            id: format!("g{i}"),
            user: format!("user-{}", i % 2000),
            agent: Some("bench-agent".into()),
            tool: format!("bank.tool{}", i % 5),
            kind,
            created_at: now,
            expires_at: now + 3600,
            consumed_at: None,
        };
        tx.insert_grant(&grant).await.expect("grant");
    }
    tx.commit().await.expect("commit");
    let arguments = json!({ "to": "DE89 3704 0044 0532 0130 00", "amount": 250.5, "memo": "invoice 2026-117", "urgent": false });
    let caller = principal("user-0");
    assert!(
        consents
            .covered(&caller, "bank.tool0", "x")
            .await
            .expect("warm")
            .is_some()
    );

    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "consent stage, µs per call", "n", "mean", "p50", "p99", "p99.9"
    );
    let mut digest = Vec::with_capacity(SAMPLES);
    let mut check = Vec::with_capacity(SAMPLES);
    let mut whole = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let d = canonical::digest(&canonical::canonical(Some(&arguments)));
        let mid = Instant::now();
        let covered = consents
            .covered(&caller, "bank.tool0", &d)
            .await
            .expect("covered");
        let end = Instant::now();
        assert!(covered.is_some());
        digest.push(mid - start);
        check.push(end - mid);
        whole.push(end - start);
    }
    report("arguments: canonical form + SHA-256", digest);
    report("grant check (standing grant, cached)", check);
    report("both: what a covered call pays", whole);

    // One-call grants: each call uses one up, a write to the store.
    let mut once = Vec::with_capacity(1000);
    for i in 0..1000 {
        let d = format!("{:064x}", 1_000_000 + i);
        let grant = Grant {
            id: format!("once-{i}"),
            user: "user-1".into(),
            agent: Some("bench-agent".into()),
            tool: "bank.once".into(),
            kind: GrantKind::OneCall {
                arguments_digest: d.clone(),
            },
            created_at: now,
            expires_at: now + 3600,
            consumed_at: None,
        };
        db.insert_grant(&grant).await.expect("grant");
        // The cache reloads after each insert: not part of the timing.
        let _ = consents
            .covered(&principal("user-1"), "bank.nothing", "x")
            .await;
        let start = Instant::now();
        let used = consents
            .covered(&principal("user-1"), "bank.once", &d)
            .await
            .expect("covered");
        once.push(start.elapsed());
        assert!(used.is_some());
    }
    report("one-call grant used up (SQLite write)", once);
}
