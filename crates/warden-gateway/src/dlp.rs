//! Data-loss prevention in the gateway: the [`warden_dlp`] engines that `[dlp]` configures, one
//! per direction and scope, the pseudonym key, and what a call's findings become (metrics, log,
//! audit). The stages that use them are in [`crate::stage::dlp`].
//!
//! What it must never do: keep, log or return a found value. A [`Found`] holds the detector, the
//! JSON path and the action — never the text; the pseudonym key stays in the engines.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use warden_dlp::{Action, DetectorRule, Engine, Finding, Rules};
use warden_policy::{DataAction, DataRules};

use crate::config::{Actions, DlpConfig, ScopeMatch};
use crate::identity::Principal;

/// Which way a value crosses the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// What comes back from an upstream: results, interim messages, errors.
    Results,
    /// What an agent sends: a call's arguments.
    Arguments,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Results => "results",
            Direction::Arguments => "arguments",
        }
    }
}

/// One finding of a call, as it is counted, logged and audited: never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub direction: Direction,
    pub detector: String,
    /// The JSON path of the string, from the message's `params` or `result` (`$.content[0].text`).
    pub path: String,
    pub action: Action,
}

impl Found {
    pub fn new(direction: Direction, f: Finding) -> Found {
        Found {
            direction,
            detector: f.detector,
            path: f.path,
            action: f.action,
        }
    }
}

/// `{"direction", "detector", "path", "action"}`: how records hold a finding.
impl serde::Serialize for Found {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("direction", self.direction.as_str())?;
        m.serialize_entry("detector", &self.detector)?;
        m.serialize_entry("path", &self.path)?;
        m.serialize_entry("action", action_name(self.action))?;
        m.end()
    }
}

pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Mask => "mask",
        Action::Pseudonymise => "pseudonymise",
        Action::Block => "block",
        Action::Report => "report",
    }
}

/// The engines of one set of actions: `None` where a direction has every detector off.
struct Engines {
    results: Option<Arc<Engine>>,
    arguments: Option<Arc<Engine>>,
    /// The actions they were built from, which data rules start from.
    actions: [Actions; 2],
}

/// Engines for action sets that data rules made, by the set: built at first need. A call's
/// rules come from policy, so the sets are few; past this many, the oldest are let go.
const MADE_MAX: usize = 64;

/// The DLP engines of a gateway.
pub struct Dlp {
    base: Engines,
    scopes: Vec<(ScopeMatch, Engines)>,
    config: DlpConfig,
    key: [u8; 32],
    made: Mutex<HashMap<Actions, Option<Arc<Engine>>>>,
}

/// Why DLP could not start.
#[derive(Debug, thiserror::Error)]
pub enum DlpError {
    #[error("the DLP pseudonym key {path}: {why}")]
    Key { path: String, why: String },
    #[error("the DLP rules do not build: {0}")]
    Rules(#[from] warden_dlp::Error),
}

impl Dlp {
    /// Builds the engines `[dlp]` describes; `None` when DLP is off.
    pub fn open(config: &DlpConfig) -> Result<Option<Dlp>, DlpError> {
        if !config.enabled {
            return Ok(None);
        }
        let key = pseudonym_key(&config.key)?;
        let engines = |results: &Actions, arguments: &Actions| -> Result<Engines, DlpError> {
            Ok(Engines {
                results: engine(config, results, key)?.map(Arc::new),
                arguments: engine(config, arguments, key)?.map(Arc::new),
                actions: [results.clone(), arguments.clone()],
            })
        };
        let base = engines(&config.results, &config.arguments)?;
        let scopes = config
            .scopes
            .iter()
            .map(|s| Ok((s.when.clone(), engines(&s.results, &s.arguments)?)))
            .collect::<Result<_, DlpError>>()?;
        Ok(Some(Dlp {
            base,
            scopes,
            config: config.clone(),
            key,
            made: Mutex::new(HashMap::new()),
        }))
    }

    /// The engine for one direction of a call to `tool` (as exposed) of `upstream`, by
    /// `principal`: the first scope that matches, else the defaults; then the call's data
    /// rules (policy) over them, each detector they name taking the strictest action they give.
    pub fn engine(
        &self,
        direction: Direction,
        upstream: Option<&str>,
        tool: Option<&str>,
        principal: &Principal,
        rules: &DataRules,
    ) -> Option<Arc<Engine>> {
        let matches = |m: &ScopeMatch| {
            m.upstream.as_deref().is_none_or(|u| Some(u) == upstream)
                && m.tool.as_deref().is_none_or(|t| Some(t) == tool)
                && m.group.as_deref().is_none_or(|g| principal.in_group(g))
        };
        let engines = self
            .scopes
            .iter()
            .find(|(m, _)| matches(m))
            .map_or(&self.base, |(_, e)| e);
        let (engine, actions) = match direction {
            Direction::Results => (&engines.results, &engines.actions[0]),
            Direction::Arguments => (&engines.arguments, &engines.actions[1]),
        };
        if rules.is_empty() {
            return engine.clone();
        }
        let results = direction == Direction::Results;
        let mut ruled = actions.clone();
        for (detector, action) in ruled.iter_mut() {
            if let Some(a) = rules.action(results, detector) {
                *action = from_policy(a);
            }
        }
        if ruled == *actions {
            return engine.clone();
        }
        self.made(ruled, engine)
    }

