//! The embedded store: one SQLite file (WAL journal) in the data directory. The `warden` CLI
//! and the gateway may have it open at once; SQLite lets one transaction write at a time.
//!
//! Every transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
//! transaction that read first could not take it later once another process wrote, and would
//! fail half-way. Waiting for the lock is bounded by the busy timeout.
//!
//! [`Store::generation`] must be cheap, since the gateway asks on every request (up to three
//! times per call: identity, grants, vault). The counter row is read only when the header of
//! the WAL index (`-shm`) changed: SQLite rewrites it on every commit, by any process
//! (sqlite.org/walformat.html: its change counter, last frame, salts and checksum). A false
//! alarm costs one read of the counter; a commit always changes the header.
//!
//! The index is read with one `pread` on a descriptor opened at start, not by path: looking
//! the files up by name on every request cost two `stat`s, an `open` and a `read` each time
//! (about 9 % of the full pipeline's CPU in `warden-bench --full`). That descriptor stays the
//! file SQLite uses only while some connection keeps the database open — the last connection
//! to close deletes the index, and the next one creates a new file — so the store keeps one
//! connection of its own open for as long as it lives ([`Pinned`]). Where the index could not
//! be opened, the store falls back to looking the files up by name on every request.

pub(crate) mod schema;
mod transaction;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, SqliteConnection, SqlitePool};

use super::migrate::pending;
use super::{Generation, Store, StoreError, StoreFuture, Transaction};
use transaction::SqliteTransaction;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// The WAL index, opened once, and the connection that keeps it the live one.
    index: Option<Pinned>,
    seen: Mutex<Option<(Fingerprint, Generation)>>,
}

/// The WAL index held open, with a connection of the store's own that has read the database
/// (so SQLite has the index mapped for it) and reads only the change counter: while it is
/// open, no other connection is the last to close, so the index is neither deleted nor
/// replaced.
struct Pinned {
    index: File,
    connection: tokio::sync::Mutex<SqliteConnection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What the files look like: the WAL index header read from the held index, or (without one)
/// the sizes and times of the database and WAL and the index header, looked up by name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fingerprint {
    Index([u8; INDEX_HEADER]),
    Files {
        db: (Option<SystemTime>, u64),
        wal: (Option<SystemTime>, u64),
        shm: [u8; INDEX_HEADER],
    },
    /// The held index could not be read: never equal to what was seen, so the counter is read.
    Unread,
}

/// The first copy of the WAL index header.
const INDEX_HEADER: usize = 48;

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
            .connect_with(options.clone())
            .await
            .map_err(|e| failed(&e))?;
        migrate(&pool, &location).await?;
        let index = pin(path, options).await;
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
            index,
            seen: Mutex::new(None),
        })
    }

    /// Closes every connection, the pinned one too, as a process that exits would.
    #[cfg(test)]
    async fn close(self) {
        self.pool.close().await;
        if let Some(pinned) = self.index {
            use sqlx::Connection as _;
            pinned.connection.into_inner().close().await.unwrap();
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let Some(pinned) = &self.index else {
            return self.files();
        };
        let mut header = [0u8; INDEX_HEADER];
        match pinned.index.read_exact_at(&mut header, 0) {
            Ok(()) => Fingerprint::Index(header),
            Err(_) => Fingerprint::Unread,
        }
    }

    /// The fingerprint looked up by name.
    fn files(&self) -> Fingerprint {
        let stat = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.modified().ok(), m.len()))
                .unwrap_or((None, 0))
        };
        let mut shm = [0u8; INDEX_HEADER];
        // A missing or short index leaves zeros: the sizes and times still tell a change.
        let _ = File::open(sibling(&self.path, path_suffix::INDEX))
            .and_then(|mut f| f.read_exact(&mut shm));
        Fingerprint::Files {
            db: stat(&self.path),
            wal: stat(&sibling(&self.path, path_suffix::WAL)),
            shm,
        }
    }
}

/// Reads the change counter.
async fn counter(connection: &mut SqliteConnection) -> Result<Generation, sqlx::Error> {
    sqlx::query_scalar("SELECT generation FROM store_changes WHERE id = 1")
        .fetch_one(connection)
        .await
        .map(Generation)
}

/// The names SQLite gives the WAL and its index: the database's with a suffix.
mod path_suffix {
    pub const WAL: &str = "-wal";
    pub const INDEX: &str = "-shm";
}

/// The file SQLite keeps beside the database at `path`, named with `suffix`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens the store's own connection, reads through it (SQLite maps the WAL index for it), then
/// opens the index; `None` (and a warning) when either fails.
async fn pin(path: &Path, options: SqliteConnectOptions) -> Option<Pinned> {
    let pinned = async {
        let mut connection = options.connect().await.map_err(|e| e.to_string())?;
        counter(&mut connection).await.map_err(|e| e.to_string())?;
        let index = File::open(sibling(path, path_suffix::INDEX)).map_err(|e| e.to_string())?;
        Ok::<_, String>(Pinned {
            index,
            connection: tokio::sync::Mutex::new(connection),
        })
    }
    .await;
    pinned
        .inspect_err(|e| {
            tracing::warn!(
                store = %path.display(),
                error = %e,
                "could not hold the store's WAL index open; its files are looked up on every request"
            );
        })
        .ok()
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
            let unchanged = |(before, _): &(Fingerprint, Generation)| {
                *before == print && print != Fingerprint::Unread
            };
            if let Some((_, generation)) = seen.filter(unchanged) {
                return Ok(generation);
            }
            // Read after the fingerprint: a commit in between shows in the next fingerprint.
            let generation = match &self.index {
                Some(pinned) => counter(&mut *pinned.connection.lock().await).await?,
                None => counter(&mut *self.pool.acquire().await?).await?,
            };
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((print, generation));
            Ok(generation)
        })
    }
}
