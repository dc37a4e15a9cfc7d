//! `[dlp]`: which personal data and secrets Warden looks for in what crosses it, and what it
//! does with each kind — per direction (results coming back, arguments going out) and per scope
//! (upstream, tool, user group).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;
use warden_dlp::{Action, BUILTIN_DETECTORS, CustomRule, Validator};

use super::raw::{Check, relative_to};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDlp {
    enabled: Option<bool>,
    key: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    results: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    arguments: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    custom: Vec<Spanned<RawCustom>>,
    #[serde(default)]
    scope: Vec<Spanned<RawScope>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustom {
    id: String,
    regex: String,
    #[serde(default)]
    keywords: Vec<String>,
    validator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    upstream: Option<String>,
    tool: Option<String>,
    group: Option<String>,
    #[serde(default)]
    results: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    arguments: BTreeMap<String, Spanned<String>>,
}

/// The action for each detector, `None` where the detector is off.
pub type Actions = BTreeMap<String, Option<Action>>;

/// Where a scope's actions apply: every field given must match the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeMatch {
    /// An upstream's name.
    pub upstream: Option<String>,
    /// A tool or prompt by the name clients see (`demo__lookup_customer`).
    pub tool: Option<String>,
    /// A group of the caller.
    pub group: Option<String>,
}

/// Actions that replace the defaults for calls the scope matches.
#[derive(Clone, Debug)]
pub struct DlpScope {
    pub when: ScopeMatch,
    pub results: Actions,
    pub arguments: Actions,
}

#[derive(Clone, Debug)]
pub struct DlpConfig {
    /// Off only when the config says `enabled = false`.
    pub enabled: bool,
    /// The pseudonym key (32 random bytes, created with mode 0600 when missing).
    pub key: PathBuf,
    /// Exact values never reported (example keys from documentation, a test card).
    pub allow: Vec<String>,
    /// Custom detectors, by id.
    pub custom: Vec<(String, CustomRule)>,
    /// For what comes back: every detector's action.
    pub results: Actions,
    /// For what agents send: every detector's action.
    pub arguments: Actions,
    /// The first scope that matches a call replaces the actions it names.
    pub scopes: Vec<DlpScope>,
}

impl DlpConfig {
    /// Every detector, built-in and custom: what data rules may name.
    pub fn detectors(&self) -> Vec<String> {
        self.results.keys().cloned().collect()
    }
}

/// The built-in defaults: every detector masks results; secrets block arguments, personal
/// data in arguments is reported.
fn defaults(custom: &[(String, CustomRule)]) -> (Actions, Actions) {
    let ids = BUILTIN_DETECTORS
        .iter()
        .map(|s| (*s).to_string())
        .chain(custom.iter().map(|(id, _)| id.clone()));
    let mut results = Actions::new();
    let mut arguments = Actions::new();
    for id in ids {
        results.insert(id.clone(), Some(Action::Mask));
        // Secrets have no business in what an agent sends out; personal data in arguments (an
        // address to write to) is only reported.
        let out = if warden_dlp::is_secret_detector(&id) {
            Action::Block
        } else {
            Action::Report
        };
        arguments.insert(id, Some(out));
    }
    (results, arguments)
}

fn action(check: &mut Check, raw: &Spanned<String>) -> Option<Option<Action>> {
    match raw.as_ref().as_str() {
        "mask" => Some(Some(Action::Mask)),
        "pseudonymise" | "pseudonymize" => Some(Some(Action::Pseudonymise)),
        "block" => Some(Some(Action::Block)),
        "report" => Some(Some(Action::Report)),
        "off" => Some(None),
        other => {
            check.err(
                raw.span().start,
                format!("{other:?} is not a DLP action"),
                "use \"mask\", \"pseudonymise\", \"block\", \"report\" or \"off\"",
            );
            None
        }
    }
}