    /// The engine of an action set that data rules made, built once; `configured` if it does
    /// not build (it should: the same detectors built at start).
    fn made(&self, actions: Actions, configured: &Option<Arc<Engine>>) -> Option<Arc<Engine>> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = made.get(&actions) {
            return engine.clone();
        }
        let engine = match engine(&self.config, &actions, self.key) {
            Ok(engine) => engine.map(Arc::new),
            Err(e) => {
                tracing::error!(error = %e, "the DLP engine of a data rule does not build; the configured actions apply");
                return configured.clone();
            }
        };
        if made.len() >= MADE_MAX {
            made.clear();
        }
        made.insert(actions, engine.clone());
        engine
    }
}

/// The engine action of a data rule's action.
fn from_policy(a: DataAction) -> Option<Action> {
    match a {
        DataAction::Off => None,
        DataAction::Report => Some(Action::Report),
        DataAction::Mask => Some(Action::Mask),
        DataAction::Pseudonymise => Some(Action::Pseudonymise),
        DataAction::Block => Some(Action::Block),
    }
}

fn engine(
    config: &DlpConfig,
    actions: &Actions,
    key: [u8; 32],
) -> Result<Option<Engine>, DlpError> {
    let detectors: Vec<DetectorRule> = actions
        .iter()
        .filter_map(|(id, action)| {
            let custom = config
                .custom
                .iter()
                .find(|(c, _)| c == id)
                .map(|(_, rule)| rule.clone());
            Some(DetectorRule {
                id: id.clone(),
                action: (*action)?,
                custom,
            })
        })
        .collect();
    if detectors.is_empty() {
        return Ok(None);
    }
    let rules = Rules {
        detectors,
        allow: config.allow.clone(),
        pseudonym_key: key,
    };
    Ok(Some(Engine::new(rules)?))
}

/// Reads the pseudonym key (64 hex digits), creating it with mode 0600 when missing. Changing
/// the key changes every pseudonym.
fn pseudonym_key(path: &Path) -> Result<[u8; 32], DlpError> {
    let fail = |why: String| DlpError::Key {
        path: path.display().to_string(),
        why,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| fail("is not hex".into()))?;
            bytes
                .try_into()
                .map_err(|_| fail("must hold 32 bytes (64 hex digits)".into()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            crate::consent::write_private(path, format!("{}\n", hex::encode(key)).as_bytes())
                .map_err(|e| fail(format!("cannot create it: {e}")))?;
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> DataRules {
        let e = warden_policy::PolicyEngine::from_sources(&[(
            "t.cedar".into(),
            format!("@dlp_results({text:?})\npermit (principal, action, resource);"),
        )])
        .unwrap();
        let call = warden_policy::Request {
            user: "u",
            groups: &[],
            agent: None,
            scopes: &[],
            action: warden_policy::Action::CallTool,
            server: "s",
            target: "t",
            tags: &[],
            arguments: None,
            now: std::time::SystemTime::now(),
            utc_offset_minutes: 0,
            client_ip: None,
            era: "modern",
        };
        e.decide(&call).data
    }

    #[test]
    fn data_rules_make_an_engine_once_per_set_of_actions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        let config = crate::config::Config::from_toml(
            &file,
            "[identity]\ntest_user = \"t\"\n[policy]\ndir = \"p\"\n",
        )
        .unwrap();
        let dlp = Dlp::open(&config.dlp).unwrap().unwrap();
        let principal = Principal {
            user: "u".into(),
            agent: None,
            groups: Vec::new(),
            scopes: Vec::new(),
            token_id: None,
            expires_at: None,
            method: crate::identity::AuthMethod::TestProfile,
        };
        let engine = |r: &DataRules| dlp.engine(Direction::Results, None, None, &principal, r);
        let base = engine(&DataRules::default()).unwrap();
        // A rule that changes nothing uses the configured engine itself.
        assert!(Arc::ptr_eq(&base, &engine(&rules("card=mask")).unwrap()));
        let strict = engine(&rules("card=block")).unwrap();
        assert!(!Arc::ptr_eq(&base, &strict));
        assert!(Arc::ptr_eq(&strict, &engine(&rules("card=block")).unwrap()));
        let mut card = serde_json::json!({ "n": "4111 1111 1111 1111" });
        assert!(strict.apply(&mut card).blocked);
        assert!(engine(&rules("default=off")).is_none());
        let mut card = serde_json::json!({ "n": "4111 1111 1111 1111" });
        let reported = engine(&rules("card=report")).unwrap().apply(&mut card);
        assert!(!reported.blocked && reported.findings.len() == 1);
        assert_eq!(card["n"], "4111 1111 1111 1111");
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = pseudonym_key(&path).unwrap();
        let b = pseudonym_key(&path).unwrap();
        assert_eq!(a, b);
        // Not letters or digits, which a temporary directory's random name (in the error) can
        // hold: "zz" once failed this test by appearing in the path.
        std::fs::write(&path, "??").unwrap();
        let e = pseudonym_key(&path).unwrap_err().to_string();
        assert!(e.contains("is not hex"), "{e}");
        assert!(!e.contains("??"), "the key's text stays out of errors: {e}");
    }
}
