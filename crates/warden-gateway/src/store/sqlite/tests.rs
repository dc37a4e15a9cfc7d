//! What only the SQLite store does: its file, its migrations, other processes' writes.

use std::path::Path;
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use super::SqliteStore;
use super::schema::MIGRATIONS;
use crate::store::{Store, StoreError};

async fn raw(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

async fn versions(path: &Path) -> Vec<(i64, String)> {
    let pool = raw(path).await;
    let rows = sqlx::query("SELECT version, name FROM schema_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

#[test]
fn migrations_are_numbered_one_two_three_in_order() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "{}", m.name);
    }
}

#[tokio::test]
async fn a_fresh_store_records_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/warden.db");
    let store = SqliteStore::open(&path).await.unwrap();
    drop(store);
    let recorded = versions(&path).await;
    let expected: Vec<_> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_string()))
        .collect();
    assert_eq!(recorded, expected);
    SqliteStore::open(&path).await.unwrap();
    assert_eq!(versions(&path).await, expected, "reopening applies nothing");
}

#[tokio::test]
async fn a_store_from_before_versions_upgrades_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let old = raw(&path).await;
    // The schema and rows as the previous Warden wrote them.
    for statement in [
        "CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
            groups_json TEXT NOT NULL, scopes_json TEXT NOT NULL,
            created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER)",
        "CREATE TABLE IF NOT EXISTS revocations (
            kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL,
            PRIMARY KEY (kind, value))",
        "INSERT INTO api_keys VALUES ('k1', 'ci-bot', 'aa', '[\"bots\"]', '[]', 10, NULL, NULL)",
        "INSERT INTO revocations VALUES ('user', 'mallory', 'left', 11)",
    ] {
        sqlx::query(statement).execute(&old).await.unwrap();
    }
    old.close().await;

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (&*keys[0].name, &keys[0].groups[..]),
        ("ci-bot", &["bots".to_string()][..])
    );
    let revocations = store.revocations().await.unwrap();
    assert_eq!(
        (&*revocations[0].value, revocations[0].created_at),
        ("mallory", 11)
    );
    let before = store.generation().await.unwrap();
    store.revoke("user", "eve", "", 12).await.unwrap();
    assert_ne!(store.generation().await.unwrap(), before);
    drop(store);
    assert_eq!(versions(&path).await.len() as i64, latest());
}

#[tokio::test]
async fn a_store_from_a_newer_warden_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let pool = raw(&path).await;
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
    )
    .bind(latest() + 1)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let e = SqliteStore::open(&path).await.unwrap_err();
    match &e {
        StoreError::TooNew { found, known, .. } => {
            assert_eq!((*found, *known), (latest() + 1, latest()));
        }
        other => panic!("expected TooNew, got {other}"),
    }
    let text = e.to_string();
    assert!(
        text.contains(&format!("version {}", latest() + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("the {} this Warden knows", latest())),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[tokio::test]
async fn another_handle_sees_each_commit_in_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let gateway: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let cli: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut seen = gateway.generation().await.unwrap();
    for i in 0..20 {
        cli.revoke("token", &format!("t{i}"), "", i).await.unwrap();
        let now = gateway.generation().await.unwrap();
        assert_ne!(now, seen, "write {i} unseen");
        assert_eq!(gateway.generation().await.unwrap(), now);
        seen = now;
    }
}

/// The gateway reads the WAL index through a descriptor it opened at start. Every connection
/// but its own pinned one closes here — its pool, and each writer after its write, as a CLI
/// process would — so a writer would be the last to close (deleting the index, the next one
/// creating a new file) if the store did not keep a connection open: the held descriptor would
/// then show no change again.
#[tokio::test]
async fn writers_that_close_after_each_write_are_seen_with_the_pool_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let gateway = SqliteStore::open(&path).await.unwrap();
    assert!(gateway.index.is_some(), "the index is held");
    gateway.pool.close().await;
    let mut seen = gateway.generation().await.unwrap();
    for i in 0..5 {
        let cli = SqliteStore::open(&path).await.unwrap();
        (&cli as &dyn Store)
            .revoke("token", &format!("t{i}"), "", i)
            .await
            .unwrap();
        cli.close().await;
        let now = gateway.generation().await.unwrap();
        assert_ne!(now, seen, "write {i} unseen");
        assert_eq!(gateway.generation().await.unwrap(), now);
        seen = now;
    }
}

/// The connection the store keeps open must not hold a read transaction after reading the
/// counter: one would keep every later commit in the WAL (no checkpoint could reset it).
#[tokio::test]
async fn the_held_connection_keeps_no_snapshot_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let before = store.generation().await.unwrap();
    // Told "busy" at once rather than after waiting for the reader.
    let other = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(std::time::Duration::ZERO),
        )
        .await
        .unwrap();
    for i in 0..3 {
        (&store as &dyn Store)
            .revoke("token", &format!("t{i}"), "", i)
            .await
            .unwrap();
        assert_ne!(store.generation().await.unwrap(), before);
    }
    let checkpoint = || async {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&other)
            .await
            .unwrap();
        busy
    };
    // What a held snapshot does, to show the check can tell.
    let reader = raw(&path).await;
    let mut snapshot = reader.begin().await.unwrap();
    sqlx::query("SELECT generation FROM store_changes")
        .fetch_one(&mut *snapshot)
        .await
        .unwrap();
    assert_eq!(
        checkpoint().await,
        1,
        "an open read transaction blocks the reset"
    );
    snapshot.rollback().await.unwrap();
    assert_eq!(checkpoint().await, 0, "a reader held the WAL");
    let wal = std::fs::metadata(path.with_file_name("warden.db-wal")).unwrap();
    assert_eq!(wal.len(), 0, "the WAL was reset");
}

