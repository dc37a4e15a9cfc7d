//! Names across upstreams: tool and prompt names carry a per-upstream prefix (or none), and
//! resource URIs map back to the upstream that listed them or whose template matches.

use foldhash::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use serde_json::{Value, json};
use warden_mcp::params::ParamBinding;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameKind {
    Tool,
    Prompt,
}

pub struct Catalog {
    separator: String,
    prefixes: Vec<String>,
    /// Names of upstreams that expose bare (unprefixed) names, learnt from their lists.
    bare: RwLock<HashMap<(NameKind, String), usize>>,
    resources: RwLock<HashMap<String, usize>>,
    templates: RwLock<Vec<(usize, String)>>,
    /// `Mcp-Param-*` bindings of each tool, by exposed name, learnt from tool lists.
    params: RwLock<HashMap<String, Vec<ParamBinding>>>,
    /// The `outputSchema` of each tool that has one, by exposed name.
    outputs: RwLock<HashMap<String, Value>>,
    /// Every tool and prompt name seen in an upstream's list, as exposed.
    /// Names listed by upstreams, as exposed: tools, then prompts (a set each, so that a lookup
    /// by `&str` makes no `String`).
    known: RwLock<[foldhash::HashSet<String>; 2]>,
}

/// A read guard that survives a panicked writer (the data are plain maps, never half-written).
pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// A mutex guard that survives a panicked holder, for the same reason.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Catalog {
    pub fn new(separator: &str, prefixes: Vec<String>) -> Catalog {
        Catalog {
            separator: separator.to_string(),
            prefixes,
            bare: RwLock::default(),
            resources: RwLock::default(),
            templates: RwLock::default(),
            params: RwLock::default(),
            outputs: RwLock::default(),
            known: RwLock::default(),
        }
    }

    /// The name a client sees for `name` of upstream `index`.
    pub fn expose(&self, index: usize, name: &str) -> String {
        match self.prefixes[index].as_str() {
            "" => name.to_string(),
            prefix => format!("{prefix}{}{name}", self.separator),
        }
    }

    /// The upstream and its own name for a name a client used.
    pub fn resolve(&self, kind: NameKind, exposed: &str) -> Option<(usize, String)> {
        for (i, prefix) in self.prefixes.iter().enumerate() {
            if prefix.is_empty() {
                continue;
            }
            if let Some(rest) = exposed
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix(self.separator.as_str()))
                && !rest.is_empty()
            {
                return Some((i, rest.to_string()));
            }
        }
        if let Some(&i) = read(&self.bare).get(&(kind, exposed.to_string())) {
            return Some((i, exposed.to_string()));
        }
        let mut bare = self
            .prefixes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_empty());
        match (bare.next(), bare.next()) {
            // One upstream exposes bare names: it answers for any unclaimed name itself.
            (Some((i, _)), None) => Some((i, exposed.to_string())),
            _ => None,
        }
    }

    /// Whether an upstream has listed this name.
    pub fn knows(&self, kind: NameKind, exposed: &str) -> bool {
        read(&self.known)[kind as usize].contains(exposed)
    }

    /// Every name of `kind` an upstream has listed, as exposed.
    pub fn known_names(&self, kind: NameKind) -> Vec<String> {
        read(&self.known)[kind as usize].iter().cloned().collect()
    }

    pub fn learn_name(&self, kind: NameKind, index: usize, name: &str) {
        write(&self.known)[kind as usize].insert(self.expose(index, name));
        if self.prefixes[index].is_empty() {
            write(&self.bare)
                .entry((kind, name.to_string()))
                .or_insert(index);
        }
    }

    pub fn learn_params(&self, exposed: &str, input_schema: &Value) {
        write(&self.params).insert(
            exposed.to_string(),
            warden_mcp::params::bindings(input_schema),
        );
    }

    pub fn learn_output_schema(&self, exposed: &str, schema: Option<&Value>) {
        let mut outputs = write(&self.outputs);
        match schema {
            Some(s) if outputs.get(exposed) != Some(s) => {
                outputs.insert(exposed.to_string(), s.clone());
            }
            Some(_) => {}
            None => {
                outputs.remove(exposed);
            }
        }
    }

    /// A tool's `outputSchema`, if its definition has been seen and has one.
    pub fn output_schema(&self, exposed: &str) -> Option<Value> {
        read(&self.outputs).get(exposed).cloned()
    }

    /// The `Mcp-Param-*` bindings of a tool, if its definition has been seen.
    pub fn params(&self, exposed: &str) -> Option<Vec<ParamBinding>> {
        read(&self.params).get(exposed).cloned()
    }

    pub fn learn_resource(&self, index: usize, uri: &str) {
        write(&self.resources).insert(uri.to_string(), index);
    }

    pub fn learn_template(&self, index: usize, template: &str) {
        let mut t = write(&self.templates);
        if !t.iter().any(|(i, s)| *i == index && s == template) {
            t.push((index, template.to_string()));
        }
    }

    /// The upstream that owns a resource URI: the one that listed it, else the one whose
    /// template matches it.
    pub fn resource_owner(&self, uri: &str) -> Option<usize> {
        if let Some(&i) = read(&self.resources).get(uri) {
            return Some(i);
        }
        read(&self.templates)
            .iter()
            .find(|(_, t)| template_matches(t, uri))
            .map(|(i, _)| *i)
    }
}

