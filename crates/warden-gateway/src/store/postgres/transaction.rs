//! The operations of one PostgreSQL transaction. Writes to keys and revocations bump the change
//! counter in the same transaction, so a reader that sees the new counter sees the write.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};

use crate::store::consents::{consent_methods, consent_ops};
use crate::store::outbox::{outbox_methods, outbox_ops};
use crate::store::pins::{pins_methods, pins_ops};
use crate::store::vault::{vault_methods, vault_ops};
use crate::store::{
    ConsumeOutcome, Grant, GrantKind, Revocation, StoreError, StoreFuture, StoredKey, Transaction,
};

pub struct PgTransaction {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl PgTransaction {
    pub fn new(tx: sqlx::Transaction<'static, Postgres>) -> PgTransaction {
        PgTransaction { tx }
    }
}

async fn bump(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE store_changes SET generation = generation + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn read_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: "key's groups or scopes",
        reason: e.to_string(),
    })
}

fn key(row: &PgRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        hash: row.try_get(2)?,
        groups: read_list(row.try_get(3)?)?,
        scopes: read_list(row.try_get(4)?)?,
        created_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        revoked_at: row.try_get(7)?,
    })
}

fn revocation(row: &PgRow) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        kind: row.try_get(0)?,
        value: row.try_get(1)?,
        reason: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

fn grant(row: &PgRow) -> Result<Grant, StoreError> {
    let kind = match (row.try_get::<&str, _>(4)?, row.try_get(5)?) {
        ("one_call", Some(arguments_digest)) => GrantKind::OneCall { arguments_digest },
        ("standing", None) => GrantKind::Standing,
        (other, _) => {
            return Err(StoreError::Corrupt {
                what: "grant",
                reason: format!("kind {other:?} does not match its argument digest"),
            });
        }
    };
    Ok(Grant {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        agent: row.try_get(2)?,
        tool: row.try_get(3)?,
        kind,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        consumed_at: row.try_get(8)?,
    })
}

consent_ops!(PgConnection, grant);
outbox_ops!(PgConnection);
pins_ops!(PgConnection);
vault_ops!(PgConnection);

impl Transaction for PgTransaction {
    fn keys(&mut self) -> StoreFuture<'_, Vec<StoredKey>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, name, hash, groups_json, scopes_json, created_at, expires_at, revoked_at
                 FROM api_keys ORDER BY created_at, name",
            )
            .fetch_all(&mut *self.tx)
            .await?;
            rows.iter().map(key).collect()
        })
    }

    fn insert_key<'a>(&'a mut self, key: &'a StoredKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO api_keys (id, name, hash, groups_json, scopes_json, created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.hash)
            .bind(json_list(&key.groups))
            .bind(json_list(&key.scopes))
            .bind(key.created_at)
            .bind(key.expires_at)
            .bind(key.revoked_at)
            .execute(&mut *self.tx)
            .await?;
            bump(&mut self.tx).await
        })
    }

    fn revoke_key<'a>(&'a mut self, id_or_name: &'a str, now: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE (id = $2 OR name = $3) AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id_or_name)
            .bind(id_or_name)
            .execute(&mut *self.tx)
            .await?;
            let changed = done.rows_affected() > 0;
            if changed {
                bump(&mut self.tx).await?;
            }
            Ok(changed)
        })
    }

    fn revocations(&mut self) -> StoreFuture<'_, Vec<Revocation>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kind, value, reason, created_at FROM revocations ORDER BY created_at, kind, value",
            )
            .fetch_all(&mut *self.tx)
            .await?;
            rows.iter().map(revocation).collect()
        })
    }

    fn revoke<'a>(
        &'a mut self,
        kind: &'a str,
        value: &'a str,
        reason: &'a str,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO revocations (kind, value, reason, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason",
            )
            .bind(kind)
            .bind(value)
            .bind(reason)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
            bump(&mut self.tx).await
        })
    }

    fn unrevoke<'a>(&'a mut self, kind: &'a str, value: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM revocations WHERE kind = $1 AND value = $2")
                .bind(kind)
                .bind(value)
                .execute(&mut *self.tx)
                .await?;
            let changed = done.rows_affected() > 0;
            if changed {
                bump(&mut self.tx).await?;
            }
            Ok(changed)
        })
    }

    fn insert_grant<'a>(&'a mut self, grant: &'a Grant) -> StoreFuture<'a, ()> {
        Box::pin(insert_grant(&mut self.tx, grant))
    }

    fn live_grants<'a>(
        &'a mut self,
        user: &'a str,
        agent: Option<&'a str>,
        tool: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Vec<Grant>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, user_id, agent, tool, kind, arguments_digest, created_at, expires_at, consumed_at
                 FROM grants
                 WHERE user_id = $1 AND agent IS NOT DISTINCT FROM $2 AND tool = $3 AND consumed_at IS NULL AND expires_at > $4
                 ORDER BY created_at, id",
            )
                .bind(user)
                .bind(agent)
                .bind(tool)
                .bind(now)
                .fetch_all(&mut *self.tx)
                .await?;
            rows.iter().map(grant).collect()
        })
    }

    fn consume_grant<'a>(&'a mut self, id: &'a str, now: i64) -> StoreFuture<'a, ConsumeOutcome> {
        Box::pin(async move {
            // The whole decision is this one statement: only one consumer can change the row.
            let done = sqlx::query(
                "UPDATE grants SET consumed_at = $1
                 WHERE id = $2 AND consumed_at IS NULL AND expires_at > $3",
            )
            .bind(now)
            .bind(id)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
            if done.rows_affected() == 1 {
                bump(&mut self.tx).await?;
                return Ok(ConsumeOutcome::Consumed);
            }
            // Nothing changed; say why. This read decides nothing.
            let row: Option<(Option<i64>, i64)> =
                sqlx::query_as("SELECT consumed_at, expires_at FROM grants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?;
            Ok(match row {
                Some((Some(_), _)) => ConsumeOutcome::AlreadyUsed,
                Some((None, expires_at)) if expires_at <= now => ConsumeOutcome::Expired,
                // Absent, or (on a backend without a write lock) inserted since the update.
                _ => ConsumeOutcome::NotFound,
            })
        })
    }

    consent_methods!();
    outbox_methods!();
    pins_methods!();
    vault_methods!();

    fn commit(self: Box<Self>) -> StoreFuture<'static, ()> {
        Box::pin(async move { Ok(self.tx.commit().await?) })
    }
}
