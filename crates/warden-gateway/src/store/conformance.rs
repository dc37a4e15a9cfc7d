//! What every implementation of [`Store`] must do. Each check takes a fresh, empty store;
//! [`conformance!`] runs them all against one implementation: SQLite in a temporary directory,
//! and PostgreSQL in a schema of its own per test when `WARDEN_TEST_POSTGRES` names a database
//! (`postgres://postgres@127.0.0.1:5432/test`); without it the PostgreSQL runs say so and pass.

use std::sync::Arc;

use tokio::sync::Barrier;

use super::*;

const NOW: i64 = 1_000_000;

fn key(id: &str, name: &str) -> StoredKey {
    StoredKey {
        id: id.into(),
        name: name.into(),
        hash: format!("{id:0>64}"),
        groups: vec!["bots".into()],
        scopes: vec!["mcp:tools".into()],
        created_at: NOW,
        expires_at: Some(NOW + 60),
        revoked_at: None,
    }
}

fn grant(id: &str, kind: GrantKind, expires_at: i64) -> Grant {
    Grant {
        id: id.into(),
        user: "alice".into(),
        agent: Some("claude".into()),
        tool: "files.delete".into(),
        kind,
        created_at: NOW,
        expires_at,
        consumed_at: None,
    }
}

fn one_call(id: &str, expires_at: i64) -> Grant {
    let digest = "ab".repeat(32);
    grant(
        id,
        GrantKind::OneCall {
            arguments_digest: digest,
        },
        expires_at,
    )
}

pub async fn keys_round_trip(store: Arc<dyn Store>) {
    store.insert_key(&key("k1", "ci-bot")).await.unwrap();
    store.insert_key(&key("k2", "deploy-bot")).await.unwrap();
    assert_eq!(
        store.keys().await.unwrap(),
        [key("k1", "ci-bot"), key("k2", "deploy-bot")]
    );
    assert!(store.revoke_key("ci-bot", NOW + 1).await.unwrap());
    assert!(
        !store.revoke_key("ci-bot", NOW + 2).await.unwrap(),
        "already revoked"
    );
    assert!(store.revoke_key("k2", NOW + 3).await.unwrap(), "by id");
    assert!(!store.revoke_key("nobody", NOW).await.unwrap());
    let revoked: Vec<_> = store
        .keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.revoked_at)
        .collect();
    assert_eq!(revoked, [Some(NOW + 1), Some(NOW + 3)]);
}

