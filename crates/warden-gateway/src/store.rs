//! The embedded default store: one SQLite database in the data directory holding control
//! state — API keys (hashes only) and revocations. Other processes (the `warden` CLI) may write
//! to it while the gateway runs; [`Store::changed`] tells the gateway to reload.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {0} cannot be opened: {1}")]
    Open(PathBuf, String),
    #[error("the store failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// An API key as stored: never the key itself, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A revocation: a token id, a user or an agent cut off from a point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub kind: String,
    pub value: String,
    pub reason: String,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
        groups_json TEXT NOT NULL, scopes_json TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS revocations (
        kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (kind, value))",
];

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Open(path.to_path_buf(), e.to_string()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open(path.to_path_buf(), e.to_string()))?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Store {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// A fingerprint of the database files; it changes whenever any process commits.
    pub fn changed(&self) -> (Option<SystemTime>, u64, Option<SystemTime>, u64) {
        let stat = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.modified().ok(), m.len()))
                .unwrap_or((None, 0))
        };
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let (a, b) = stat(&self.path);
        let (c, d) = stat(Path::new(&wal));
        (a, b, c, d)
    }

    pub async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, name, hash, groups_json, scopes_json, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.hash)
            .bind(serde_json::to_string(&key.groups).unwrap_or_default())
            .bind(serde_json::to_string(&key.scopes).unwrap_or_default())
            .bind(key.created_at)
            .bind(key.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT id, name, hash, groups_json, scopes_json, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await?;
        let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| StoredKey {
                id: r.get(0),
                name: r.get(1),
                hash: r.get(2),
                groups: list(r.get(3)),
                scopes: list(r.get(4)),
                created_at: r.get(5),
                expires_at: r.get(6),
                revoked_at: r.get(7),
            })
            .collect())
    }

    /// Revokes a key by id or name; false when there is no such key.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id_or_name)
        .bind(id_or_name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn revoke(&self, kind: &str, value: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO revocations (kind, value, reason, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason")
            .bind(kind)
            .bind(value)
            .bind(reason)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn unrevoke(&self, kind: &str, value: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM revocations WHERE kind = ? AND value = ?")
            .bind(kind)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, value, reason, created_at FROM revocations ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Revocation {
                kind: r.get(0),
                value: r.get(1),
                reason: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }
}
