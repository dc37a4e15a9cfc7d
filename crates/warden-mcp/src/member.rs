//! Looking up a member of a small JSON object without hashing its key.
//!
//! serde_json's maps (an `IndexMap` under std's `RandomState`, with `preserve_order`) hash
//! the key of every lookup with SipHash, about 270 instructions for a key like `"_meta"`
//! (callgrind). The objects a call's path reads on every request — `params`, its `_meta`, an
//! error — have a handful of members, and comparing the key with each of them costs a
//! fraction of that. Objects of more than [`SCAN_UP_TO`] members are looked up by hash.

use serde_json::{Map, Value};

/// Up to this many members, a lookup compares keys one by one.
pub const SCAN_UP_TO: usize = 8;

/// Lookups on the members of a JSON object, cheap for small objects.
pub trait Members {
    /// The value of member `key`.
    fn member(&self, key: &str) -> Option<&Value>;
    /// The value of member `key`, to change it in place.
    fn member_mut(&mut self, key: &str) -> Option<&mut Value>;
    /// Whether the object has a member `key`.
    fn has_member(&self, key: &str) -> bool {
        self.member(key).is_some()
    }
}

impl Members for Map<String, Value> {
    fn member(&self, key: &str) -> Option<&Value> {
        if self.len() > SCAN_UP_TO {
            return self.get(key);
        }
        self.iter().find_map(|(k, v)| (k == key).then_some(v))
    }

    fn member_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.len() > SCAN_UP_TO {
            return self.get_mut(key);
        }
        self.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(members: usize) -> Map<String, Value> {
        (0..members).map(|i| (format!("k{i}"), json!(i))).collect()
    }

    #[test]
    fn small_and_large_objects_find_the_same_members() {
        for size in [0, 1, SCAN_UP_TO, SCAN_UP_TO + 1, 40] {
            let mut o = object(size);
            for i in 0..size {
                let key = format!("k{i}");
                assert_eq!(o.member(&key), o.get(&key), "{key} of {size}");
                assert!(o.has_member(&key));
                *o.member_mut(&key).unwrap() = json!("changed");
                assert_eq!(o[&key], "changed");
            }
            assert_eq!(o.member("absent"), None);
            assert!(o.member_mut("absent").is_none());
            assert!(!o.has_member("k"), "a prefix of a key is not the key");
        }
    }
}
