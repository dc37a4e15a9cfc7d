//! Vault rows: secrets sealed by [`crate::vault`] (AES-256-GCM; the store never sees a value),
//! by name and owner (`""` for a gateway-wide secret, a user for that user's token). Written once
//! for both backends, like [`super::outbox`]. Every write bumps the change counter, so gateways
//! drop the values they hold decrypted.

use std::fmt;

/// One sealed secret. Its `Debug` shows neither the nonce nor the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultRow {
    pub name: String,
    pub owner: String,
    /// Which master key sealed it (hex of the first 8 bytes of the key's SHA-256).
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl fmt::Debug for VaultRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultRow")
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("key_id", &self.key_id)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The vault operations for one backend's connection type `$conn`; `bump` is the backend's.
macro_rules! vault_ops {
    ($conn:ty) => {
        async fn vault_rows(
            conn: &mut $conn,
            name: Option<&str>,
            owner: Option<&str>,
        ) -> Result<Vec<$crate::store::VaultRow>, $crate::store::StoreError> {
            type Row = (String, String, String, Vec<u8>, Vec<u8>, i64, i64);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT name, owner, key_id, nonce, sealed, created_at, updated_at FROM vault \
                 WHERE ($1 IS NULL OR name = $1) AND ($2 IS NULL OR owner = $2) \
                 ORDER BY name, owner",
            )
            .bind(name)
            .bind(owner)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| $crate::store::VaultRow {
                    name: r.0,
                    owner: r.1,
                    key_id: r.2,
                    nonce: r.3,
                    sealed: r.4,
                    created_at: r.5,
                    updated_at: r.6,
                })
                .collect())
        }

        async fn vault_put(
            conn: &mut $conn,
            row: &$crate::store::VaultRow,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query(
                "INSERT INTO vault (name, owner, key_id, nonce, sealed, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (name, owner) DO UPDATE SET key_id = excluded.key_id, \
                 nonce = excluded.nonce, sealed = excluded.sealed, updated_at = excluded.updated_at",
            )
            .bind(&row.name)
            .bind(&row.owner)
            .bind(&row.key_id)
            .bind(&row.nonce)
            .bind(&row.sealed)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut *conn)
            .await?;
            bump(conn).await
        }

        async fn vault_rm(
            conn: &mut $conn,
            name: &str,
            owner: &str,
        ) -> Result<bool, $crate::store::StoreError> {
            let done = sqlx::query("DELETE FROM vault WHERE name = $1 AND owner = $2")
                .bind(name)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
            bump(conn).await?;
            Ok(done.rows_affected() == 1)
        }
    };
}

/// The [`Transaction`](crate::store::Transaction) methods of the vault.
macro_rules! vault_methods {
    () => {
        fn vault_rows<'a>(
            &'a mut self,
            name: Option<&'a str>,
            owner: Option<&'a str>,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::VaultRow>> {
            Box::pin(vault_rows(&mut self.tx, name, owner))
        }

        fn vault_put<'a>(
            &'a mut self,
            row: &'a $crate::store::VaultRow,
        ) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(vault_put(&mut self.tx, row))
        }

        fn vault_rm<'a>(
            &'a mut self,
            name: &'a str,
            owner: &'a str,
        ) -> $crate::store::StoreFuture<'a, bool> {
            Box::pin(vault_rm(&mut self.tx, name, owner))
        }
    };
}

pub(crate) use {vault_methods, vault_ops};
