//! Grant insertion, consent requests and the grant listing, written once for both backends: the
//! `$n` parameters, which SQLite and PostgreSQL both read, and [`consent_ops!`] instantiates the
//! functions for each backend's connection and row types ([`consent_methods!`] their trait methods).
//!
//! [`decide`] is the second compare-and-swap of the store (after `consume_grant`): one
//! conditional `UPDATE` whose `WHERE` says "still pending and not expired", so of any number of
//! concurrent answers exactly one changes the row, and only that one inserts its grant.

use crate::store::{ConsentRequest, ConsentState, StoreError};

/// The columns of a consent row, in the order [`consent_from`] reads them (a macro, so that
/// statements stay `&'static str` literals).
macro_rules! consent_columns {
    () => {
        "id, user_id, agent, server, tool, method, arguments, arguments_digest, policies_json, \
         max_seconds, approvers_json, created_at, expires_at, state, decided_by, decided_at, \
         grant_id"
    };
}

macro_rules! grant_columns {
    () => {
        "id, user_id, agent, tool, kind, arguments_digest, created_at, expires_at, consumed_at"
    };
}

pub(crate) const INSERT_CONSENT: &str = "INSERT INTO consents (id, user_id, agent, server, tool, \
     method, arguments, arguments_digest, policies_json, max_seconds, approvers_json, created_at, \
     expires_at, state, decided_by, decided_at, grant_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

pub(crate) const DECIDE_CONSENT: &str = "UPDATE consents \
     SET state = $1, decided_by = $2, decided_at = $3, grant_id = $4 \
     WHERE id = $5 AND state = 'pending' AND expires_at > $3";

fn list(text: &str, what: &'static str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

/// A consent row, read by column position in `consent_columns!` order.
pub(crate) fn consent_from<R>(row: &R) -> Result<ConsentRequest, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get(13)?;
    let state = ConsentState::parse(&state).ok_or_else(|| StoreError::Corrupt {
        what: "consent request",
        reason: format!("unknown state {state:?}"),
    })?;
    Ok(ConsentRequest {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        agent: row.try_get(2)?,
        server: row.try_get(3)?,
        tool: row.try_get(4)?,
        method: row.try_get(5)?,
        arguments: row.try_get(6)?,
        arguments_digest: row.try_get(7)?,
        policies: list(&row.try_get::<String, _>(8)?, "consent request's policies")?,
        max_seconds: row.try_get(9)?,
        approvers: list(
            &row.try_get::<String, _>(10)?,
            "consent request's approvers",
        )?,
        created_at: row.try_get(11)?,
        expires_at: row.try_get(12)?,
        state,
        decided_by: row.try_get(14)?,
        decided_at: row.try_get(15)?,
        grant_id: row.try_get(16)?,
    })
}

