//! The mapping from a call's JSON arguments to Cedar values.
//!
//! | JSON | Cedar | note |
//! |---|---|---|
//! | `true` / `false` | `Bool` | |
//! | integer in `i64` | `Long` | |
//! | number with no fraction (`1000.0`, `1e3`) in `i64` | `Long` | `1000.0` and `1000` are the same JSON number |
//! | number with 1–4 fractional digits, within ±922337203685477.5807 | `decimal` | compare with `.greaterThan(decimal("…"))` |
//! | any other number (a `u64` above `i64::MAX`, 5+ fractional digits, beyond the decimal range) | `String` holding the number's text | a numeric comparison on it is an evaluation error, which never allows |
//! | string | `String` | |
//! | array | `Set` | unordered and deduplicated, as Cedar sets are: `[2,1,1]` is `[1,2]`; `null` elements are dropped |
//! | object | `Record` | |
//! | `null` | absent | an attribute whose value is `null` is left out, so `has` is false for it |
//!
//! Cedar compares a `Long` with `<` and a `decimal` with `.lessThan()`, and neither accepts the
//! other, nor can a policy ask which one it holds. So an argument that may carry a fraction —
//! money, typically — is also offered in a **decimal view**, [`normalize_arguments_as_decimal`]
//! (`context.decimal_arguments`): the same mapping except that every number, whole or not, is a
//! `decimal` when it fits (else its text). `500` and `999.5` both compare with
//! `context.decimal_arguments.amount.lessThanOrEqual(decimal("1000.0"))`.
//!
//! Numbers are read as the IEEE double that `serde_json` (and most upstreams) parse, and the
//! decimal is taken from the shortest text that round-trips that double.
//!
//! Normalisation fails only for arguments that are not a JSON object and for values nested deeper
//! than [`MAX_DEPTH`]; a failed normalisation makes the decision deny (see the engine).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cedar_policy::RestrictedExpression;
use serde_json::Value;

/// Deepest nesting of arrays and objects that normalisation accepts (the arguments object itself
/// is depth 1).
pub const MAX_DEPTH: usize = 32;

/// A call's argument as a Cedar value. Sets and records are ordered so that two normalisations
/// of equal inputs compare equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArgValue {
    Bool(bool),
    Long(i64),
    Decimal(Decimal),
    String(String),
    Set(BTreeSet<ArgValue>),
    Record(BTreeMap<String, ArgValue>),
}

/// A Cedar `decimal`: a signed value with four fractional digits, stored scaled by 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(i64);

/// Why arguments could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("arguments must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("arguments are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Normalises a call's `arguments` object into a Cedar record (see the module table).
pub fn normalize_arguments(arguments: &Value) -> Result<ArgValue, NormalizeError> {
    normalize_into(&ArgValues, arguments, Numbers::Natural)
}

/// The decimal view of a call's arguments: as [`normalize_arguments`], but every number that
/// fits a Cedar `decimal` is one, whole numbers included.
pub fn normalize_arguments_as_decimal(arguments: &Value) -> Result<ArgValue, NormalizeError> {
    normalize_into(&ArgValues, arguments, Numbers::Decimal)
}

/// How numbers map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    /// Whole numbers to `Long`, fractions to `decimal`.
    Natural,
    /// Every number to `decimal`.
    Decimal,
}

/// A JSON scalar, mapped.
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Long(i64),
    Decimal(Decimal),
    String(Cow<'a, str>),
}

/// What normalisation builds: [`ArgValue`]s here, Cedar's own values in the engine (which
/// skips the intermediate tree; a test checks that both agree).
pub(crate) trait Sink {
    type Out;
    fn scalar(&self, scalar: Scalar<'_>) -> Self::Out;
    fn set(&self, items: Vec<Self::Out>) -> Self::Out;
    fn record(&self, fields: Vec<(&str, Self::Out)>) -> Self::Out;
}

struct ArgValues;

impl Sink for ArgValues {
    type Out = ArgValue;

    fn scalar(&self, scalar: Scalar<'_>) -> ArgValue {
        match scalar {
            Scalar::Bool(b) => ArgValue::Bool(b),
            Scalar::Long(i) => ArgValue::Long(i),
            Scalar::Decimal(d) => ArgValue::Decimal(d),
            Scalar::String(s) => ArgValue::String(s.into_owned()),
        }
    }

    fn set(&self, items: Vec<ArgValue>) -> ArgValue {
        ArgValue::Set(items.into_iter().collect())
    }