pub async fn a_taken_key_name_is_refused_without_showing_the_hash(store: Arc<dyn Store>) {
    store.insert_key(&key("k1", "ci-bot")).await.unwrap();
    let again = key("k9", "ci-bot");
    let e = store.insert_key(&again).await.unwrap_err();
    assert!(!e.to_string().contains(&again.hash), "{e}");
    assert!(!format!("{e:?}").contains(&again.hash));
    assert!(!format!("{again:?}").contains(&again.hash));
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

pub async fn revocations_round_trip(store: Arc<dyn Store>) {
    store.revoke("user", "alice", "left", NOW).await.unwrap();
    store.revoke("agent", "rogue", "", NOW + 1).await.unwrap();
    store
        .revoke("user", "alice", "left the company", NOW + 2)
        .await
        .unwrap();
    let list = store.revocations().await.unwrap();
    let seen: Vec<_> = list
        .iter()
        .map(|r| (&*r.kind, &*r.value, &*r.reason))
        .collect();
    assert_eq!(
        seen,
        [
            ("user", "alice", "left the company"),
            ("agent", "rogue", "")
        ]
    );
    assert!(store.unrevoke("user", "alice").await.unwrap());
    assert!(!store.unrevoke("user", "alice").await.unwrap());
    assert_eq!(store.revocations().await.unwrap().len(), 1);
}

pub async fn writes_to_cached_state_change_the_generation(store: Arc<dyn Store>) {
    let start = store.generation().await.unwrap();
    assert_eq!(
        store.generation().await.unwrap(),
        start,
        "no write, no change"
    );
    store.insert_key(&key("k1", "ci-bot")).await.unwrap();
    let after_key = store.generation().await.unwrap();
    assert_ne!(after_key, start);
    store.revoke("token", "t1", "", NOW).await.unwrap();
    let after_revoke = store.generation().await.unwrap();
    assert_ne!(after_revoke, after_key);
    assert!(!store.unrevoke("token", "other").await.unwrap());
    assert_eq!(
        store.generation().await.unwrap(),
        after_revoke,
        "nothing lifted"
    );
}

pub async fn a_transaction_commits_all_or_nothing(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_key(&key("k1", "ci-bot")).await.unwrap();
    tx.revoke("user", "alice", "", NOW).await.unwrap();
    assert_eq!(
        tx.keys().await.unwrap().len(),
        1,
        "a transaction sees its writes"
    );
    drop(tx);
    assert!(
        store.keys().await.unwrap().is_empty(),
        "dropped: rolled back"
    );
    assert!(store.revocations().await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    tx.insert_key(&key("k1", "ci-bot")).await.unwrap();
    assert!(tx.insert_key(&key("k2", "ci-bot")).await.is_err());
    drop(tx);
    assert!(
        store.keys().await.unwrap().is_empty(),
        "failed half-way: none of it"
    );

    let mut tx = store.begin().await.unwrap();
    tx.insert_key(&key("k1", "ci-bot")).await.unwrap();
    tx.revoke("user", "alice", "", NOW).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.keys().await.unwrap().len(), 1);
    assert_eq!(store.revocations().await.unwrap().len(), 1);
}

pub async fn a_grant_consumed_by_concurrent_transactions_is_consumed_once(store: Arc<dyn Store>) {
    const CONSUMERS: usize = 32;
    store.insert_grant(&one_call("g1", NOW + 60)).await.unwrap();
    let barrier = Arc::new(Barrier::new(CONSUMERS));
    let tasks: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = store.begin().await.unwrap();
                let outcome = tx.consume_grant("g1", NOW).await.unwrap();
                tx.commit().await.unwrap();
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let consumed = outcomes
        .iter()
        .filter(|o| **o == ConsumeOutcome::Consumed)
        .count();
    let used = outcomes
        .iter()
        .filter(|o| **o == ConsumeOutcome::AlreadyUsed)
        .count();
    assert_eq!((consumed, used), (1, CONSUMERS - 1), "{outcomes:?}");
    assert_eq!(
        store.consume_grant("g1", NOW + 1).await.unwrap(),
        ConsumeOutcome::AlreadyUsed
    );
}

pub async fn an_expired_or_unknown_grant_cannot_be_consumed(store: Arc<dyn Store>) {
    store.insert_grant(&one_call("g1", NOW + 60)).await.unwrap();
    assert_eq!(
        store.consume_grant("g1", NOW + 60).await.unwrap(),
        ConsumeOutcome::Expired,
        "the expiry second is already too late"
    );
    assert_eq!(
        store.consume_grant("g1", NOW + 3600).await.unwrap(),
        ConsumeOutcome::Expired
    );
    assert_eq!(
        store.consume_grant("nope", NOW).await.unwrap(),
        ConsumeOutcome::NotFound
    );
    assert_eq!(
        store.consume_grant("g1", NOW + 59).await.unwrap(),
        ConsumeOutcome::Consumed,
        "a consumer with an earlier clock still may"
    );
}

pub async fn a_rolled_back_consumption_leaves_the_grant_usable(store: Arc<dyn Store>) {
    store.insert_grant(&one_call("g1", NOW + 60)).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.consume_grant("g1", NOW).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    drop(tx);
    assert_eq!(
        store.consume_grant("g1", NOW).await.unwrap(),
        ConsumeOutcome::Consumed
    );
}

pub async fn live_grants_are_those_of_the_caller_unused_and_unexpired(store: Arc<dyn Store>) {
    let standing = grant("g0", GrantKind::Standing, NOW + 600);
    let mut other_agent = one_call("g2", NOW + 60);
    other_agent.agent = None;
    let mut other_tool = one_call("g3", NOW + 60);
    other_tool.tool = "files.read".into();
    for g in [
        &standing,
        &one_call("g1", NOW + 60),
        &other_agent,
        &other_tool,
        &one_call("g4", NOW + 10),
        &one_call("g5", NOW + 60),
    ] {
        store.insert_grant(g).await.unwrap();
    }
    store.consume_grant("g5", NOW).await.unwrap();
    let ids = |list: Vec<Grant>| list.into_iter().map(|g| g.id).collect::<Vec<_>>();
    let live = store
        .live_grants("alice", Some("claude"), "files.delete", NOW + 20)
        .await
        .unwrap();
    assert_eq!(live[0], standing);
    assert_eq!(ids(live), ["g0", "g1"]);
    let without_agent = store
        .live_grants("alice", None, "files.delete", NOW)
        .await
        .unwrap();
    assert_eq!(ids(without_agent), ["g2"]);
    assert!(
        store
            .live_grants("bob", Some("claude"), "files.delete", NOW)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.consume_grant("g0", NOW + 30).await.unwrap(),
        ConsumeOutcome::Consumed,
        "a standing grant ended early"
    );
    let live = store
        .live_grants("alice", Some("claude"), "files.delete", NOW + 30)
        .await
        .unwrap();
    assert_eq!(ids(live), ["g1"]);
}

fn consent(id: &str, expires_at: i64) -> ConsentRequest {
    ConsentRequest {
        id: id.into(),
        user: "alice".into(),
        agent: Some("claude".into()),
        server: "files".into(),
        tool: "files.delete".into(),
        method: "tools/call".into(),
        arguments: r#"{"path":"/tmp/x"}"#.into(),
        arguments_digest: "ab".repeat(32),
        policies: vec!["delete-once".into()],
        max_seconds: None,
        approvers: vec!["finance-managers".into()],
        created_at: NOW,
        expires_at,
        state: ConsentState::Pending,
        decided_by: None,
        decided_at: None,
        grant_id: None,
    }
}

pub async fn consent_requests_round_trip(store: Arc<dyn Store>) {
    let asked = consent("c1", NOW + 600);
    store.insert_consent(&asked).await.unwrap();
    assert_eq!(store.consent("c1").await.unwrap(), Some(asked.clone()));
    assert_eq!(store.consent("c2").await.unwrap(), None);
    assert!(
        store.insert_consent(&asked).await.is_err(),
        "ids are unique"
    );
    let mut other = consent("c3", NOW + 600);
    other.user = "bob".into();
    store.insert_consent(&other).await.unwrap();
    store
        .insert_consent(&consent("old", NOW - 1))
        .await
        .unwrap();
    let pending = store.pending_consents("alice", NOW).await.unwrap();
    assert_eq!(pending, [asked]);
}

pub async fn a_consent_answered_concurrently_is_decided_once_with_one_grant(store: Arc<dyn Store>) {
    const ANSWERS: usize = 16;
    store
        .insert_consent(&consent("c1", NOW + 600))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(ANSWERS));
    let tasks: Vec<_> = (0..ANSWERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let answer = if i % 2 == 0 {
                    ConsentAnswer::Approve(one_call(&format!("g{i}"), NOW + 600))
                } else {
                    ConsentAnswer::Deny
                };
                store
                    .decide_consent("c1", &answer, "carol", NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let decided = outcomes
        .iter()
        .filter(|o| **o == DecideOutcome::Decided)
        .count();
    assert_eq!(decided, 1, "{outcomes:?}");
    let after = store.consent("c1").await.unwrap().unwrap();
    assert_eq!(after.decided_by.as_deref(), Some("carol"));
    let grants = store.grants(None, NOW).await.unwrap();
    match after.state {
        ConsentState::Approved => {
            assert_eq!(grants.len(), 1, "exactly the winner's grant");
            assert_eq!(after.grant_id.as_deref(), Some(grants[0].id.as_str()));
        }
        ConsentState::Denied => assert!(grants.is_empty(), "{grants:?}"),
        ConsentState::Pending => panic!("still pending"),
    }
    assert_eq!(
        store
            .decide_consent("c1", &ConsentAnswer::Deny, "dave", NOW)
            .await
            .unwrap(),
        DecideOutcome::AlreadyDecided
    );
}

pub async fn a_connect_request_completes_without_a_grant(store: Arc<dyn Store>) {
    let mut asked = consent("c1", NOW + 600);
    asked.method = crate::store::CONNECT.into();
    store.insert_consent(&asked).await.unwrap();
    let connected = ConsentAnswer::Connected {
        connection: "connection.saas".into(),
    };
    assert_eq!(
        store
            .decide_consent("c1", &connected, "alice", NOW)
            .await
            .unwrap(),
        DecideOutcome::Decided
    );
    let after = store.consent("c1").await.unwrap().unwrap();
    assert!(after.is_connect());
    assert_eq!(after.state, ConsentState::Approved);
    assert_eq!(after.grant_id.as_deref(), Some("connection.saas"));
    assert!(
        store.grants(None, NOW).await.unwrap().is_empty(),
        "no grant"
    );
}

pub async fn an_expired_or_unknown_consent_cannot_be_decided(store: Arc<dyn Store>) {
    store.insert_consent(&consent("c1", NOW)).await.unwrap();
    let approve = ConsentAnswer::Approve(one_call("g1", NOW + 600));
    assert_eq!(
        store
            .decide_consent("c1", &approve, "alice", NOW)
            .await
            .unwrap(),
        DecideOutcome::Expired
    );
    assert_eq!(
        store
            .decide_consent("nope", &approve, "alice", NOW)
            .await
            .unwrap(),
        DecideOutcome::NotFound
    );
    assert!(
        store.grants(None, NOW - 1).await.unwrap().is_empty(),
        "no grant was made"
    );
}

pub async fn grants_are_listed_per_user_and_ended_ones_purged(store: Arc<dyn Store>) {
    store.insert_grant(&one_call("g1", NOW + 60)).await.unwrap();
    let mut bobs = grant("g2", GrantKind::Standing, NOW + 60);
    bobs.user = "bob".into();
    store.insert_grant(&bobs).await.unwrap();
    store
        .insert_grant(&one_call("gone", NOW - 5))
        .await
        .unwrap();
    store
        .insert_consent(&consent("c-old", NOW - 5))
        .await
        .unwrap();
    store
        .insert_consent(&consent("c-live", NOW + 60))
        .await
        .unwrap();
    let ids = |v: Vec<Grant>| v.into_iter().map(|g| g.id).collect::<Vec<_>>();
    assert_eq!(ids(store.grants(None, NOW).await.unwrap()), ["g1", "g2"]);
    assert_eq!(ids(store.grants(Some("bob"), NOW).await.unwrap()), ["g2"]);
    // Revoking is consuming: the grant ends now.
    assert_eq!(
        store.consume_grant("g2", NOW).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    assert_eq!(ids(store.grants(None, NOW).await.unwrap()), ["g1"]);
    assert_eq!(
        store.purge_ended(NOW).await.unwrap(),
        2,
        "the expired grant and consent"
    );
    assert!(store.consent("c-live").await.unwrap().is_some());
    assert!(store.consent("c-old").await.unwrap().is_none());
}

pub async fn grant_writes_change_the_generation(store: Arc<dyn Store>) {
    let start = store.generation().await.unwrap();
    store.insert_grant(&one_call("g1", NOW + 60)).await.unwrap();
    let inserted = store.generation().await.unwrap();
    assert_ne!(inserted, start);
    store.consume_grant("g1", NOW).await.unwrap();
    assert_ne!(store.generation().await.unwrap(), inserted);
}

pub async fn the_audit_outbox_keeps_order_and_commits_with_the_action(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_key(&key("k1", "ci-bot")).await.unwrap();
    tx.queue_audit("{\"first\":1}").await.unwrap();
    tx.queue_audit("{\"second\":2}").await.unwrap();
    tx.commit().await.unwrap();
    // Rolled back with its action: queued and dropped.
    let mut tx = store.begin().await.unwrap();
    tx.queue_audit("{\"never\":0}").await.unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let queued = tx.queued_audit(10).await.unwrap();
    let texts: Vec<&str> = queued.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(texts, ["{\"first\":1}", "{\"second\":2}"]);
    assert_eq!(tx.queued_audit(1).await.unwrap().len(), 1);
    assert_eq!(tx.unqueue_audit(queued[0].0).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let left = tx.queued_audit(10).await.unwrap();
    assert_eq!(left, [queued[1].clone()]);
}

pub async fn tool_pins_record_each_definition_once_and_approve_once(store: Arc<dyn Store>) {
    let pin = |hash: &str, approved: bool| ToolPin {
        upstream: "fx".into(),
        tool: "echo".into(),
        hash: hash.into(),
        definition: format!("{{\"h\":\"{hash}\"}}"),
        flags: String::new(),
        seen_at: NOW,
        approved_at: approved.then_some(NOW),
        approved_by: approved.then(|| "first-sight".to_string()),
    };
    assert!(store.pin_tool(&pin("a", true)).await.unwrap());
    assert!(
        !store.pin_tool(&pin("a", false)).await.unwrap(),
        "seen once"
    );
    assert!(store.pin_tool(&pin("b", false)).await.unwrap());
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.approve_tool("fx", "echo", "b", "ops", NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !tx.approve_tool("fx", "echo", "b", "ops", NOW + 2)
            .await
            .unwrap(),
        "once"
    );
    assert!(
        !tx.approve_tool("fx", "echo", "zz", "ops", NOW)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let pins = store.tool_pins(Some("fx")).await.unwrap();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0], pin("a", true));
    assert_eq!(pins[1].approved_at, Some(NOW + 1));
    assert_eq!(pins[1].approved_by.as_deref(), Some("ops"));
    assert!(store.tool_pins(Some("other")).await.unwrap().is_empty());
    assert_eq!(store.tool_pins(None).await.unwrap().len(), 2);
}

pub async fn vault_rows_are_replaced_by_name_and_owner_and_change_the_generation(
    store: Arc<dyn Store>,
) {
    let row = |owner: &str, sealed: &[u8]| VaultRow {
        name: "gh".into(),
        owner: owner.into(),
        key_id: "k1".into(),
        nonce: vec![1; 12],
        sealed: sealed.to_vec(),
        created_at: NOW,
        updated_at: NOW,
    };
    let before = store.generation().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.vault_put(&row("", b"one")).await.unwrap();
    tx.vault_put(&row("alice", b"two")).await.unwrap();
    tx.vault_put(&row("", b"three")).await.unwrap();
    tx.commit().await.unwrap();
    assert_ne!(store.generation().await.unwrap(), before);
    let mut tx = store.begin().await.unwrap();
    let all = tx.vault_rows(None, None).await.unwrap();
    assert_eq!(all, [row("", b"three"), row("alice", b"two")]);
    assert_eq!(
        tx.vault_rows(Some("gh"), Some("alice")).await.unwrap(),
        [row("alice", b"two")]
    );
    assert!(tx.vault_rm("gh", "alice").await.unwrap());
    assert!(!tx.vault_rm("gh", "alice").await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.vault_rows(None, None).await.unwrap().len(), 1);
}

/// One test per check above, each with a fresh store from `$fresh` (an async fn returning a
/// guard to keep alive and the store, or `None` when the backend is not available here).
macro_rules! conformance {
    ($fresh:path) => {
        conformance!(@each $fresh;
            keys_round_trip,
            a_taken_key_name_is_refused_without_showing_the_hash,
            revocations_round_trip,
            writes_to_cached_state_change_the_generation,
            a_transaction_commits_all_or_nothing,
            a_grant_consumed_by_concurrent_transactions_is_consumed_once,
            an_expired_or_unknown_grant_cannot_be_consumed,
            a_rolled_back_consumption_leaves_the_grant_usable,
            live_grants_are_those_of_the_caller_unused_and_unexpired,
            consent_requests_round_trip,
            a_connect_request_completes_without_a_grant,
            a_consent_answered_concurrently_is_decided_once_with_one_grant,
            an_expired_or_unknown_consent_cannot_be_decided,
            grants_are_listed_per_user_and_ended_ones_purged,
            grant_writes_change_the_generation,
            the_audit_outbox_keeps_order_and_commits_with_the_action,
            tool_pins_record_each_definition_once_and_approve_once,
            vault_rows_are_replaced_by_name_and_owner_and_change_the_generation,
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some((_guard, store)) = $fresh().await else {
                    return;
                };
                super::$check(store).await;
            }
        )*
    };
}

mod sqlite {
    use std::sync::Arc;

    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    async fn fresh() -> Option<(tempfile::TempDir, Arc<dyn Store>)> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("warden.db"))
            .await
            .unwrap();
        Some((dir, Arc::new(store)))
    }

    conformance!(fresh);
}

