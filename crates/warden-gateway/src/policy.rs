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

/// What the reloads have seen of the directory.
#[derive(Default)]
struct Seen {
    /// The files as they were when the serving set was read from them.
    loaded: Fingerprint,
    /// A change seen at the last look and not loaded yet: it is loaded once the next look finds
    /// the files the same, so that a file caught while it is being written (emptied, then
    /// filled, as an editor or `cp` writes in place) is not taken for the new set.
    settling: Option<Fingerprint>,
}

pub struct Policies {
    engine: RwLock<Arc<PolicyEngine>>,
    dir: PathBuf,
    /// The DLP detectors that data rules may name: a set naming another does not load.
    detectors: Vec<String>,
    seen: Mutex<Seen>,
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
        let seen = Seen {
            loaded: fingerprint(&config.dir),
            settling: None,
        };
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

    /// Loads the directory again once a change has settled: files that differ from the serving
    /// set's and are the same as at the last look. A set that does not load is refused whole.
    /// Files that change while they are read are read again after they settle.
    pub fn reload_if_changed(&self) -> Reload {
        let now = fingerprint(&self.dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.loaded == now {
                seen.settling = None;
                return Reload::Unchanged;
            }
            if seen.settling.as_ref() != Some(&now) {
                seen.settling = Some(now);
                return Reload::Unchanged;
            }
            seen.settling = None;
        }
        let read = load_dir(&self.dir, &self.detectors);
        if fingerprint(&self.dir) != now {
            // Changed while being read: what was read may be half of each.
            return Reload::Unchanged;
        }
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).loaded = now;
        match read {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = "@id(\"echo\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.echo\");\n";
    const ADD: &str = "@id(\"add\")\npermit (principal, action == Action::\"call_tool\", resource == Tool::\"fx.add\");\n";

    fn loaded(r: Reload) -> Option<usize> {
        match r {
            Reload::Loaded(n) => Some(n),
            Reload::Unchanged => None,
            Reload::Refused(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn a_change_is_loaded_once_it_has_settled_and_a_file_caught_half_written_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("echo.cedar"), ECHO).unwrap();
        let config = PolicyConfig {
            dir: dir.path().to_path_buf(),
            utc_offset_minutes: 0,
            reload_every: std::time::Duration::from_secs(1),
        };
        let policies = Policies::load(&config, Vec::new()).unwrap();
        assert_eq!(policies.current().len(), 1);
        assert_eq!(loaded(policies.reload_if_changed()), None);

        // A new file, looked at while it is still empty (written in place: emptied, then filled).
        let add = dir.path().join("add.cedar");
        std::fs::write(&add, "").unwrap();
        assert_eq!(
            loaded(policies.reload_if_changed()),
            None,
            "not settled yet"
        );
        std::fs::write(&add, ADD).unwrap();
        assert_eq!(loaded(policies.reload_if_changed()), None, "changed again");
        assert_eq!(
            policies.current().len(),
            1,
            "the empty file was never loaded"
        );
        assert_eq!(loaded(policies.reload_if_changed()), Some(2));
        assert_eq!(policies.current().len(), 2);
        assert_eq!(loaded(policies.reload_if_changed()), None);

        // Settled on a broken file: refused once, then nothing until it changes again.
        std::fs::write(
            &add,
            "permit (principal, action, resource) when { context.nonsense };",
        )
        .unwrap();
        assert_eq!(loaded(policies.reload_if_changed()), None);
        assert!(matches!(policies.reload_if_changed(), Reload::Refused(_)));
        assert!(matches!(policies.reload_if_changed(), Reload::Unchanged));
        assert_eq!(policies.current().len(), 2, "the last good set serves");
    }
}
