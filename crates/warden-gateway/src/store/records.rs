//! What the store keeps, as types.

use std::fmt;

/// An API key as stored: never the key itself, only the SHA-256 of its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the key's secret.
    pub hash: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hash", &"<redacted>")
            .field("groups", &self.groups)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// A revocation: a token id, a user or an agent cut off from a point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub kind: String,
    pub value: String,
    pub reason: String,
    pub created_at: i64,
}

/// What a grant allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantKind {
    /// Exactly one call with these arguments: the hex SHA-256 of their normalised form.
    OneCall { arguments_digest: String },
    /// Every call of the tool until the grant expires.
    Standing,
}

/// A user's permission for an agent to call a tool, decided once (on the consent page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub user: String,
    pub agent: Option<String>,
    /// The routed tool name, `server.tool`.
    pub tool: String,
    pub kind: GrantKind,
    pub created_at: i64,
    /// The grant allows nothing from this second on.
    pub expires_at: i64,
    /// When the grant was used up (one-call grants) or ended.
    pub consumed_at: Option<i64>,
}

/// What [`Transaction::consume_grant`](super::Transaction::consume_grant) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// This caller used the grant; no other caller ever will.
    Consumed,
    /// Someone used the grant before.
    AlreadyUsed,
    /// The grant expired unused.
    Expired,
    /// There is no grant with that id.
    NotFound,
}

/// The change counter of cached state (keys, revocations): compare two for equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(pub i64);
