//! Control state behind one interface: API keys (hashes only), revocations, grants and consent
//! requests. The
//! embedded implementation is one SQLite file in the data directory ([`sqlite::SqliteStore`]);
//! the scale-out one, PostgreSQL ([`postgres::PgStore`]), is a second implementation of the same
//! two traits that passes the same conformance tests.
//!
//! - [`Store`] opens [`Transaction`]s and reports a [`Generation`], a change counter that every
//!   write to cached state (keys, revocations, grants) bumps, so a gateway notices what another process
//!   (the `warden` CLI, another gateway) committed and reloads.
//! - [`Transaction`] holds every operation; all of them commit together or, if the transaction
//!   is dropped or an operation fails, none does. `impl dyn Store` offers each operation as a
//!   transaction of its own, for callers that need only one.
//! - [`Transaction::consume_grant`] is the atomic compare-and-consume: one conditional `UPDATE`
//!   whose `WHERE` says "not consumed yet and not expired", so of any number of concurrent
//!   consumers exactly one sees a row change. This holds under SQLite's single writer and under
//!   PostgreSQL's row locks at `READ COMMITTED` alike. [`Transaction::decide_consent`] is the
//!   same kind of statement for a consent request: one answer decides it, and only an approval
//!   that decided it inserts its grant.
//! - The schema is versioned ([`migrate`]): migrations run in order, in one transaction, when a
//!   store opens; a store written by a newer Warden is refused.
//!
//! **Why trait objects** (`Arc<dyn Store>`, `Box<dyn Transaction>`) rather than an enum over
//! implementations: callers hold one type whatever the backend, a new backend is a new file
//! rather than a new arm in every operation, and the conformance suite takes `Arc<dyn Store>`.
//! The price, one boxed future per operation, is nothing next to a database round trip. The
//! futures are boxed by hand ([`StoreFuture`]) so the traits stay object-safe without macros.
//!
//! What it must never do: put a key, a key hash or a secret in an error or a `Debug` output, or
//! let two consumers both consume one grant.

mod consents;
mod error;
pub mod migrate;
mod outbox;
mod pins;
pub mod postgres;
mod records;
pub mod sqlite;
mod vault;

#[cfg(test)]
mod conformance;

use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;

pub use error::StoreError;
pub use pins::ToolPin;
pub use records::{
    CONNECT, ConsentAnswer, ConsentRequest, ConsentState, ConsumeOutcome, DecideOutcome,
    Generation, Grant, GrantKind, Revocation, StoredKey,
};
pub use vault::VaultRow;

use crate::config::StorageConfig;

/// What every store operation returns: a boxed future, so the traits can be used as objects.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A place that keeps control state.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Starts a transaction. Dropping it without [`Transaction::commit`] rolls it back.
    fn begin(&self) -> StoreFuture<'_, Box<dyn Transaction>>;

    /// Starts a transaction that only reads: one consistent snapshot, which need not wait for
    /// writers where the store can avoid it.
    fn begin_read(&self) -> StoreFuture<'_, Box<dyn Transaction>> {
        self.begin()
    }

    /// The change counter of cached state: it differs from the last value whenever any process
    /// committed a change to keys, revocations or grants since. Cheap enough to ask on every request.
    fn generation(&self) -> StoreFuture<'_, Generation>;
}

/// Operations that commit together. Times are Unix seconds, passed in by the caller.
pub trait Transaction: Send {
    /// Every API key, revoked ones included, oldest first.
    fn keys(&mut self) -> StoreFuture<'_, Vec<StoredKey>>;
    /// Adds a key; fails when its id or name is taken.
    fn insert_key<'a>(&'a mut self, key: &'a StoredKey) -> StoreFuture<'a, ()>;
    /// Revokes a key by id or name at `now`; false when there is no such unrevoked key.
    fn revoke_key<'a>(&'a mut self, id_or_name: &'a str, now: i64) -> StoreFuture<'a, bool>;