/// Inserting a grant, the consent operations and the grant listing for one backend: `$conn`
/// is its connection type, `$grant` its grant-row reader; the backend's `bump` (the change
/// counter) is called after a grant is inserted.
macro_rules! consent_ops {
    ($conn:ty, $grant:path) => {
        /// Inserts a grant and bumps the change counter, so every gateway's grant cache reloads.
        async fn insert_grant(
            conn: &mut $conn,
            grant: &$crate::store::Grant,
        ) -> Result<(), $crate::store::StoreError> {
            let (kind, digest) = match &grant.kind {
                $crate::store::GrantKind::OneCall { arguments_digest } => {
                    ("one_call", Some(arguments_digest))
                }
                $crate::store::GrantKind::Standing => ("standing", None),
            };
            sqlx::query(
                "INSERT INTO grants (id, user_id, agent, tool, kind, arguments_digest, created_at, expires_at, consumed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&grant.id)
            .bind(&grant.user)
            .bind(&grant.agent)
            .bind(&grant.tool)
            .bind(kind)
            .bind(digest)
            .bind(grant.created_at)
            .bind(grant.expires_at)
            .bind(grant.consumed_at)
            .execute(&mut *conn)
            .await?;
            bump(conn).await
        }

        async fn insert_consent(
            conn: &mut $conn,
            c: &$crate::store::ConsentRequest,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query($crate::store::consents::INSERT_CONSENT)
                .bind(&c.id)
                .bind(&c.user)
                .bind(&c.agent)
                .bind(&c.server)
                .bind(&c.tool)
                .bind(&c.method)
                .bind(&c.arguments)
                .bind(&c.arguments_digest)
                .bind($crate::store::consents::json_list(&c.policies))
                .bind(c.max_seconds)
                .bind($crate::store::consents::json_list(&c.approvers))
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.state.as_str())
                .bind(&c.decided_by)
                .bind(c.decided_at)
                .bind(&c.grant_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn consent(
            conn: &mut $conn,
            id: &str,
        ) -> Result<Option<$crate::store::ConsentRequest>, $crate::store::StoreError> {
            let sql = concat!(
                "SELECT ",
                $crate::store::consents::consent_columns!(),
                " FROM consents WHERE id = $1"
            );
            let row = sqlx::query(sql).bind(id).fetch_optional(&mut *conn).await?;
            row.as_ref()
                .map($crate::store::consents::consent_from)
                .transpose()
        }

        async fn pending_consents(
            conn: &mut $conn,
            user: &str,
            now: i64,
        ) -> Result<Vec<$crate::store::ConsentRequest>, $crate::store::StoreError> {
            let sql = concat!(
                "SELECT ",
                $crate::store::consents::consent_columns!(),
                " FROM consents WHERE user_id = $1 AND state = 'pending' AND expires_at > $2
                 ORDER BY created_at, id"
            );
            let rows = sqlx::query(sql)
                .bind(user)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map($crate::store::consents::consent_from)
                .collect()
        }

        async fn decide_consent(
            conn: &mut $conn,
            id: &str,
            answer: &$crate::store::ConsentAnswer,
            by: &str,
            now: i64,
        ) -> Result<$crate::store::DecideOutcome, $crate::store::StoreError> {
            let (state, grant, made) = match answer {
                $crate::store::ConsentAnswer::Approve(grant) => {
                    ("approved", Some(grant), Some(grant.id.as_str()))
                }
                $crate::store::ConsentAnswer::Connected { connection } => {
                    ("approved", None, Some(connection.as_str()))
                }
                $crate::store::ConsentAnswer::Deny => ("denied", None, None),
            };
            let done = sqlx::query($crate::store::consents::DECIDE_CONSENT)
                .bind(state)
                .bind(by)
                .bind(now)
                .bind(made)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 1 {
                if let Some(grant) = grant {
                    insert_grant(&mut *conn, grant).await?;
                }
                return Ok($crate::store::DecideOutcome::Decided);
            }
            // Nothing changed; say why. This read decides nothing.
            let row: Option<(String, i64)> =
                sqlx::query_as("SELECT state, expires_at FROM consents WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(match row {
                Some((state, _)) if state != "pending" => {
                    $crate::store::DecideOutcome::AlreadyDecided
                }
                Some(_) => $crate::store::DecideOutcome::Expired,
                None => $crate::store::DecideOutcome::NotFound,
            })
        }

        async fn grants(
            conn: &mut $conn,
            user: Option<&str>,
            now: i64,
        ) -> Result<Vec<$crate::store::Grant>, $crate::store::StoreError> {
            let rows = match user {
                Some(user) => {
                    let sql = concat!(
                        "SELECT ",
                        $crate::store::consents::grant_columns!(),
                        " FROM grants WHERE consumed_at IS NULL AND expires_at > $1
                         AND user_id = $2 ORDER BY created_at, id"
                    );
                    sqlx::query(sql)
                        .bind(now)
                        .bind(user)
                        .fetch_all(&mut *conn)
                        .await?
                }
                None => {
                    let sql = concat!(
                        "SELECT ",
                        $crate::store::consents::grant_columns!(),
                        " FROM grants WHERE consumed_at IS NULL AND expires_at > $1
                         ORDER BY created_at, id"
                    );
                    sqlx::query(sql).bind(now).fetch_all(&mut *conn).await?
                }
            };
            rows.iter().map($grant).collect()
        }

        async fn purge_ended(
            conn: &mut $conn,
            before: i64,
        ) -> Result<u64, $crate::store::StoreError> {
            let grants =
                sqlx::query("DELETE FROM grants WHERE expires_at < $1 OR consumed_at < $1")
                    .bind(before)
                    .execute(&mut *conn)
                    .await?;
            let consents = sqlx::query("DELETE FROM consents WHERE expires_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?;
            Ok(grants.rows_affected() + consents.rows_affected())
        }
    };
}

/// The [`Transaction`](crate::store::Transaction) methods of the consent operations, for a
/// backend's `impl` block whose transaction is `self.tx` (the functions of [`consent_ops!`]).
macro_rules! consent_methods {
    () => {
        fn grants<'a>(
            &'a mut self,
            user: Option<&'a str>,
            now: i64,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::Grant>> {
            Box::pin(grants(&mut self.tx, user, now))
        }

        fn insert_consent<'a>(
            &'a mut self,
            consent: &'a $crate::store::ConsentRequest,
        ) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(insert_consent(&mut self.tx, consent))
        }

        fn consent<'a>(
            &'a mut self,
            id: &'a str,
        ) -> $crate::store::StoreFuture<'a, Option<$crate::store::ConsentRequest>> {
            Box::pin(consent(&mut self.tx, id))
        }

        fn pending_consents<'a>(
            &'a mut self,
            user: &'a str,
            now: i64,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::ConsentRequest>> {
            Box::pin(pending_consents(&mut self.tx, user, now))
        }

        fn decide_consent<'a>(
            &'a mut self,
            id: &'a str,
            answer: &'a $crate::store::ConsentAnswer,
            by: &'a str,
            now: i64,
        ) -> $crate::store::StoreFuture<'a, $crate::store::DecideOutcome> {
            Box::pin(decide_consent(&mut self.tx, id, answer, by, now))
        }

        fn purge_ended(&mut self, before: i64) -> $crate::store::StoreFuture<'_, u64> {
            Box::pin(purge_ended(&mut self.tx, before))
        }
    };
}

pub(crate) use {consent_columns, consent_methods, consent_ops, grant_columns};
