//! The PostgreSQL schema: the same versions as SQLite's, in PostgreSQL's words.

use crate::store::migrate::Migration;

pub const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "api keys and revocations",
        statements: &[
            "CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
                groups_json TEXT NOT NULL, scopes_json TEXT NOT NULL,
                created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT)",
            "CREATE TABLE IF NOT EXISTS revocations (
                kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
                created_at BIGINT NOT NULL, PRIMARY KEY (kind, value))",
        ],
    },
    Migration {
        version: 2,
        name: "change counter",
        statements: &[
            "CREATE TABLE store_changes (
                id INTEGER PRIMARY KEY CHECK (id = 1), generation BIGINT NOT NULL)",
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
                created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, consumed_at BIGINT,
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
                arguments_digest TEXT NOT NULL, policies_json TEXT NOT NULL, max_seconds BIGINT,
                approvers_json TEXT NOT NULL, created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
                decided_by TEXT, decided_at BIGINT, grant_id TEXT,
                CHECK ((state = 'approved') = (grant_id IS NOT NULL)))",
            "CREATE INDEX consents_by_user ON consents (user_id, state)",
        ],
    },
    Migration {
        version: 5,
        name: "audit outbox",
        statements: &["CREATE TABLE audit_outbox (id BIGSERIAL PRIMARY KEY, record TEXT NOT NULL)"],
    },
    Migration {
        version: 6,
        name: "tool pins",
        statements: &[crate::store::sqlite::schema::TOOL_PINS],
    },
    Migration {
        version: 7,
        name: "vault",
        statements: &[crate::store::sqlite::schema::VAULT],
    },
];
