//! From policy files to checked policies: parse each statement, read Warden's annotations
//! (`@id`, `@consent`), validate everything against the schema, and report every problem with
//! its file, line and column.
//!
//! [`read_dir`] is the crate's only I/O.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cedar_policy::{
    Context, Effect, Policy, PolicyId, PolicySet, RestrictedExpression, ValidationMode,
    ValidationWarning, Validator,
};
use miette::Diagnostic;

use crate::consent::ConsentRule;
use crate::data::DataRule;
use crate::error::{PolicyError, PolicyErrors};
use crate::reads::Reads;
use crate::schema;
use crate::source::{LineIndex, Statement, split_statements};

/// A policy that parsed, with what Warden reads from it.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub policy: Policy,
    /// What the policy reads from the context.
    pub reads: Reads,
    pub meta: PolicyMeta,
}

/// Where a policy came from and how it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyMeta {
    /// `@id("…")`, or `file:line` of the policy's first token.
    pub id: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub forbid: bool,
    pub consent: Option<ConsentRule>,
    /// `@approvers("group")` on a consent permit: a member of this group approves, never the
    /// caller (four eyes).
    pub approvers: Option<String>,
    /// `@dlp_results` / `@dlp_arguments`: a data rule, which grants nothing ([`crate::data`]).
    pub data: Option<Arc<DataRule>>,
}

/// A validated policy set and the validator's warnings (for lint).
pub(crate) struct Checked {
    pub policies: Vec<Loaded>,
    pub warnings: Vec<(usize, String)>,
}