/// A database file renamed over (a backup restored with `mv`) or removed while the store is
/// open: its connections stay on the old file, so the store refuses, for good, rather than miss
/// what is written into the new one.
#[tokio::test]
async fn a_database_replaced_or_removed_while_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let is_replaced = |e: Option<StoreError>| match e {
        Some(StoreError::Replaced { location }) => location == path.display().to_string(),
        _ => false,
    };
    let backup = dir.path().join("backup.db");
    let restore = || async {
        SqliteStore::open(&backup).await.unwrap().close().await;
        std::fs::rename(&backup, &path).unwrap();
    };

    // Nothing written: noticed by the check that runs now and then (here on every request),
    // and by every transaction.
    let mut quiet = SqliteStore::open(&path).await.unwrap();
    quiet.name_check_every = std::time::Duration::ZERO;
    quiet.generation().await.unwrap();
    restore().await;
    assert!(is_replaced(quiet.begin().await.err()));
    assert!(is_replaced(quiet.generation().await.err()));
    quiet.name_check_every = super::NAME_CHECK_EVERY;
    assert!(is_replaced(quiet.generation().await.err()), "for good");
    drop(quiet);

    // A write into the new file changes the index the store holds: noticed at once.
    let written = SqliteStore::open(&path).await.unwrap();
    let before = written.generation().await.unwrap();
    assert_eq!(written.generation().await.unwrap(), before);
    restore().await;
    let cli = SqliteStore::open(&path).await.unwrap();
    (&cli as &dyn Store)
        .revoke("user", "mallory", "", 1)
        .await
        .unwrap();
    assert!(is_replaced(written.generation().await.err()));

    // Moved away, and the backup moved to its name: the old file keeps a name of its own.
    let mut moved = SqliteStore::open(&path).await.unwrap();
    moved.name_check_every = std::time::Duration::ZERO;
    moved.generation().await.unwrap();
    std::fs::rename(&path, dir.path().join("warden.db.old")).unwrap();
    restore().await;
    assert!(is_replaced(moved.generation().await.err()));

    let mut removed = SqliteStore::open(&path).await.unwrap();
    removed.name_check_every = std::time::Duration::ZERO;
    removed.generation().await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(is_replaced(removed.generation().await.err()));
}

/// The store's own connection failing (here: one that cannot read the counter) is replaced by
/// a new one, which goes on seeing every write.
#[tokio::test]
async fn a_failed_pinned_connection_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let gateway = SqliteStore::open(&path).await.unwrap();
    let cli: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut seen = gateway.generation().await.unwrap();
    for i in 0..3 {
        gateway.break_pinned().await;
        cli.revoke("token", &format!("t{i}"), "", i).await.unwrap();
        let now = gateway.generation().await.unwrap();
        assert_ne!(now, seen, "write {i} unseen");
        cli.revoke("token", &format!("u{i}"), "", i).await.unwrap();
        let next = gateway.generation().await.unwrap();
        assert_ne!(next, now, "the write after the new connection {i} unseen");
        seen = next;
    }
}

/// Without a held index (it could not be opened), the counter is read on every request, so
/// every write is seen.
#[tokio::test]
async fn without_a_held_index_every_write_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let mut gateway = SqliteStore::open(&path).await.unwrap();
    gateway.index = None;
    let cli: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut seen = gateway.generation().await.unwrap();
    for i in 0..5 {
        cli.revoke("token", &format!("t{i}"), "", i).await.unwrap();
        let now = gateway.generation().await.unwrap();
        assert_ne!(now, seen, "write {i} unseen");
        seen = now;
    }
}

/// The pinned connection died and every other connection of the process closed, so SQLite
/// deleted the index the store holds and the next connection made a new one: the header read
/// from the old one never changes again. The periodic check finds the index gone and pins a
/// new connection and index, which see the writes.
#[tokio::test]
async fn an_index_deleted_after_every_connection_closed_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let mut gateway = SqliteStore::open(&path).await.unwrap();
    gateway.name_check_every = std::time::Duration::ZERO;
    let before = gateway.generation().await.unwrap();
    gateway.pool.close().await;
    gateway.break_pinned().await;
    assert!(
        !super::index_path(&path).exists(),
        "the last connection to close deleted the index"
    );
    let cli = SqliteStore::open(&path).await.unwrap();
    (&cli as &dyn Store)
        .revoke("user", "mallory", "", 1)
        .await
        .unwrap();
    let after = gateway.generation().await.unwrap();
    assert_ne!(after, before, "the write is seen");
    (&cli as &dyn Store)
        .revoke("user", "eve", "", 2)
        .await
        .unwrap();
    assert_ne!(
        gateway.generation().await.unwrap(),
        after,
        "and the next one"
    );
}

/// Keys and revocations are read in a transaction that does not take the write lock: a writer
/// holding it (the CLI, say) does not make authentication wait, or fail after the busy timeout.
#[tokio::test]
async fn a_read_does_not_wait_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let writer = raw(&path).await;
    let held = writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let read = async {
        let mut tx = store.begin_read().await?;
        tx.keys().await?;
        tx.revocations().await?;
        tx.commit().await
    };
    let within = std::time::Duration::from_secs(2);
    tokio::time::timeout(within, read)
        .await
        .expect("the read waited for the writer")
        .unwrap();
    held.rollback().await.unwrap();
}
