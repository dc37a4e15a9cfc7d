//! Properties of the argument normaliser: it never panics, and what it keeps survives a round
//! trip.

mod common;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use warden_policy::{ArgValue, Outcome, normalize_arguments, normalize_arguments_as_decimal};

/// Any JSON value, nulls and fractions included, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON that normalisation keeps exactly: no nulls, whole numbers in `i64`, decimals with up
/// to four fractional digits that a double holds exactly enough, arrays without duplicates.
fn exact_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1_000_000_000i64..1_000_000_000, 1i64..10_000)
            .prop_filter("a fraction", |(_, f)| f % 10 != 0)
            .prop_map(|(i, f)| {
                let text = format!("{i}.{f:04}");
                serde_json::from_str::<Value>(&text).expect("a number")
            }),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::btree_set(inner.clone().prop_map(|v| v.to_string()), 0..5).prop_map(
                |texts| Value::Array(
                    texts
                        .iter()
                        .map(|t| serde_json::from_str(t).expect("json"))
                        .collect()
                )
            ),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Compares JSON with arrays as sets (Cedar sets are unordered).
fn as_sets(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(as_sets).collect();
            items.sort_by_key(|i| i.to_string());
            items.dedup();
            Value::Array(items)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), as_sets(v))).collect()),
        Value::Number(n) => match n.as_f64() {
            // 1000.0 and 1000 are one number.
            Some(f) if n.as_i64().is_none() && f.fract() == 0.0 && f.abs() < 9e18 => {
                Value::from(f as i64)
            }
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_fails_only_for_non_objects_or_depth(v in any_json()) {
        for args in [v.clone(), json!({ "x": v })] {
            match (normalize_arguments(&args), normalize_arguments_as_decimal(&args)) {
                (Ok(natural), Ok(decimal)) => {
                    // Both views keep the same fields.
                    let keys = |a: &ArgValue| match a {
                        ArgValue::Record(r) => r.keys().cloned().collect::<Vec<_>>(),
                        _ => panic!("arguments are a record"),
                    };
                    prop_assert_eq!(keys(&natural), keys(&decimal));
                    let _ = natural.to_expression();
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "views disagree: {:?} / {:?}", a, b),
            }
        }
    }

    #[test]
    fn a_decision_never_panics_on_any_arguments(v in any_json()) {
        let engine = common::engine(
            "permit (principal, action == Action::\"call_tool\", resource)\n\
             when { context.arguments has x && context.arguments.x == 1 };\n\
             forbid (principal, action, resource)\n\
             when { context.decimal_arguments has x && context.decimal_arguments.x.greaterThan(decimal(\"1.5\")) };",
        );
        let d = common::call("s.t").args(json!({ "x": v })).decide(&engine);
        prop_assert!(d.outcome == Outcome::Allow || d.outcome == Outcome::Deny);
    }

    #[test]
    fn exact_values_round_trip(v in exact_json()) {
        let args = json!({ "x": v });
        let normalised = normalize_arguments(&args).expect("exact JSON normalises");
        prop_assert_eq!(as_sets(&normalised.to_json()), as_sets(&args));
    }

    #[test]
    fn normalising_twice_changes_nothing(v in exact_json()) {
        let once = normalize_arguments(&json!({ "x": v })).expect("normalises");
        let twice = normalize_arguments(&once.to_json()).expect("normalises again");
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn nulls_are_dropped_everywhere(v in any_json()) {
        fn has_null(v: &Value) -> bool {
            match v {
                Value::Null => true,
                Value::Array(i) => i.iter().any(has_null),
                Value::Object(m) => m.values().any(has_null),
                _ => false,
            }
        }
        if let Ok(a) = normalize_arguments(&json!({ "x": v })) {
            prop_assert!(!has_null(&a.to_json()));
        }
    }
}