mod postgres {
    use std::sync::Arc;

    use sqlx::postgres::PgConnectOptions;

    use crate::store::Store;
    use crate::store::postgres::PgStore;

    /// A schema made for one test, dropped when the test ends.
    pub struct Schema {
        options: PgConnectOptions,
        name: String,
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let (options, name) = (self.options.clone(), self.name.clone());
            // Drop runs inside the test's runtime, which cannot block: use a runtime of its own.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
                    let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .unwrap();
                    pool.close().await;
                });
            });
            let _ = dropped.join();
        }
    }

    async fn fresh() -> Option<(Schema, Arc<dyn Store>)> {
        let Ok(url) = std::env::var("WARDEN_TEST_POSTGRES") else {
            eprintln!("WARDEN_TEST_POSTGRES is not set: PostgreSQL not tested");
            return None;
        };
        let options: PgConnectOptions = url.parse().unwrap();
        let mut id = [0u8; 8];
        rand::fill(&mut id);
        let name = format!("warden_test_{}", hex::encode(id));
        let pool = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
        let sql = format!("CREATE SCHEMA {name}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let schema = Schema {
            options: options.clone(),
            name: name.clone(),
        };
        let store = PgStore::open(options.options([("search_path", name.as_str())]))
            .await
            .unwrap();
        Some((schema, Arc::new(store)))
    }

    conformance!(fresh);
}
