//! The scale-out store: PostgreSQL, for several gateways sharing one state. Not yet selectable
//! in the configuration (a later issue); it passes the same conformance suite as SQLite when
//! `WARDEN_TEST_POSTGRES` names a database to test against.
//!
//! Transactions run at `READ COMMITTED`. That is enough for the compare-and-consume: a second
//! `UPDATE` of a grant waits for the first one's row lock, then re-checks its `WHERE` against
//! the committed row and changes nothing. Migrations take a transaction-scoped advisory lock so
//! that gateways starting together migrate one at a time.
//!
//! [`Store::generation`] reads the counter row on every call, one round trip; a gateway that
//! asks per request should rather listen for a notification (scale-out issue).

mod transaction;

mod schema;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::migrate::pending;
use super::{Generation, Store, StoreError, StoreFuture, Transaction};
use transaction::PgTransaction;

/// Any number that other users of the database are unlikely to lock: "wardenmi".
const MIGRATION_LOCK: i64 = 0x7761_7264_656e_6d69;

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
    location: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects with `options` (which never appear in errors: they may hold a password) and
    /// brings the schema up to date. Tables go where the connection's `search_path` says.
    pub async fn open(options: PgConnectOptions) -> Result<PgStore, StoreError> {
        let location = format!(
            "postgres://{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                location: location.clone(),
                reason: e.to_string(),
            })?;
        migrate(&pool, &location).await?;
        Ok(PgStore { pool, location })
    }
}

async fn migrate(pool: &PgPool, location: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
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
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
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

impl Store for PgStore {
    fn begin(&self) -> StoreFuture<'_, Box<dyn Transaction>> {
        Box::pin(async move {
            let tx = self.pool.begin().await?;
            Ok(Box::new(PgTransaction::new(tx)) as Box<dyn Transaction>)
        })
    }

    fn generation(&self) -> StoreFuture<'_, Generation> {
        Box::pin(async move {
            Ok(Generation(
                sqlx::query_scalar("SELECT generation FROM store_changes WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?,
            ))
        })
    }
}
