//! What each policy reads from the context, so that a decision builds only that.
//!
//! A policy observes the context only through `context.X` and `context has X` (or uses it whole),
//! and the arguments only through `context.arguments.X` and `context.arguments has X` (or uses
//! them whole). Whatever no candidate policy of a request reads is left out of its context:
//! nothing can tell, and a 100 kB `content` argument is not copied for a policy about `path`.
//! A consequence worth knowing: an argument no policy reads is not normalised, so it cannot
//! make a decision fail (e.g. by nesting too deep).

use std::collections::BTreeSet;

use serde_json::Value;

/// The fields of one argument view (`arguments` or `decimal_arguments`) that are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Fields {
    #[default]
    None,
    Some(BTreeSet<String>),
    All,
}

/// The context a policy (or a set of policies) reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    pub arguments: Fields,
    pub decimal_arguments: Fields,
    pub now: bool,
    pub client_ip: bool,
}

impl Reads {
    pub const NONE: Reads = Reads {
        arguments: Fields::None,
        decimal_arguments: Fields::None,
        now: false,
        client_ip: false,
    };

    pub const ALL: Reads = Reads {
        arguments: Fields::All,
        decimal_arguments: Fields::All,
        now: true,
        client_ip: true,
    };

    /// From a policy; anything unexpected reads everything.
    #[cfg(test)]
    pub fn of(policy: &cedar_policy::Policy) -> Reads {
        match policy.to_json() {
            Ok(json) => Reads::from_json(&json),
            Err(_) => Reads::ALL,
        }
    }

    /// From a policy's JSON form (`Policy::to_json`).
    pub fn from_json(json: &Value) -> Reads {
        let mut reads = Reads::default();
        if walk(json, &mut reads) {
            reads
        } else {
            Reads::ALL
        }
    }

    /// Adds what `other` reads.
    pub fn add(&mut self, other: &Reads) {
        self.arguments.add(&other.arguments);
        self.decimal_arguments.add(&other.decimal_arguments);
        self.now |= other.now;
        self.client_ip |= other.client_ip;
    }
}

impl Fields {
    fn add(&mut self, other: &Fields) {
        match (&mut *self, other) {
            (Fields::All, _) | (_, Fields::None) => {}
            (_, Fields::All) => *self = Fields::All,
            (Fields::None, Fields::Some(b)) => *self = Fields::Some(b.clone()),
            (Fields::Some(a), Fields::Some(b)) => a.extend(b.iter().cloned()),
        }
    }

    fn read(&mut self, name: &str) {
        match self {
            Fields::All => {}
            Fields::None => *self = Fields::Some(BTreeSet::from([name.to_owned()])),
            Fields::Some(set) => {
                set.insert(name.to_owned());
            }
        }
    }

    /// Whether the argument `name` is read.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            Fields::None => false,
            Fields::Some(set) => set.contains(name),
            Fields::All => true,
        }
    }

    pub fn any(&self) -> bool {
        *self != Fields::None
    }
}

/// What the candidate policies of one request read together: the union of a few [`Reads`].
#[derive(Clone, Copy)]
pub(crate) struct Wanted<'a>(pub &'a [&'a Reads]);

impl Wanted<'_> {
    pub fn arguments(&self, decimal: bool) -> bool {
        self.0.iter().any(|r| r.view(decimal).any())
    }

    pub fn argument(&self, decimal: bool, name: &str) -> bool {
        self.0.iter().any(|r| r.view(decimal).wants(name))
    }

    pub fn now(&self) -> bool {
        self.0.iter().any(|r| r.now)
    }

    pub fn client_ip(&self) -> bool {
        self.0.iter().any(|r| r.client_ip)
    }
}

impl Reads {
    fn view(&self, decimal: bool) -> &Fields {
        if decimal {
            &self.decimal_arguments
        } else {
            &self.arguments
        }
    }
}

fn is_context(v: &Value) -> bool {
    v.get("Var").and_then(Value::as_str) == Some("context")
}

/// `context.<attr>` → `attr`.
fn context_attr(v: &Value) -> Option<&str> {
    let access = v.get(".")?;
    if is_context(access.get("left")?) {
        access.get("attr")?.as_str()
    } else {
        None
    }
}

/// Records what `v` reads; false if it uses `context` whole.
fn walk(v: &Value, reads: &mut Reads) -> bool {
    match v {
        Value::Object(map) => {
            if is_context(v) {
                return false;
            }
            for (key, child) in map {
                if key == "." || key == "has" {
                    let left = child.get("left");
                    let attr = child.get("attr").and_then(Value::as_str);
                    if let (Some(left), Some(attr)) = (left, attr) {
                        // `context.arguments.X` / `context.arguments has X`
                        match context_attr(left) {
                            Some("arguments") => {
                                reads.arguments.read(attr);
                                continue;
                            }
                            Some("decimal_arguments") => {
                                reads.decimal_arguments.read(attr);
                                continue;
                            }
                            _ => {}
                        }
                        // `context.X` / `context has X`
                        if is_context(left) {
                            match attr {
                                "arguments" => reads.arguments = Fields::All,
                                "decimal_arguments" => reads.decimal_arguments = Fields::All,
                                "now" => reads.now = true,
                                "client_ip" => reads.client_ip = true,
                                _ => {}
                            }
                            continue;
                        }
                    }
                }
                if !walk(child, reads) {
                    return false;
                }
            }
            true
        }
        Value::Array(items) => items.iter().all(|c| walk(c, reads)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::{Policy, PolicyId};

    fn reads(when: &str) -> Reads {
        let text = format!("permit (principal, action, resource) when {{ {when} }};");
        Reads::of(&Policy::parse(Some(PolicyId::new("p")), text).unwrap())
    }

    fn some(names: &[&str]) -> Fields {
        Fields::Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn finds_the_arguments_and_attributes_read() {
        assert_eq!(reads("true"), Reads::default());
        let r = reads(
            "context.arguments has amount && context.arguments.amount > 5 && context[\"arguments\"][\"to\"] == \"x\"",
        );
        assert_eq!(r.arguments, some(&["amount", "to"]));
        assert_eq!(r.decimal_arguments, Fields::None);
        let r = reads(
            "context has client_ip && context.client_ip.isLoopback() && context.now < datetime(\"2030-01-01\")",
        );
        assert!(r.client_ip && r.now && !r.arguments.any());
        let r = reads(
            "context.decimal_arguments has a && context.decimal_arguments.a.lessThan(decimal(\"1.0\"))",
        );
        assert_eq!(r.decimal_arguments, some(&["a"]));
    }

    #[test]
    fn whole_uses_read_everything() {
        assert_eq!(reads("context.arguments == {}").arguments, Fields::All);
        assert_eq!(reads("context == {}"), Reads::ALL);
        assert_eq!(
            reads("resource.name == \"arguments\"").arguments,
            Fields::None
        );
    }

    #[test]
    fn reads_add_up() {
        let mut r = reads("context.arguments has a");
        r.add(&reads(
            "context.arguments has b && context.now > datetime(\"2020-01-01\")",
        ));
        assert_eq!(r.arguments, some(&["a", "b"]));
        assert!(r.now);
        r.add(&reads("context.arguments == {}"));
        assert_eq!(r.arguments, Fields::All);
    }
}