/// Reads every `*.cedar` file directly in `dir`, sorted by name; each is named `dir/name`.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyErrors> {
    let whole = |message: String| {
        PolicyErrors(vec![PolicyError {
            file: dir.display().to_string(),
            line: 0,
            column: 0,
            message,
        }])
    };
    let entries = std::fs::read_dir(dir).map_err(|e| whole(format!("cannot read: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| whole(format!("cannot read: {e}")))?
            .path();
        if path.extension().is_some_and(|ext| ext == "cedar") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((path.display().to_string(), text)),
            Err(e) => errors.push(PolicyError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(PolicyErrors(errors))
    }
}

/// Parses and validates `(file name, text)` pairs.
pub(crate) fn check(files: &[(String, String)]) -> Result<Checked, PolicyErrors> {
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    // Per policy: (file index, offset of its statement), to place validation errors.
    let mut origins = Vec::new();
    let mut seen_ids: HashMap<String, (String, usize)> = HashMap::new();
    let indexes: Vec<LineIndex<'_>> = files.iter().map(|(_, text)| LineIndex::new(text)).collect();

    for (file_no, (file, text)) in files.iter().enumerate() {
        let index = &indexes[file_no];
        for statement in split_statements(text) {
            let at = |offset: usize, message: String| {
                let (line, column) = index.line_col(offset);
                PolicyError {
                    file: file.clone(),
                    line,
                    column,
                    message,
                }
            };
            match parse_statement(file, index, statement) {
                Err(problems) => {
                    errors.extend(problems.into_iter().map(|(offset, m)| at(offset, m)));
                }
                Ok(one) => {
                    if let Some((other_file, other_line)) = seen_ids.get(&one.meta.id) {
                        errors.push(at(
                            statement.offset,
                            format!(
                                "policy id {:?} is already used at {other_file}:{other_line}",
                                one.meta.id
                            ),
                        ));
                        continue;
                    }
                    seen_ids.insert(one.meta.id.clone(), (file.clone(), one.meta.line));
                    origins.push((file_no, statement.offset));
                    loaded.push(one);
                }
            }
        }
    }

    let warnings = validate(files, &indexes, &loaded, &origins, &mut errors);
    if errors.is_empty() {
        Ok(Checked {
            policies: loaded,
            warnings,
        })
    } else {
        Err(PolicyErrors(errors))
    }
}

/// Parses one statement; on failure, the problems as (file offset, message).
fn parse_statement(
    file: &str,
    index: &LineIndex<'_>,
    statement: Statement<'_>,
) -> Result<Loaded, Vec<(usize, String)>> {
    let (line, column) = index.line_col(statement.offset);
    let default_id = format!("{file}:{line}");
    let policy =
        Policy::parse(Some(PolicyId::new(&default_id)), statement.text).map_err(|errs| {
            errs.iter()
                .map(|e| (statement.offset + first_offset(e), describe(e)))
                .collect::<Vec<_>>()
        })?;
    let here = |m: String| vec![(statement.offset, m)];
    let forbid = policy.effect() == Effect::Forbid;
    let id = match policy.annotation("id") {
        None => default_id,
        Some(id) if id.trim().is_empty() => return Err(here("@id must not be empty".into())),
        Some(id) => id.to_owned(),
    };
    let consent = match policy.annotation("consent") {
        None => None,
        Some(_) if forbid => {
            return Err(here(
                "@consent belongs on a permit policy; a forbid always denies".into(),
            ));
        }
        Some(value) => Some(ConsentRule::parse(value).map_err(here)?),
    };
    let approvers = match policy.annotation("approvers") {
        None => None,
        Some(_) if consent.is_none() => {
            return Err(here(
                "@approvers belongs on a permit with @consent: it names who approves".into(),
            ));
        }
        Some(group) if group.trim().is_empty() => {
            return Err(here("@approvers must name a group".into()));
        }
        Some(group) => Some(group.trim().to_owned()),
    };
    let data = DataRule::parse(
        policy.annotation("dlp_results"),
        policy.annotation("dlp_arguments"),
    )
    .map_err(here)?;
    if data.is_some() && (forbid || consent.is_some()) {
        return Err(here(
            "@dlp_results and @dlp_arguments belong on a plain permit: a data rule grants nothing, so it cannot forbid or ask for consent".into(),
        ));
    }
    // The JSON form (one more parse of the text) serves the literal check and `Reads`.
    let reads = match policy.to_json() {
        Ok(json) => {
            check_literals(&json, statement)?;
            Reads::from_json(&json)
        }
        Err(_) => Reads::ALL,
    };
    let policy = policy.new_id(PolicyId::new(&id));
    Ok(Loaded {
        policy,
        reads,
        meta: PolicyMeta {
            id,
            file: file.to_owned(),
            line,
            column,
            forbid,
            consent,
            approvers,
            data: data.map(Arc::new),
        },
    })
}

/// Cedar's validator accepts any string in `decimal("…")`, `ip("…")`, `datetime("…")` and
/// `duration("…")`; a malformed one (`decimal("1000")` lacks its `.0`) would make the policy fail
/// at every evaluation. Such literals are load errors here.
fn check_literals(
    json: &serde_json::Value,
    statement: Statement<'_>,
) -> Result<(), Vec<(usize, String)>> {
    let mut calls = Vec::new();
    extension_literals(json, &mut calls);
    let problems: Vec<(usize, String)> = calls
        .into_iter()
        .filter_map(|(function, text)| {
            let expression = match function {
                "decimal" => RestrictedExpression::new_decimal(&text),
                "ip" => RestrictedExpression::new_ip(&text),
                "datetime" => RestrictedExpression::new_datetime(&text),
                _ => RestrictedExpression::new_duration(&text),
            };
            let error = Context::from_pairs([("literal".to_owned(), expression)]).err()?;
            let quoted = format!("{text:?}");
            let at = statement.text.find(&quoted).unwrap_or(0);
            let hint = if function == "decimal" {
                " (a decimal needs a fraction of 1 to 4 digits, e.g. \"1000.0\")"
            } else {
                ""
            };
            Some((
                statement.offset + at,
                format!("{function}({quoted}) is not a valid literal: {error}{hint}"),
            ))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Calls of the extension constructors on a string literal, in a policy's JSON form
/// (`{"decimal": [{"Value": "1.5"}]}`).
fn extension_literals(v: &serde_json::Value, out: &mut Vec<(&'static str, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for function in ["decimal", "ip", "datetime", "duration"] {
                if let Some(serde_json::Value::Array(args)) = map.get(function)
                    && let [arg] = args.as_slice()
                    && let Some(serde_json::Value::String(text)) = arg.get("Value")
                {
                    out.push((function, text.clone()));
                }
            }
            map.values()
                .for_each(|child| extension_literals(child, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|c| extension_literals(c, out)),
        _ => {}
    }
}

/// Validates the parsed policies against the schema; pushes errors and returns warnings as
/// (policy position, message).
fn validate(
    files: &[(String, String)],
    indexes: &[LineIndex<'_>],
    loaded: &[Loaded],
    origins: &[(usize, usize)],
    errors: &mut Vec<PolicyError>,
) -> Vec<(usize, String)> {
    let schema = match schema::schema() {
        Ok(schema) => schema,
        Err(message) => {
            errors.push(PolicyError {
                file: "<warden schema>".into(),
                line: 0,
                column: 0,
                message: message.clone(),
            });
            return Vec::new();
        }
    };
    let position: HashMap<&str, usize> = loaded
        .iter()
        .enumerate()
        .map(|(i, l)| (l.meta.id.as_str(), i))
        .collect();
    let set = match PolicySet::from_policies(loaded.iter().map(|l| l.policy.clone())) {
        Ok(set) => set,
        Err(e) => {
            // Ids were made unique above; report rather than panic should that ever change.
            errors.push(PolicyError {
                file: "<policy set>".into(),
                line: 0,
                column: 0,
                message: e.to_string(),
            });
            return Vec::new();
        }
    };
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let place = |id: &PolicyId, diagnostic: &dyn Diagnostic| {
        let i = position.get(AsRef::<str>::as_ref(id)).copied().unwrap_or(0);
        let (file_no, base) = origins.get(i).copied().unwrap_or((0, 0));
        let (line, column) = indexes
            .get(file_no)
            .map_or((0, 0), |ix| ix.line_col(base + first_offset(diagnostic)));
        (i, file_no, line, column)
    };
    let mut failed = std::collections::HashSet::new();
    for e in result.validation_errors() {
        let (i, file_no, line, column) = place(e.policy_id(), e);
        failed.insert(i);
        errors.push(PolicyError {
            file: files.get(file_no).map_or_else(String::new, |f| f.0.clone()),
            line,
            column,
            message: describe(e),
        });
    }
    let mut warnings = Vec::new();
    for w in result.validation_warnings() {
        let (i, file_no, line, column) = place(w.policy_id(), w);
        match w {
            // The scope pairs an action with a resource type it does not apply to: the policy
            // can never match, which for a forbid silently removes a protection.
            ValidationWarning::InvalidActionApplication(_) if failed.contains(&i) => {}
            ValidationWarning::InvalidActionApplication(_) => errors.push(PolicyError {
                file: files.get(file_no).map_or_else(String::new, |f| f.0.clone()),
                line,
                column,
                message: describe(w),
            }),
            // `context.arguments has x` is false for the validator (the record declares no
            // attributes), so every policy reading an argument looks impossible to it.
            ValidationWarning::ImpossiblePolicy(_) if reads_arguments(&loaded[i].policy) => {}
            _ => warnings.push((i, describe(w))),
        }
    }
    warnings
}

fn reads_arguments(policy: &Policy) -> bool {
    policy.to_string().contains("arguments")
}

/// Offset of a diagnostic's first label within the text that was parsed, or 0.
fn first_offset(d: &dyn Diagnostic) -> usize {
    d.labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |label| label.offset())
}

/// The diagnostic's message, with its help when it has one, without Cedar's "for policy `id`, "
/// prefix (the error's place already says which policy).
fn describe(d: &dyn Diagnostic) -> String {
    let text = d.to_string();
    let text = match text
        .strip_prefix("for policy `")
        .and_then(|r| r.split_once("`, "))
    {
        Some((_, rest)) => rest.to_owned(),
        None => text,
    };
    match d.help() {
        Some(help) => format!("{text} (help: {help})"),
        None => text,
    }
}