/// `base` with the entries of `raw` over it: `default` sets every detector, a detector's own
/// entry wins over `default`.
fn overlay(check: &mut Check, base: &Actions, raw: &BTreeMap<String, Spanned<String>>) -> Actions {
    let mut out = base.clone();
    if let Some(d) = raw.get("default")
        && let Some(a) = action(check, d)
    {
        out.values_mut().for_each(|v| *v = a);
    }
    for (id, value) in raw.iter().filter(|(id, _)| id.as_str() != "default") {
        if !out.contains_key(id) {
            check.err(
                value.span().start,
                format!("dlp: there is no detector {id:?}"),
                format!(
                    "use a built-in detector ({}) or define it in [[dlp.custom]]",
                    BUILTIN_DETECTORS.join(", ")
                ),
            );
            continue;
        }
        if let Some(a) = action(check, value) {
            out.insert(id.clone(), a);
        }
    }
    out
}

fn custom(check: &mut Check, raw: Spanned<RawCustom>) -> Option<(String, CustomRule)> {
    let at = raw.span().start;
    let raw = raw.into_inner();
    if BUILTIN_DETECTORS.contains(&raw.id.as_str()) || raw.id == "default" || raw.id.is_empty() {
        check.err(
            at,
            format!("dlp.custom: {:?} cannot name a custom detector", raw.id),
            "choose an id that is not a built-in detector's, like \"employee_id\"",
        );
        return None;
    }
    let validator = match raw.validator.as_deref() {
        None | Some("none") => None,
        Some("luhn") => Some(Validator::Luhn),
        Some("mod97") => Some(Validator::Mod97),
        Some(other) => {
            check.err(
                at,
                format!("dlp.custom {:?}: {other:?} is not a validator", raw.id),
                "use \"luhn\", \"mod97\" or \"none\"",
            );
            return None;
        }
    };
    if let Err(e) = regex::Regex::new(&raw.regex) {
        check.err(
            at,
            format!("dlp.custom {:?}: the regex does not compile: {e}", raw.id),
            "write a pattern in Rust regex syntax",
        );
        return None;
    }
    let rule = CustomRule {
        regex: raw.regex,
        keywords: raw.keywords,
        validator,
    };
    Some((raw.id, rule))
}

pub(super) fn dlp(
    check: &mut Check,
    raw: Option<Spanned<RawDlp>>,
    storage_dir: &Path,
    file: &Path,
) -> DlpConfig {
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let mut customs: Vec<(String, CustomRule)> = Vec::new();
    for c in raw.custom {
        let at = c.span().start;
        if let Some((id, rule)) = custom(check, c) {
            if customs.iter().any(|(seen, _)| *seen == id) {
                check.err(
                    at,
                    format!("dlp.custom {id:?} is defined twice"),
                    "give each custom detector its own id",
                );
                continue;
            }
            customs.push((id, rule));
        }
    }
    let (results, arguments) = defaults(&customs);
    let results = overlay(check, &results, &raw.results);
    let arguments = overlay(check, &arguments, &raw.arguments);
    let scopes = raw
        .scope
        .into_iter()
        .map(|s| {
            let at = s.span().start;
            let s = s.into_inner();
            let when = ScopeMatch {
                upstream: s.upstream,
                tool: s.tool,
                group: s.group,
            };
            if when == ScopeMatch::default() {
                check.err(
                    at,
                    "a [[dlp.scope]] must name an upstream, a tool or a group",
                    "add upstream = \"…\", tool = \"…\" or group = \"…\"",
                );
            }
            DlpScope {
                when,
                results: overlay(check, &results, &s.results),
                arguments: overlay(check, &arguments, &s.arguments),
            }
        })
        .collect();
    DlpConfig {
        enabled: raw.enabled.unwrap_or(true),
        key: match raw.key {
            Some(p) => relative_to(file, &p),
            None => storage_dir.join("dlp-pseudonym.key"),
        },
        allow: raw.allow,
        custom: customs,
        results,
        arguments,
        scopes,
    }
}
