//! How a message is held: its top-level members in order ([`Fields`]), its `result` kept as text
//! until read ([`RawResult`]), and the parse of one object into both ([`Frame`]).

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A message's top-level members in the order they arrived. A message has a handful of them,
/// so finding one by comparing names costs less than hashing the name (as a JSON map does);
/// that hashing, on every read of `id`, `method` or `params`, was a tenth of a relayed call.
#[derive(Clone, Debug, Default)]
pub(super) struct Fields(pub(super) Vec<(String, Value)>);

impl Fields {
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    /// Sets `key`, in its place if it is there (a repeated key keeps its first place and its
    /// last value, as in a JSON map), else last.
    pub(super) fn insert(&mut self, key: &str, value: Value) -> &mut Value {
        let i = match self.position(key) {
            Some(i) => {
                self.0[i].1 = value;
                i
            }
            None => {
                self.0.push((key.to_string(), value));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    pub(super) fn insert_at(&mut self, at: usize, key: &str, value: Value) {
        self.remove(key);
        self.0
            .insert(at.min(self.0.len()), (key.to_string(), value));
    }

    /// The value of `key`, set (last) to what `make` gives if there is none.
    pub(super) fn get_or_insert_with(
        &mut self,
        key: &str,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        match self.position(key) {
            Some(i) => &mut self.0[i].1,
            None => self.insert(key, make()),
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.0.remove(i).1)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn into_map(self) -> Map<String, Value> {
        self.0.into_iter().collect()
    }
}

/// A `result` not parsed yet, and where it stood among the body's keys.
#[derive(Clone, Debug)]
pub(super) struct RawResult {
    pub(super) at: usize,
    /// Always one JSON value: checked when it was parsed or set.
    pub(super) text: Box<str>,
    pub(super) parsed: OnceLock<Value>,
    /// `resultType` and `isError`, read from the text once: the pipeline asks several times.
    /// Boxed, so that every message stays as small as before.
    pub(super) head: OnceLock<Box<Option<ResultHead>>>,
}

impl RawResult {
    pub(super) fn value(&self) -> &Value {
        // The text was checked to be JSON when the message was parsed.
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    pub(super) fn into_value(self) -> Value {
        match self.parsed.into_inner() {
            Some(v) => v,
            None => serde_json::from_str(&self.text).unwrap_or(Value::Null),
        }
    }
}

/// A message's top-level object with `result` kept as text.
pub(super) struct Frame {
    pub(super) body: Fields,
    pub(super) result: Option<RawResult>,
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Frame, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Frame;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame, A::Error> {
                let (mut body, mut result) = (Fields::default(), None);
                while let Some(key) = map.next_key::<String>()? {
                    if key == "result" {
                        let text: Box<RawValue> = map.next_value()?;
                        // A repeated result keeps the first one's place.
                        let at = result.as_ref().map_or(body.len(), |r: &RawResult| r.at);
                        result = Some(RawResult {
                            at,
                            text: text.into(),
                            parsed: OnceLock::new(),
                            head: OnceLock::new(),
                        });
                    } else {
                        let value: Value = map.next_value()?;
                        match body.get_mut(&key) {
                            Some(v) => *v = value,
                            None => body.0.push((key, value)),
                        }
                    }
                }
                Ok(Frame { body, result })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The fields of a result that say what kind of result it is.
#[derive(Deserialize, Clone, Debug)]
pub(super) struct ResultHead {
    #[serde(rename = "resultType")]
    pub(super) result_type: Option<String>,
    #[serde(rename = "isError")]
    pub(super) is_error: Option<bool>,
}
