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
//! connection of its own open for as long as it lives ([`Pinned`]); if that connection fails,
//! a new one is opened before the old one goes, and the index is opened again if it was gone.
//! Where the index could not be opened, the counter is read on every request.
//!
//! The store never closes a descriptor of its own on the database or its index ([`Unclosed`]):
//! POSIX record locks belong to the process and the file, so closing any descriptor of a file
//! releases every lock the process holds on it, SQLite's included, and another process could
//! then take the index for unused and rebuild it under the gateway's connections.
//!
//! A database file removed or replaced (renamed over, or moved away and another put in its
//! place) while Warden runs would leave every connection on the old file, and revocations
//! written into the new one unseen. The store checks that its path still names the file it
//! opened (an `fstat` of a held descriptor and a `stat` of the path) whenever the index header
//! changed, at every transaction, and at least every [`NAME_CHECK_EVERY`]; once it does not,
//! the store refuses every request with [`StoreError::Replaced`] until Warden restarts (a copy
//! written over the same file in place is not told apart). A write into the new file while the old one's index is still there (a
//! backup moved over `warden.db` alone) changes the header that is read, so it is refused at
//! once; a new file with a new index of its own within the second.

pub(crate) mod schema;
mod transaction;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, SqliteConnection, SqlitePool};

use super::migrate::pending;
use super::{Generation, Store, StoreError, StoreFuture, Transaction};
use transaction::SqliteTransaction;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    path: PathBuf,
    /// The database file as opened, to compare with what its path names.
    database: Unclosed,
    /// The WAL index, opened once, and the connection that keeps it the live one.
    index: Option<Pinned>,
    /// The index header and the counter read after it.
    seen: Mutex<Option<([u8; INDEX_HEADER], Generation)>>,
    /// When the database file's name was last checked, in milliseconds from `opened`.
    name_checked: AtomicU64,
    /// Set once the path no longer named the database file opened: for good.
    replaced: AtomicBool,
    opened: Instant,
    /// How long an unchanged index header goes without that check ([`NAME_CHECK_EVERY`]).
    name_check_every: Duration,
}

/// How often, while nothing is written, the store checks that its path still names the database
/// file it opened and that the index it holds is still SQLite's (a changed index header, a
/// transaction, and a store without a held index check the path every time): each check is two
/// `fstat`s and a `stat`, and the gateway asks for the counter up to three times per call.
const NAME_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A connection of the store's own that has read the database (so SQLite has the index mapped
/// for it) and reads only the change counter, with the WAL index held open: while the
/// connection is open, no other connection is the last to close, so the index is neither
/// deleted nor replaced.
struct Pinned {
    connection: tokio::sync::Mutex<SqliteConnection>,
    index: Mutex<Unclosed>,
}

/// A descriptor the store reads through and never closes (see the module's notes): dropping
/// it leaves the descriptor to the process's exit.
struct Unclosed(ManuallyDrop<File>);

impl Unclosed {
    fn open(path: &Path) -> std::io::Result<Unclosed> {
        File::open(path).map(|f| Unclosed(ManuallyDrop::new(f)))
    }

    /// Whether the file still has a name: false once it was deleted or renamed over.
    fn linked(&self) -> std::io::Result<bool> {
        self.0.metadata().map(|m| m.nlink() > 0)
    }

