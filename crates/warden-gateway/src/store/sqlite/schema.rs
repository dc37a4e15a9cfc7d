//! The SQLite schema, as the list of its migrations. Append; never edit a released step.

use crate::store::migrate::Migration;

/// Made before any migration runs, so that the versions applied can be read.
pub const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "api keys and revocations",
        // The schema from before versions were recorded; `IF NOT EXISTS` keeps such stores.
        statements: &[
            "CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
                groups_json TEXT NOT NULL, scopes_json TEXT NOT NULL,
                created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER)",
            "CREATE TABLE IF NOT EXISTS revocations (
                kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
                created_at INTEGER NOT NULL, PRIMARY KEY (kind, value))",
        ],
    },
    Migration {
        version: 2,
        name: "change counter",
        statements: &[
            "CREATE TABLE store_changes (
                id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)",
            "INSERT INTO store_changes (id, generation) VALUES (1, 0)",
        ],
    },
    Migration {
        version: 3,
        name: "grants",
        statements: &[
            "CREATE TABLE grants (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL, agent TEXT, tool TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('one_call', 'standing')),
                arguments_digest TEXT,
                created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, consumed_at INTEGER,
                CHECK ((kind = 'one_call') = (arguments_digest IS NOT NULL)))",
            "CREATE INDEX grants_by_caller ON grants (user_id, tool)",
        ],
    },
    Migration {
        version: 4,
        name: "consent requests",
        statements: &[
            "CREATE TABLE consents (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL, agent TEXT, server TEXT NOT NULL,
                tool TEXT NOT NULL, method TEXT NOT NULL, arguments TEXT NOT NULL,
                arguments_digest TEXT NOT NULL, policies_json TEXT NOT NULL, max_seconds INTEGER,
                approvers_json TEXT NOT NULL, created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
                decided_by TEXT, decided_at INTEGER, grant_id TEXT,
                CHECK ((state = 'approved') = (grant_id IS NOT NULL)))",
            "CREATE INDEX consents_by_user ON consents (user_id, state)",
        ],
    },
    Migration {
        version: 5,
        name: "audit outbox",
        statements: &[
            "CREATE TABLE audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL)",
        ],
    },
    Migration {
        version: 6,
        name: "tool pins",
        statements: &[TOOL_PINS],
    },
    Migration {
        version: 7,
        name: "vault",
        statements: &[VAULT],
    },
];

/// The same table in both backends (see `crate::store::vault`).
pub(crate) const VAULT: &str = "CREATE TABLE vault (name TEXT NOT NULL, owner TEXT NOT NULL, \
    key_id TEXT NOT NULL, nonce BYTEA NOT NULL, sealed BYTEA NOT NULL, \
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (name, owner))";

/// The same table in both backends (see `crate::store::pins`).
pub(crate) const TOOL_PINS: &str = "CREATE TABLE tool_pins (upstream TEXT NOT NULL, \
    tool TEXT NOT NULL, hash TEXT NOT NULL, definition TEXT NOT NULL, flags TEXT NOT NULL, \
    seen_at BIGINT NOT NULL, approved_at BIGINT, approved_by TEXT, \
    PRIMARY KEY (upstream, tool, hash))";