    /// Every revocation, oldest first.
    fn revocations(&mut self) -> StoreFuture<'_, Vec<Revocation>>;
    /// Revokes a token id, user or agent from `now`; a second revocation replaces the reason.
    fn revoke<'a>(
        &'a mut self,
        kind: &'a str,
        value: &'a str,
        reason: &'a str,
        now: i64,
    ) -> StoreFuture<'a, ()>;
    /// Lifts a revocation; false when there was none.
    fn unrevoke<'a>(&'a mut self, kind: &'a str, value: &'a str) -> StoreFuture<'a, bool>;

    /// Adds a grant; fails when its id is taken.
    fn insert_grant<'a>(&'a mut self, grant: &'a Grant) -> StoreFuture<'a, ()>;
    /// The grants of `user` and `agent` for `tool` that are neither consumed nor expired at
    /// `now`, oldest first.
    fn live_grants<'a>(
        &'a mut self,
        user: &'a str,
        agent: Option<&'a str>,
        tool: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Vec<Grant>>;
    /// Uses grant `id` once at `now`: of all consumers of one grant, exactly one is told
    /// [`ConsumeOutcome::Consumed`]. Consuming a standing grant ends it early.
    fn consume_grant<'a>(&'a mut self, id: &'a str, now: i64) -> StoreFuture<'a, ConsumeOutcome>;
    /// Grants neither consumed nor expired at `now`, of `user` or of everyone, oldest first.
    fn grants<'a>(&'a mut self, user: Option<&'a str>, now: i64) -> StoreFuture<'a, Vec<Grant>>;

    /// Adds a consent request; fails when its id is taken.
    fn insert_consent<'a>(&'a mut self, consent: &'a ConsentRequest) -> StoreFuture<'a, ()>;
    /// A consent request by id, whatever its state.
    fn consent<'a>(&'a mut self, id: &'a str) -> StoreFuture<'a, Option<ConsentRequest>>;
    /// The pending, unexpired requests of `user`, oldest first.
    fn pending_consents<'a>(
        &'a mut self,
        user: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Vec<ConsentRequest>>;
    /// Answers a pending request at `now`, as `by`: of all answers to one request, exactly one
    /// is told [`DecideOutcome::Decided`]. An approval inserts its grant in the same statement
    /// group, so a request is approved exactly when its grant exists.
    fn decide_consent<'a>(
        &'a mut self,
        id: &'a str,
        answer: &'a ConsentAnswer,
        by: &'a str,
        now: i64,
    ) -> StoreFuture<'a, DecideOutcome>;
    /// Deletes grants and consent requests that ended before `before`; returns how many.
    fn purge_ended(&mut self, before: i64) -> StoreFuture<'_, u64>;

    /// Queues an audit record (its JSON) for the gateway to move into its log ([`outbox`]).
    fn queue_audit<'a>(&'a mut self, record: &'a str) -> StoreFuture<'a, ()>;
    /// The oldest queued audit records, at most `limit`, with their ids.
    fn queued_audit(&mut self, limit: i64) -> StoreFuture<'_, Vec<(i64, String)>>;
    /// Deletes the queued audit records up to id `through`; how many.
    fn unqueue_audit(&mut self, through: i64) -> StoreFuture<'_, u64>;

    /// Every tool definition seen (of one upstream, or all), by upstream, tool and first sight.
    fn tool_pins<'a>(&'a mut self, upstream: Option<&'a str>) -> StoreFuture<'a, Vec<ToolPin>>;
    /// Records a definition seen; false when that exact definition was already recorded.
    fn pin_tool<'a>(&'a mut self, pin: &'a ToolPin) -> StoreFuture<'a, bool>;
    /// Approves a waiting definition at `now`, as `by`; false when there is no such waiting one.
    fn approve_tool<'a>(
        &'a mut self,
        upstream: &'a str,
        tool: &'a str,
        hash: &'a str,
        by: &'a str,
        now: i64,
    ) -> StoreFuture<'a, bool>;

    /// Sealed secrets, of one name and/or owner or all, by name and owner.
    fn vault_rows<'a>(
        &'a mut self,
        name: Option<&'a str>,
        owner: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<VaultRow>>;
    /// Stores a sealed secret, replacing the one of the same name and owner.
    fn vault_put<'a>(&'a mut self, row: &'a VaultRow) -> StoreFuture<'a, ()>;
    /// Deletes a secret; false when there was none.
    fn vault_rm<'a>(&'a mut self, name: &'a str, owner: &'a str) -> StoreFuture<'a, bool>;

    /// Makes every operation of the transaction durable, or none of them.
    fn commit(self: Box<Self>) -> StoreFuture<'static, ()>;
}

/// Opens the store the configuration names, creating and migrating it as needed.
pub async fn open(config: &StorageConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(&config.sqlite).await?))
}

/// Each operation as a transaction of its own.
impl dyn Store {
    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let mut tx = self.begin().await?;
        let keys = tx.keys().await?;
        tx.commit().await?;
        Ok(keys)
    }

    pub async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_key(key).await?;
        tx.commit().await
    }

    pub async fn revoke_key(&self, id_or_name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = tx.revoke_key(id_or_name, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let mut tx = self.begin().await?;
        let list = tx.revocations().await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn revoke(
        &self,
        kind: &str,
        value: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.revoke(kind, value, reason, now).await?;
        tx.commit().await
    }

    pub async fn unrevoke(&self, kind: &str, value: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = tx.unrevoke(kind, value).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn insert_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_grant(grant).await?;
        tx.commit().await
    }

    pub async fn live_grants(
        &self,
        user: &str,
        agent: Option<&str>,
        tool: &str,
        now: i64,
    ) -> Result<Vec<Grant>, StoreError> {
        let mut tx = self.begin().await?;
        let list = tx.live_grants(user, agent, tool, now).await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn consume_grant(&self, id: &str, now: i64) -> Result<ConsumeOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = tx.consume_grant(id, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn grants(&self, user: Option<&str>, now: i64) -> Result<Vec<Grant>, StoreError> {
        let mut tx = self.begin().await?;
        let list = tx.grants(user, now).await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn insert_consent(&self, consent: &ConsentRequest) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.insert_consent(consent).await?;
        tx.commit().await
    }

    pub async fn consent(&self, id: &str) -> Result<Option<ConsentRequest>, StoreError> {
        let mut tx = self.begin().await?;
        let found = tx.consent(id).await?;
        tx.commit().await?;
        Ok(found)
    }

    pub async fn pending_consents(
        &self,
        user: &str,
        now: i64,
    ) -> Result<Vec<ConsentRequest>, StoreError> {
        let mut tx = self.begin().await?;
        let list = tx.pending_consents(user, now).await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn decide_consent(
        &self,
        id: &str,
        answer: &ConsentAnswer,
        by: &str,
        now: i64,
    ) -> Result<DecideOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = tx.decide_consent(id, answer, by, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn tool_pins(&self, upstream: Option<&str>) -> Result<Vec<ToolPin>, StoreError> {
        let mut tx = self.begin().await?;
        let list = tx.tool_pins(upstream).await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn pin_tool(&self, pin: &ToolPin) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let new = tx.pin_tool(pin).await?;
        tx.commit().await?;
        Ok(new)
    }

    pub async fn purge_ended(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx.purge_ended(before).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// The wall clock in Unix seconds, for callers that stamp what they store.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
