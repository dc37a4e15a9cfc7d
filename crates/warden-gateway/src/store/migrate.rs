//! Versioned schema migrations. A store records each version it applied (a `schema_migrations`
//! table: version, name, time); at open, the implementation runs, in one transaction, the
//! migrations it knows and the store lacks, in order. Migration 1 is the schema that Warden used
//! before versions were recorded, written so that it is a no-op on such a store.
//!
//! This file decides *which* migrations run; each implementation holds its own SQL.

use super::StoreError;

/// One step of the schema: statements run in order, in the opening transaction.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// The migrations of `known` (versions 1, 2, 3 … in order) that a store which applied
/// `applied` still needs. Refuses a store newer than `known`, and one whose versions are not a
/// run 1..=k (a hand-edited table).
pub fn pending<'m>(
    known: &'m [Migration],
    applied: &[i64],
    location: &str,
) -> Result<&'m [Migration], StoreError> {
    let mut sorted = applied.to_vec();
    sorted.sort_unstable();
    let latest = i64::try_from(known.len()).unwrap_or(i64::MAX);
    if let Some(&found) = sorted.last().filter(|&&v| v > latest) {
        return Err(StoreError::TooNew {
            location: location.to_string(),
            found,
            known: latest,
        });
    }
    let is_run = sorted
        .iter()
        .zip(1..)
        .all(|(&version, expected)| version == expected);
    if !is_run {
        return Err(StoreError::Inconsistent {
            location: location.to_string(),
            applied: sorted,
        });
    }
    Ok(&known[sorted.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            name: "one",
            statements: &[],
        },
        Migration {
            version: 2,
            name: "two",
            statements: &[],
        },
    ];

    fn versions(list: &[Migration]) -> Vec<i64> {
        list.iter().map(|m| m.version).collect()
    }

    #[test]
    fn a_fresh_store_needs_every_migration_in_order() {
        assert_eq!(versions(pending(KNOWN, &[], "db").unwrap()), [1, 2]);
    }

    #[test]
    fn a_store_needs_only_what_it_lacks() {
        assert_eq!(versions(pending(KNOWN, &[1], "db").unwrap()), [2]);
        assert!(pending(KNOWN, &[2, 1], "db").unwrap().is_empty());
    }

    #[test]
    fn a_newer_store_is_refused_naming_both_versions() {
        let e = pending(KNOWN, &[1, 2, 3], "/data/warden.db").unwrap_err();
        assert!(matches!(
            e,
            StoreError::TooNew {
                found: 3,
                known: 2,
                ..
            }
        ));
        let text = e.to_string();
        assert!(text.contains("/data/warden.db") && text.contains('3') && text.contains('2'));
    }

    #[test]
    fn a_gap_in_the_recorded_versions_is_refused() {
        let e = pending(KNOWN, &[2], "db").unwrap_err();
        assert!(matches!(e, StoreError::Inconsistent { .. }), "{e}");
    }
}
