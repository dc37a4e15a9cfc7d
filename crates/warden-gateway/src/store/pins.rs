//! Tool pins: every upstream tool definition Warden has seen, by the SHA-256 of its canonical
//! JSON, and whether it is approved. A definition is approved at first sight or by an operator
//! (`warden tools approve`); a changed one is a new row that waits. Written once for both
//! backends, like [`super::outbox`]: the SQL is the same, and `approved` is an integer in both.

/// One tool definition as seen: approved or waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolPin {
    pub upstream: String,
    /// The tool's own name at the upstream.
    pub tool: String,
    /// Hex SHA-256 of the canonical definition.
    pub hash: String,
    /// The definition as listed (JSON).
    pub definition: String,
    /// What tool integrity flagged in it, comma-separated (`instructions,invisible`), or empty.
    pub flags: String,
    pub seen_at: i64,
    /// When and by whom it was approved; `None` while it waits.
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
}

/// The pin operations for one backend's connection type `$conn`.
macro_rules! pins_ops {
    ($conn:ty) => {
        async fn tool_pins(
            conn: &mut $conn,
            upstream: Option<&str>,
        ) -> Result<Vec<$crate::store::ToolPin>, $crate::store::StoreError> {
            type Row = (String, String, String, String, String, i64, Option<i64>, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT upstream, tool, hash, definition, flags, seen_at, approved_at, approved_by \
                 FROM tool_pins WHERE ($1 IS NULL OR upstream = $1) \
                 ORDER BY upstream, tool, seen_at, hash",
            )
            .bind(upstream)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| $crate::store::ToolPin {
                    upstream: r.0,
                    tool: r.1,
                    hash: r.2,
                    definition: r.3,
                    flags: r.4,
                    seen_at: r.5,
                    approved_at: r.6,
                    approved_by: r.7,
                })
                .collect())
        }

        async fn pin_tool(
            conn: &mut $conn,
            pin: &$crate::store::ToolPin,
        ) -> Result<bool, $crate::store::StoreError> {
            let done = sqlx::query(
                "INSERT INTO tool_pins \
                 (upstream, tool, hash, definition, flags, seen_at, approved_at, approved_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (upstream, tool, hash) DO NOTHING",
            )
            .bind(&pin.upstream)
            .bind(&pin.tool)
            .bind(&pin.hash)
            .bind(&pin.definition)
            .bind(&pin.flags)
            .bind(pin.seen_at)
            .bind(pin.approved_at)
            .bind(&pin.approved_by)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn approve_tool(
            conn: &mut $conn,
            upstream: &str,
            tool: &str,
            hash: &str,
            by: &str,
            now: i64,
        ) -> Result<bool, $crate::store::StoreError> {
            let done = sqlx::query(
                "UPDATE tool_pins SET approved_at = $4, approved_by = $5 \
                 WHERE upstream = $1 AND tool = $2 AND hash = $3 AND approved_at IS NULL",
            )
            .bind(upstream)
            .bind(tool)
            .bind(hash)
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }
    };
}

/// The [`Transaction`](crate::store::Transaction) methods of the pins, for a backend's `impl`
/// block whose transaction is `self.tx`.
macro_rules! pins_methods {
    () => {
        fn tool_pins<'a>(
            &'a mut self,
            upstream: Option<&'a str>,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::ToolPin>> {
            Box::pin(tool_pins(&mut self.tx, upstream))
        }

        fn pin_tool<'a>(
            &'a mut self,
            pin: &'a $crate::store::ToolPin,
        ) -> $crate::store::StoreFuture<'a, bool> {
            Box::pin(pin_tool(&mut self.tx, pin))
        }

        fn approve_tool<'a>(
            &'a mut self,
            upstream: &'a str,
            tool: &'a str,
            hash: &'a str,
            by: &'a str,
            now: i64,
        ) -> $crate::store::StoreFuture<'a, bool> {
            Box::pin(approve_tool(&mut self.tx, upstream, tool, hash, by, now))
        }
    };
}

pub(crate) use {pins_methods, pins_ops};
