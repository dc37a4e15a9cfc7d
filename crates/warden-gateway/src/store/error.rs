//! The one error of the store. Texts name what failed and where, never a key or a secret:
//! database errors carry the database's message (a constraint, a lock), not bound values.

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {location} cannot be opened: {reason}")]
    Open { location: String, reason: String },
    #[error(
        "the store at {location} has schema version {found}, newer than the {known} this Warden knows; run a newer Warden or restore a backup"
    )]
    TooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error(
        "the store at {location} records schema versions {applied:?}, which are not 1, 2, 3 … in order; it was changed by hand"
    )]
    Inconsistent { location: String, applied: Vec<i64> },
    #[error("migration {version} ({name}) of the store at {location} failed: {source}")]
    Migration {
        location: String,
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("the store holds a {what} it cannot read: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error(
        "the store's file at {location} was removed or replaced while Warden was using it; restart Warden (replace the file only while Warden is stopped)"
    )]
    Replaced { location: String },
    #[error("the store failed: {0}")]
    Query(#[from] sqlx::Error),
}