/// Whether a URI fits an RFC 6570 template: literals match exactly, `{var}` matches one or more
/// characters other than `/` (`{+var}` and `{#var}` may span `/`).
pub fn template_matches(template: &str, uri: &str) -> bool {
    fn go(t: &str, u: &str) -> bool {
        match t.find('{') {
            None => t == u,
            Some(open) => {
                let (lit, rest) = t.split_at(open);
                let Some(u) = u.strip_prefix(lit) else {
                    return false;
                };
                let Some(close) = rest.find('}') else {
                    return false;
                };
                let expr = &rest[1..close];
                let after = &rest[close + 1..];
                let spans_slash = expr.starts_with('+') || expr.starts_with('#');
                let limit = if spans_slash {
                    u.len()
                } else {
                    u.find('/').unwrap_or(u.len())
                };
                (1..=limit)
                    .rev()
                    .any(|n| u.is_char_boundary(n) && go(after, &u[n..]))
            }
        }
    }
    go(template, uri)
}

/// Where a merged list stands: which upstream, and that upstream's own cursor.
pub fn encode_cursor(index: usize, upstream_cursor: Option<&str>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!([index, upstream_cursor]).to_string())
}

pub fn decode_cursor(cursor: &str) -> Option<(usize, Option<String>)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let index = usize::try_from(v.get(0)?.as_u64()?).ok()?;
    let inner = match v.get(1)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => return None,
    };
    Some((index, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_route_names_back() {
        let c = Catalog::new("__", vec!["files".into(), "fx".into()]);
        assert_eq!(c.expose(1, "echo"), "fx__echo");
        assert_eq!(
            c.resolve(NameKind::Tool, "fx__echo"),
            Some((1, "echo".into()))
        );
        assert_eq!(
            c.resolve(NameKind::Tool, "fx__a__b"),
            Some((1, "a__b".into()))
        );
        assert_eq!(c.resolve(NameKind::Tool, "nosuch__echo"), None);
        assert_eq!(c.resolve(NameKind::Tool, "fx__"), None);
        assert_eq!(c.resolve(NameKind::Tool, "echo"), None);
    }

    #[test]
    fn one_bare_upstream_takes_unclaimed_names() {
        let c = Catalog::new("__", vec!["".into(), "fx".into()]);
        assert_eq!(c.expose(0, "echo"), "echo");
        assert_eq!(c.resolve(NameKind::Tool, "echo"), Some((0, "echo".into())));
        assert_eq!(
            c.resolve(NameKind::Tool, "fx__echo"),
            Some((1, "echo".into()))
        );
    }

    #[test]
    fn templates_match_like_rfc6570_level_1() {
        assert!(template_matches(
            "test://template/{id}/data",
            "test://template/123/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template/1/2/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template//data"
        ));
        assert!(template_matches("file://{+path}", "file://a/b/c"));
        assert!(!template_matches("a://{x}", "b://y"));
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        assert_eq!(
            decode_cursor(&encode_cursor(2, Some("abc"))),
            Some((2, Some("abc".into())))
        );
        assert_eq!(decode_cursor(&encode_cursor(0, None)), Some((0, None)));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(
            decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[\"x\"]")),
            None
        );
    }
}
