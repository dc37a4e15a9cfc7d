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

/// Where a consent request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentState {
    /// Waiting for a person.
    Pending,
    /// Approved: `grant_id` names the grant that lets the call through.
    Approved,
    Denied,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Pending => "pending",
            ConsentState::Approved => "approved",
            ConsentState::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentState> {
        match text {
            "pending" => Some(ConsentState::Pending),
            "approved" => Some(ConsentState::Approved),
            "denied" => Some(ConsentState::Denied),
            _ => None,
        }
    }
}

/// A call that policy lets through only once a person approves it: what the consent page shows
/// and what its decision is bound to. The id is the single-use secret in the page's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRequest {
    pub id: String,
    pub user: String,
    pub agent: Option<String>,
    /// The upstream's configured name.
    pub server: String,
    /// The routed name, `server.tool` (the key of grants).
    pub tool: String,
    /// `tools/call`, `prompts/get` or `resources/read`; [`CONNECT`] for a request to connect
    /// the caller's own account at the upstream's service.
    pub method: String,
    /// The call's arguments as canonical JSON (see `crate::consent::canonical`).
    pub arguments: String,
    /// Hex SHA-256 of `arguments`.
    pub arguments_digest: String,
    /// Ids of the policies that asked for consent.
    pub policies: Vec<String>,
    /// `once`, or the longest standing grant the policy allows, in seconds.
    pub max_seconds: Option<i64>,
    /// Groups whose members approve instead of the caller (four eyes); empty: the caller does.
    pub approvers: Vec<String>,
    pub created_at: i64,
    /// The request can be decided until this second.
    pub expires_at: i64,
    pub state: ConsentState,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub grant_id: Option<String>,
}

/// The `method` of a request to connect an account: its `server` and `tool` name the upstream,
/// and its approval makes no grant (the tokens are the outcome).
pub const CONNECT: &str = "connect";

impl ConsentRequest {
    pub fn is_connect(&self) -> bool {
        self.method == CONNECT
    }
}

/// A person's answer on the consent page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsentAnswer {
    /// Approved with this grant, which the same transaction inserts.
    Approve(Grant),
    /// A request to connect an account (see [`ConsentRequest::is_connect`]) completed: the
    /// tokens are in the vault under `connection`, which the request keeps as its `grant_id`;
    /// no grant is made.
    Connected {
        connection: String,
    },
    Deny,
}

/// What [`Transaction::decide_consent`](super::Transaction::decide_consent) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecideOutcome {
    /// This answer decided the request; no other answer ever will.
    Decided,
    /// Someone answered before.
    AlreadyDecided,
    /// The request expired undecided.
    Expired,
    NotFound,
}