    fn record(&self, fields: Vec<(&str, ArgValue)>) -> ArgValue {
        ArgValue::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// Normalises an `arguments` object into `sink`'s values.
pub(crate) fn normalize_into<S: Sink>(
    sink: &S,
    arguments: &Value,
    numbers: Numbers,
) -> Result<S::Out, NormalizeError> {
    normalize_fields_into(sink, arguments, numbers, |_| true)
}

/// As [`normalize_into`], keeping only the top-level fields `keep` names.
pub(crate) fn normalize_fields_into<S: Sink>(
    sink: &S,
    arguments: &Value,
    numbers: Numbers,
    keep: impl Fn(&str) -> bool,
) -> Result<S::Out, NormalizeError> {
    let Value::Object(fields) = arguments else {
        return Err(NormalizeError::NotAnObject(json_kind(arguments)));
    };
    let mut record = Vec::new();
    for (key, item) in fields.iter().filter(|(k, _)| keep(k)) {
        if let Some(v) = normalize_value(sink, item, 2, numbers)? {
            record.push((key.as_str(), v));
        }
    }
    Ok(sink.record(record))
}

impl Default for ArgValue {
    fn default() -> Self {
        ArgValue::Record(BTreeMap::new())
    }
}

/// Normalises one value; `None` for `null`, which has no Cedar counterpart.
fn normalize_value<S: Sink>(
    sink: &S,
    value: &Value,
    depth: usize,
    numbers: Numbers,
) -> Result<Option<S::Out>, NormalizeError> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => sink.scalar(Scalar::Bool(*b)),
        Value::String(s) => sink.scalar(Scalar::String(Cow::Borrowed(s))),
        Value::Number(n) => sink.scalar(normalize_number(n, numbers)),
        Value::Array(items) => {
            check_depth(depth)?;
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = normalize_value(sink, item, depth + 1, numbers)? {
                    set.push(v);
                }
            }
            sink.set(set)
        }
        Value::Object(fields) => {
            check_depth(depth)?;
            let mut record = Vec::with_capacity(fields.len());
            for (key, item) in fields {
                if let Some(v) = normalize_value(sink, item, depth + 1, numbers)? {
                    record.push((key.as_str(), v));
                }
            }
            sink.record(record)
        }
    }))
}

/// `depth` is the nesting level of the container being read; the arguments object is 1.
fn check_depth(depth: usize) -> Result<(), NormalizeError> {
    if depth > MAX_DEPTH {
        Err(NormalizeError::TooDeep)
    } else {
        Ok(())
    }
}

fn normalize_number(n: &serde_json::Number, numbers: Numbers) -> Scalar<'static> {
    let decimal = || n.as_f64().and_then(|f| Decimal::from_text(&f.to_string()));
    let text = || Scalar::String(Cow::Owned(n.to_string()));
    if numbers == Numbers::Decimal {
        let whole = n
            .as_i64()
            .and_then(|i| i.checked_mul(Decimal::SCALE))
            .map(Decimal);
        return whole.or_else(decimal).map_or_else(text, Scalar::Decimal);
    }
    if let Some(i) = n.as_i64() {
        return Scalar::Long(i);
    }
    if let Some(f) = n.as_f64()
        && f.fract() == 0.0
        && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
    {
        // In range and integral: the conversion is exact.
        return Scalar::Long(f as i64);
    }
    decimal().map_or_else(text, Scalar::Decimal)
}

impl Decimal {
    const SCALE: i64 = 10_000;

    /// Parses `-?digits(.digits{1,4})?`; `None` if the text has more fractional digits or is out
    /// of range.
    pub fn from_text(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if int.is_empty()
            || frac.len() > 4
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int: i64 = int.parse().ok()?;
        let mut frac_value: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        for _ in frac.len()..4 {
            frac_value *= 10;
        }
        let magnitude = int.checked_mul(Self::SCALE)?.checked_add(frac_value)?;
        Some(Decimal(if negative { -magnitude } else { magnitude }))
    }

    /// The value scaled by 10,000 (`1.5` is `15000`).
    pub fn scaled(self) -> i64 {
        self.0
    }

    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Display for Decimal {
    /// Cedar's literal form, e.g. `-1.5000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = i128::from(self.0);
        let sign = if v < 0 { "-" } else { "" };
        let abs = v.abs();
        write!(f, "{sign}{}.{:04}", abs / 10_000, abs % 10_000)
    }
}

