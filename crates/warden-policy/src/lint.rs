//! Findings about a policy set that loads but probably does not say what its author meant:
//! it names tools or servers that no upstream offers, reads arguments a tool does not take, or
//! draws one of Cedar's warnings.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use cedar_policy::{Policy, ResourceConstraint};
use serde_json::Value;

use crate::load::PolicyMeta;

/// A tool that a configured upstream offers, as `tools/list` reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub server: String,
    /// The name as the upstream knows it (without Warden's server prefix).
    pub name: String,
    /// The tool's `inputSchema`, when known: its `properties` are the argument names policies
    /// may read.
    pub input_schema: Option<Value>,
}

/// One finding; policies that draw findings still load and decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    /// The policy's id; empty for a finding about the whole set.
    pub policy: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.policy.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: policy {}: {}",
                self.file, self.line, self.column, self.policy, self.message
            )
        }
    }
}

pub(crate) fn lint(
    policies: &[Policy],
    metas: &[PolicyMeta],
    warnings: &[(usize, String)],
    tools: &[ToolInfo],
) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    if policies.is_empty() {
        findings.push(LintFinding {
            policy: String::new(),
            file: String::new(),
            line: 0,
            column: 0,
            message: "the policy set is empty: every request is denied".into(),
        });
    }
    let offered: HashMap<String, &ToolInfo> = tools
        .iter()
        .map(|t| (format!("{}.{}", t.server, t.name), t))
        .collect();
    let servers: HashSet<&str> = tools.iter().map(|t| t.server.as_str()).collect();

    for (i, (policy, meta)) in policies.iter().zip(metas).enumerate() {
        let mut say = |message: String| {
            findings.push(LintFinding {
                policy: meta.id.clone(),
                file: meta.file.clone(),
                line: meta.line,
                column: meta.column,
                message,
            });
        };
        for (_, w) in warnings.iter().filter(|(at, _)| *at == i) {
            say(format!("warning: {w}"));
        }
        let Ok(json) = policy.to_json() else { continue };
        let mut entities = BTreeSet::new();
        entity_literals(&json, &mut entities);
        for (ty, id) in &entities {
            match ty.as_str() {
                "Tool" if !offered.contains_key(id) => say(format!(
                    "names Tool::{id:?}, which no configured upstream offers"
                )),
                "Server" if !servers.contains(id.as_str()) => say(format!(
                    "names Server::{id:?}, which is not a configured upstream offering tools"
                )),
                _ => {}
            }
        }
        if let ResourceConstraint::Eq(uid) = policy.resource_constraint()
            && uid.type_name().to_string() == "Tool"
            && let Some(properties) = offered
                .get(uid.id().unescaped())
                .and_then(|t| t.input_schema.as_ref())
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
        {
            let mut read = BTreeSet::new();
            argument_names(&json, &mut read);
            for name in read.iter().filter(|n| !properties.contains_key(*n)) {
                say(format!(
                    "reads context.arguments.{name}, but the tool's inputSchema has no such property"
                ));
            }
        }
    }
    findings
}

/// Every entity literal `{"type": T, "id": I}` in a policy's JSON form.
fn entity_literals(v: &Value, out: &mut BTreeSet<(String, String)>) {
    match v {
        Value::Object(map) => {
            if let (Some(Value::String(ty)), Some(Value::String(id))) =
                (map.get("type"), map.get("id"))
            {
                out.insert((ty.clone(), id.clone()));
            }
            map.values().for_each(|child| entity_literals(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| entity_literals(child, out)),
        _ => {}
    }
}

/// The top-level argument names a policy reads: `context.arguments.X` and
/// `context.arguments has X` (and the same in `decimal_arguments`).
fn argument_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for op in [".", "has"] {
                if let Some(Value::Object(access)) = map.get(op)
                    && access.get("left").is_some_and(is_context_arguments)
                    && let Some(Value::String(attr)) = access.get("attr")
                {
                    out.insert(attr.clone());
                }
            }
            map.values().for_each(|child| argument_names(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| argument_names(child, out)),
        _ => {}
    }
}

/// `context.arguments` or `context.decimal_arguments`.
fn is_context_arguments(v: &Value) -> bool {
    v.get(".").is_some_and(|access| {
        access
            .get("attr")
            .and_then(Value::as_str)
            .is_some_and(|a| a == "arguments" || a == "decimal_arguments")
            && access.get("left").and_then(|l| l.get("Var")) == Some(&Value::from("context"))
    })
}
