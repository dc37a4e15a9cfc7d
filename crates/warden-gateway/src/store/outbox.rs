//! The audit outbox: admin actions taken with the `warden` CLI, which writes the store directly
//! while a gateway may be running, wait here as audit records until the gateway — the one writer
//! of its audit log — moves them into the log. The CLI queues a record in the same transaction
//! as the action, so an action is never committed without its record; the gateway deletes a
//! record only after the log made it durable, so a crash in between records it twice rather
//! than never. Written once for both backends, like [`super::consents`].

/// The outbox operations for one backend's connection type `$conn`.
macro_rules! outbox_ops {
    ($conn:ty) => {
        async fn queue_audit(
            conn: &mut $conn,
            record: &str,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query("INSERT INTO audit_outbox (record) VALUES ($1)")
                .bind(record)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn queued_audit(
            conn: &mut $conn,
            limit: i64,
        ) -> Result<Vec<(i64, String)>, $crate::store::StoreError> {
            Ok(
                sqlx::query_as("SELECT id, record FROM audit_outbox ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?,
            )
        }

        async fn unqueue_audit(
            conn: &mut $conn,
            through: i64,
        ) -> Result<u64, $crate::store::StoreError> {
            let done = sqlx::query("DELETE FROM audit_outbox WHERE id <= $1")
                .bind(through)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected())
        }
    };
}

/// The [`Transaction`](crate::store::Transaction) methods of the outbox, for a backend's `impl`
/// block whose transaction is `self.tx`.
macro_rules! outbox_methods {
    () => {
        fn queue_audit<'a>(&'a mut self, record: &'a str) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(queue_audit(&mut self.tx, record))
        }

        fn queued_audit(
            &mut self,
            limit: i64,
        ) -> $crate::store::StoreFuture<'_, Vec<(i64, String)>> {
            Box::pin(queued_audit(&mut self.tx, limit))
        }

        fn unqueue_audit(&mut self, through: i64) -> $crate::store::StoreFuture<'_, u64> {
            Box::pin(unqueue_audit(&mut self.tx, through))
        }
    };
}

pub(crate) use {outbox_methods, outbox_ops};