impl ArgValue {
    /// The Cedar expression for this value, for a request's context.
    pub fn to_expression(&self) -> RestrictedExpression {
        match self {
            ArgValue::Bool(b) => RestrictedExpression::new_bool(*b),
            ArgValue::Long(i) => RestrictedExpression::new_long(*i),
            ArgValue::Decimal(d) => RestrictedExpression::new_decimal(d.to_string()),
            ArgValue::String(s) => RestrictedExpression::new_string(s.clone()),
            ArgValue::Set(items) => {
                RestrictedExpression::new_set(items.iter().map(ArgValue::to_expression))
            }
            ArgValue::Record(fields) => record_expression(fields),
        }
    }

    /// The JSON this value stands for: the inverse of normalisation up to set order, duplicates,
    /// `null`s and the precision of a double.
    pub fn to_json(&self) -> Value {
        match self {
            ArgValue::Bool(b) => Value::Bool(*b),
            ArgValue::Long(i) => Value::from(*i),
            ArgValue::Decimal(d) => Value::from(d.to_f64()),
            ArgValue::String(s) => Value::String(s.clone()),
            ArgValue::Set(items) => Value::Array(items.iter().map(ArgValue::to_json).collect()),
            ArgValue::Record(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn record_expression(fields: &BTreeMap<String, ArgValue>) -> RestrictedExpression {
    let pairs = fields.iter().map(|(k, v)| (k.clone(), v.to_expression()));
    match RestrictedExpression::new_record(pairs) {
        Ok(record) => record,
        // A BTreeMap has no duplicate keys, the only reason `new_record` fails; keep the
        // function total all the same.
        Err(_) => RestrictedExpression::new_record(std::iter::empty())
            .unwrap_or_else(|_| RestrictedExpression::new_bool(false)),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> ArgValue {
        normalize_arguments(&json!({ "x": v })).unwrap()
    }

    fn field(v: Value) -> ArgValue {
        match norm(v) {
            ArgValue::Record(mut r) => r.remove("x").unwrap_or(ArgValue::String("<absent>".into())),
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn numbers_map_to_long_decimal_or_text() {
        assert_eq!(field(json!(1000)), ArgValue::Long(1000));
        assert_eq!(field(json!(-5)), ArgValue::Long(-5));
        assert_eq!(field(json!(1000.0)), ArgValue::Long(1000));
        assert_eq!(field(json!(1.5)), ArgValue::Decimal(Decimal(15_000)));
        assert_eq!(field(json!(-0.0001)), ArgValue::Decimal(Decimal(-1)));
        assert_eq!(field(json!(0.12345)), ArgValue::String("0.12345".into()));
        assert_eq!(
            field(json!(u64::MAX)),
            ArgValue::String("18446744073709551615".into())
        );
        assert!(matches!(field(json!(1e300)), ArgValue::String(_)));
    }

    #[test]
    fn the_decimal_view_makes_every_number_a_decimal() {
        let view = |v: Value| normalize_arguments_as_decimal(&json!({ "x": v })).unwrap();
        let one =
            |d: i64| ArgValue::Record([("x".to_owned(), ArgValue::Decimal(Decimal(d)))].into());
        assert_eq!(view(json!(500)), one(5_000_000));
        assert_eq!(view(json!(999.5)), one(9_995_000));
        assert_eq!(view(json!(1e3)), one(10_000_000));
        assert_eq!(
            view(json!(i64::MAX)),
            ArgValue::Record([("x".to_owned(), ArgValue::String(i64::MAX.to_string()))].into())
        );
    }

    #[test]
    fn null_is_absent_and_arrays_are_sets() {
        assert_eq!(field(Value::Null), ArgValue::String("<absent>".into()));
        let set = field(json!([2, 1, 1, null]));
        assert_eq!(
            set,
            ArgValue::Set([ArgValue::Long(1), ArgValue::Long(2)].into())
        );
    }

    #[test]
    fn decimal_text_matches_cedar_literals() {
        assert_eq!(Decimal(15_000).to_string(), "1.5000");
        assert_eq!(Decimal(-1).to_string(), "-0.0001");
        assert_eq!(Decimal(i64::MAX).to_string(), "922337203685477.5807");
        assert_eq!(Decimal::from_text("922337203685477.5808"), None);
        assert_eq!(Decimal::from_text("1.23456"), None);
        assert_eq!(Decimal::from_text("12"), Some(Decimal(120_000)));
    }

    #[test]
    fn rejects_non_objects_and_deep_nesting() {
        assert_eq!(
            normalize_arguments(&json!([1])),
            Err(NormalizeError::NotAnObject("an array"))
        );
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(
            normalize_arguments(&json!({ "d": deep })),
            Err(NormalizeError::TooDeep)
        );
    }
}
