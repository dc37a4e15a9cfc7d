//! The policy stage as the gateway runs it: the Cedar policies of `[policy] dir`, loaded at start
//! (a bad set stops the start), reloaded when their files change — swapped whole, atomically, and
//! only if the new set loads; otherwise the last good set keeps serving — and asked about every
//! call and every listed item.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde_json::Value;
use warden_policy::{Action, Decision, PolicyEngine, PolicyErrors, Request};

use crate::config::PolicyConfig;
use crate::identity::Principal;

/// What the policy files looked like: names, sizes and modification times.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

pub struct Policies {
    engine: RwLock<Arc<PolicyEngine>>,
    dir: PathBuf,
    /// The DLP detectors that data rules may name: a set naming another does not load.
    detectors: Vec<String>,
    seen: Mutex<Fingerprint>,
    pub utc_offset_minutes: i32,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Loaded(usize),
    Refused(PolicyErrors),
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Fingerprint = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cedar"))
        .filter_map(|e| {
            e.metadata()
                .ok()
                .map(|m| (e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    files.sort();
    files
}

impl Policies {
    /// Loads `[policy] dir`; data rules may name the `detectors` of `[dlp]`.
    pub fn load(config: &PolicyConfig, detectors: Vec<String>) -> Result<Policies, PolicyErrors> {
        let seen = fingerprint(&config.dir);
        let engine = load_dir(&config.dir, &detectors)?;
        tracing::info!(dir = %config.dir.display(), policies = engine.len(), "policies loaded");
        Ok(Policies {
            engine: RwLock::new(Arc::new(engine)),
            dir: config.dir.clone(),
            detectors,
            seen: Mutex::new(seen),
            utc_offset_minutes: config.utc_offset_minutes,
        })
    }

    pub fn current(&self) -> Arc<PolicyEngine> {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the directory again if a file changed; a set that does not load is refused whole.
    pub fn reload_if_changed(&self) -> Reload {
        let now = fingerprint(&self.dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        match load_dir(&self.dir, &self.detectors) {
            Ok(engine) => {
                let n = engine.len();
                *self.engine.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(engine);
                tracing::info!(dir = %self.dir.display(), policies = n, "policies reloaded");
                Reload::Loaded(n)
            }
            Err(errors) => {
                tracing::error!(dir = %self.dir.display(), errors = %errors, "policy reload refused; the previous policies keep serving");
                Reload::Refused(errors)
            }
        }
    }
}

/// Loads a policy directory whose data rules name only `detectors`.
pub fn load_dir(dir: &Path, detectors: &[String]) -> Result<PolicyEngine, PolicyErrors> {
    let engine = PolicyEngine::load_dir(dir)?;
    engine.check_data_rules(|d| detectors.iter().any(|k| k == d))?;
    Ok(engine)
}

/// One question to the policies, from the gateway's side.
pub struct Ask<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub server: &'a str,
    pub target: &'a str,
    pub tags: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The call's arguments, asked for only when some policy reads them: a request's `params`
    /// is kept as text until something reads it as a tree.
    pub arguments: Option<&'a (dyn Fn() -> Option<&'a Value> + Sync)>,
    pub client_ip: Option<std::net::IpAddr>,
    pub era: &'a str,
}

impl Policies {
    pub fn decide(&self, ask: &Ask<'_>) -> Decision {
        let engine = self.current();
        let arguments = match ask.arguments {
            Some(read) if engine.reads_arguments() => read(),
            _ => None,
        };
        with_request(ask, arguments, self.utc_offset_minutes, |r| {
            engine.decide(r)
        })
    }

    /// Whether any policy of the current set reads a call's arguments.
    pub fn reads_arguments(&self) -> bool {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .reads_arguments()
    }

    /// Whether any policy is a data rule.
    pub fn has_data_rules(&self) -> bool {
        self.current().has_data_rules()
    }

    /// Whether an item belongs in a list for this principal: allowed, or obtainable with
    /// consent, for some arguments.
    pub fn visible(&self, ask: &Ask<'_>) -> bool {
        let engine = self.current();
        // Visibility holds for some arguments: the call's own are not read.
        with_request(ask, None, self.utc_offset_minutes, |r| engine.visible(r))
    }
}

fn with_request<T>(
    ask: &Ask<'_>,
    arguments: Option<&Value>,
    utc_offset_minutes: i32,
    f: impl FnOnce(&Request<'_>) -> T,
) -> T {
    let p = ask.principal;
    let groups: Vec<&str> = p.groups.iter().map(|g| &**g).collect();
    let scopes: Vec<&str> = p.scopes.iter().map(|s| &**s).collect();
    let tags: Vec<(&str, &str)> = ask
        .tags
        .map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .unwrap_or_default();
    let request = Request {
        user: &p.user,
        groups: &groups,
        agent: p.agent.as_deref(),
        scopes: &scopes,
        action: ask.action,
        server: ask.server,
        target: ask.target,
        tags: &tags,
        arguments,
        now: SystemTime::now(),
        utc_offset_minutes,
        client_ip: ask.client_ip,
        era: ask.era,
    };
    f(&request)
}
