//! The embedded store: one SQLite file (WAL journal) in the data directory. The `warden` CLI
//! and the gateway may have it open at once; SQLite lets one transaction write at a time.
//!
//! Every transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
//! transaction that read first could not take it later once another process wrote, and would
//! fail half-way. Waiting for the lock is bounded by the busy timeout.
//!
//! [`Store::generation`] must be cheap, since the gateway asks on every request. The counter
//! row is read only when the files changed: the database's and the WAL's size and time, and the
//! header of the WAL index (`-shm`), whose change counter SQLite bumps on every commit
//! (sqlite.org/walformat.html). A false alarm costs one read of the counter; a commit always
//! changes the fingerprint.

pub(crate) mod schema;
mod transaction;

#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::migrate::pending;
use super::{Generation, Store, StoreError, StoreFuture, Transaction};
use transaction::SqliteTransaction;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    seen: Mutex<Option<(Fingerprint, Generation)>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What the files look like: sizes and times of the database and WAL, the WAL index header.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    db: (Option<SystemTime>, u64),
    wal: (Option<SystemTime>, u64),
    shm: [u8; 48],
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let location = path.display().to_string();
        let failed = |e: &dyn std::fmt::Display| StoreError::Open {
            location: location.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| failed(&e))?;
        migrate(&pool, &location).await?;
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
            seen: Mutex::new(None),
        })
    }

    fn fingerprint(&self) -> Fingerprint {
        let stat = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.modified().ok(), m.len()))
                .unwrap_or((None, 0))
        };
        let sibling = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        let mut shm = [0u8; 48];
        // A missing or short index leaves zeros: the sizes and times still tell a change.
        let _ = std::fs::File::open(sibling("-shm")).and_then(|mut f| f.read_exact(&mut shm));
        Fingerprint {
            db: stat(&self.path),
            wal: stat(&sibling("-wal")),
            shm,
        }
    }
}

/// Applies the migrations the database lacks, all in one transaction.
async fn migrate(pool: &SqlitePool, location: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(schema::BOOKKEEPING).execute(&mut *tx).await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    for migration in pending(schema::MIGRATIONS, &applied, location)? {
        let failed = |source| StoreError::Migration {
            location: location.to_string(),
            version: migration.version,
            name: migration.name,
            source,
        };
        for statement in migration.statements {
            sqlx::query(*statement)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(super::now())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    tx.commit().await?;
    Ok(())
}

impl Store for SqliteStore {
    fn begin(&self) -> StoreFuture<'_, Box<dyn Transaction>> {
        Box::pin(async move {
            let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            Ok(Box::new(SqliteTransaction::new(tx)) as Box<dyn Transaction>)
        })
    }

    fn generation(&self) -> StoreFuture<'_, Generation> {
        Box::pin(async move {
            let print = self.fingerprint();
            let seen = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, generation)) = seen.filter(|(before, _)| *before == print) {
                return Ok(generation);
            }
            // Read after the fingerprint: a commit in between shows in the next fingerprint.
            let generation = Generation(
                sqlx::query_scalar("SELECT generation FROM store_changes WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?,
            );
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((print, generation));
            Ok(generation)
        })
    }
}
