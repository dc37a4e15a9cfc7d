//! Warden's Cedar schema, embedded in the crate (`src/warden.cedarschema`).

use std::sync::OnceLock;

use cedar_policy::Schema;

/// The schema's text.
pub const SCHEMA_TEXT: &str = include_str!("warden.cedarschema");

/// The parsed schema, parsed once per process.
pub(crate) fn schema() -> Result<&'static Schema, &'static String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Schema::from_cedarschema_str(SCHEMA_TEXT)
                .map(|(schema, _warnings)| schema)
                .map_err(|e| format!("Warden's own schema does not parse: {e}"))
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_schema_parses() {
        assert!(super::schema().is_ok(), "{:?}", super::schema().err());
    }
}