    /// Whether the file still has the name `path`: false once `path` is gone or names another
    /// file (moved away and another put there, renamed over, deleted).
    fn named(&self, path: &Path) -> std::io::Result<bool> {
        let held = self.0.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) => Ok(held.nlink() > 0 && (now.dev(), now.ino()) == (held.dev(), held.ino())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
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
        let database = Unclosed::open(path).map_err(|e| failed(&e))?;
        let index = pin(path, &options).await;
        Ok(SqliteStore {
            pool,
            options,
            path: path.to_path_buf(),
            database,
            index,
            seen: Mutex::new(None),
            name_checked: AtomicU64::new(0),
            replaced: AtomicBool::new(false),
            opened: Instant::now(),
            name_check_every: NAME_CHECK_EVERY,
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

    /// Puts a connection that cannot read the counter in place of the pinned one, as a failed
    /// connection would be, and closes the pinned one.
    #[cfg(test)]
    async fn break_pinned(&self) {
        let broken = SqliteConnectOptions::new()
            .filename(":memory:")
            .connect()
            .await
            .unwrap();
        let pinned = self.index.as_ref().expect("pinned");
        let old = std::mem::replace(&mut *pinned.connection.lock().await, broken);
        use sqlx::Connection as _;
        old.close().await.unwrap();
    }

    /// Whether the last check of the files' names is [`NAME_CHECK_EVERY`] old (or the
    /// database was found replaced); if so, it counts as done now.
    fn name_check_due(&self) -> bool {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.name_checked.load(Ordering::Relaxed);
        let every = u64::try_from(self.name_check_every.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < every && !self.replaced.load(Ordering::Relaxed) {
            return false;
        }
        self.name_checked.store(now, Ordering::Relaxed);
        true
    }

    /// Refuses once the database file was removed or replaced while open: its path gone or
    /// naming another file (one `fstat` and one `stat`).
    fn check_named(&self) -> Result<(), StoreError> {
        let replaced = || StoreError::Replaced {
            location: self.path.display().to_string(),
        };
        if self.replaced.load(Ordering::Relaxed) {
            return Err(replaced());
        }
        match self.database.named(&self.path) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.replaced.store(true, Ordering::Relaxed);
                tracing::error!(store = %self.path.display(), "the store's file was removed or replaced while in use; every request that needs it is refused until Warden restarts");
                Err(replaced())
            }
            Err(e) => Err(StoreError::Open {
                location: self.path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Reads the counter through the pinned connection; if that fails, or the index it held
    /// open is gone (every connection closed once, say after the pinned one died), through a
    /// new one, opened before the old one is closed, which then stays pinned with the index
    /// opened again.
    async fn pinned_counter(&self, pinned: &Pinned) -> Result<Generation, StoreError> {
        let mut connection = pinned.connection.lock().await;
        if index_linked(pinned) {
            match counter(&mut connection).await {
                Ok(generation) => return Ok(generation),
                Err(e) => {
                    tracing::warn!(store = %self.path.display(), error = %e, "the store's own connection failed; opening a new one");
                }
            }
        } else {
            tracing::warn!(store = %self.path.display(), "the WAL index the store held is gone; opening a new connection");
        }
        let mut fresh = self.options.connect().await?;
        let generation = counter(&mut fresh).await?;
        *connection = fresh;
        drop(connection);
        let mut index = pinned.index.lock().unwrap_or_else(|e| e.into_inner());
        if !index.linked().unwrap_or(false) {
            *index = Unclosed::open(&index_path(&self.path))
                .map_err(|e| StoreError::Query(sqlx::Error::Io(e)))?;
        }
        Ok(generation)
    }
}

/// Whether the index held open still has its name (is still the one SQLite uses).
fn index_linked(pinned: &Pinned) -> bool {
    let index = pinned.index.lock().unwrap_or_else(|e| e.into_inner());
    index.linked().unwrap_or(false)
}

/// Reads the change counter.
async fn counter(connection: &mut SqliteConnection) -> Result<Generation, sqlx::Error> {
    sqlx::query_scalar("SELECT generation FROM store_changes WHERE id = 1")
        .fetch_one(connection)
        .await
        .map(Generation)
}

/// The WAL index SQLite keeps beside the database at `path`: its name with `-shm` appended.
fn index_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// Opens the store's own connection, reads through it (SQLite maps the WAL index for it), then
/// opens the index; `None` (and a warning) when either fails.
async fn pin(path: &Path, options: &SqliteConnectOptions) -> Option<Pinned> {
    let pinned = async {
        let mut connection = options.connect().await.map_err(|e| e.to_string())?;
        counter(&mut connection).await.map_err(|e| e.to_string())?;
        let index = Unclosed::open(&index_path(path)).map_err(|e| e.to_string())?;
        Ok::<_, String>(Pinned {
            connection: tokio::sync::Mutex::new(connection),
            index: Mutex::new(index),
        })
    }
    .await;
    pinned
        .inspect_err(|e| {
            tracing::warn!(
                store = %path.display(),
                error = %e,
                "could not hold the store's WAL index open; the change counter is read on every request"
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
            self.check_named()?;
            let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            Ok(Box::new(SqliteTransaction::new(tx)) as Box<dyn Transaction>)
        })
    }

    /// A deferred transaction: in WAL mode a reader never waits for the write lock (a
    /// transaction from [`Store::begin`] takes it up front).
    fn begin_read(&self) -> StoreFuture<'_, Box<dyn Transaction>> {
        Box::pin(async move {
            self.check_named()?;
            let tx = self.pool.begin_with("BEGIN").await?;
            Ok(Box::new(SqliteTransaction::new(tx)) as Box<dyn Transaction>)
        })
    }

    fn generation(&self) -> StoreFuture<'_, Generation> {
        let Some(pinned) = &self.index else {
            return Box::pin(async move {
                self.check_named()?;
                Ok(counter(&mut *self.pool.acquire().await?).await?)
            });
        };
        let mut header = [0u8; INDEX_HEADER];
        let read = {
            let index = pinned.index.lock().unwrap_or_else(|e| e.into_inner());
            index.0.read_exact_at(&mut header, 0).is_ok()
        };
        let seen = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Unchanged (the common case): answered without the larger future of a query.
        if let Some((_, generation)) = seen.filter(|(before, _)| read && *before == header) {
            if !self.name_check_due() {
                return Box::pin(std::future::ready(Ok(generation)));
            }
            if let Err(e) = self.check_named() {
                return Box::pin(std::future::ready(Err(e)));
            }
            if index_linked(pinned) {
                return Box::pin(std::future::ready(Ok(generation)));
            }
            // The index is gone: its header no longer tells anything; pinned again below.
        }
        Box::pin(async move {
            self.check_named()?;
            // Read after the header: a commit in between shows in the next header.
            let generation = self.pinned_counter(pinned).await?;
            if read {
                *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((header, generation));
            }
            Ok(generation)
        })
    }
}
