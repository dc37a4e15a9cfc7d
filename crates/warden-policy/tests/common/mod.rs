//! An owned request for tests: build it with chained setters, then decide.

#![allow(dead_code)]

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use warden_policy::{Action, Decision, PolicyEngine, Request};

/// 2026-03-11 (a Wednesday) 10:30 UTC.
pub const WEDNESDAY_MORNING: u64 = 1_773_225_000;

#[derive(Debug, Clone)]
pub struct Call {
    pub user: String,
    pub groups: Vec<String>,
    pub agent: Option<String>,
    pub scopes: Vec<String>,
    pub action: Action,
    pub server: String,
    pub target: String,
    pub tags: Vec<(String, String)>,
    pub arguments: Option<Value>,
    pub now: SystemTime,
    pub utc_offset_minutes: i32,
    pub client_ip: Option<IpAddr>,
    pub era: String,
}

/// `alice` calling `server.tool` with no arguments, Wednesday morning, modern era.
pub fn call(tool: &str) -> Call {
    let (server, target) = tool.split_once('.').unwrap_or((tool, ""));
    Call {
        user: "alice".into(),
        groups: Vec::new(),
        agent: None,
        scopes: Vec::new(),
        action: Action::CallTool,
        server: server.into(),
        target: target.into(),
        tags: Vec::new(),
        arguments: None,
        now: UNIX_EPOCH + Duration::from_secs(WEDNESDAY_MORNING),
        utc_offset_minutes: 0,
        client_ip: None,
        era: "modern".into(),
    }
}

impl Call {
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }
    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.into());
        self
    }
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }
    pub fn args(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }
    pub fn at(mut self, unix_seconds: u64, utc_offset_minutes: i32) -> Self {
        self.now = UNIX_EPOCH + Duration::from_secs(unix_seconds);
        self.utc_offset_minutes = utc_offset_minutes;
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.client_ip = Some(ip.parse().expect("test IP"));
        self
    }
    pub fn era(mut self, era: &str) -> Self {
        self.era = era.into();
        self
    }

    pub fn decide(&self, engine: &PolicyEngine) -> Decision {
        self.with_request(|r| {
            let decision = engine.decide(r);
            let reference = engine.decide_unindexed(r);
            assert_eq!(
                (
                    &decision.outcome,
                    &decision.reason,
                    &decision.policies,
                    decision.errors.len()
                ),
                (
                    &reference.outcome,
                    &reference.reason,
                    &reference.policies,
                    reference.errors.len()
                ),
                "the index changed a decision"
            );
            decision
        })
    }

    /// Whether the item stays in this caller's list ([`PolicyEngine::visible`]).
    pub fn visible(&self, engine: &PolicyEngine) -> bool {
        self.with_request(|r| engine.visible(r))
    }

    /// Calls `f` with this call as a borrowed request.
    pub fn with_request<T>(&self, f: impl FnOnce(&Request<'_>) -> T) -> T {
        let groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let tags: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        f(&Request {
            user: &self.user,
            groups: &groups,
            agent: self.agent.as_deref(),
            scopes: &scopes,
            action: self.action,
            server: &self.server,
            target: &self.target,
            tags: &tags,
            arguments: self.arguments.as_ref(),
            now: self.now,
            utc_offset_minutes: self.utc_offset_minutes,
            client_ip: self.client_ip,
            era: &self.era,
        })
    }
}

/// An engine from one in-memory file, `test.cedar`; panics with the errors if it does not load.
pub fn engine(text: &str) -> PolicyEngine {
    PolicyEngine::from_sources(&[("test.cedar".to_string(), text.to_string())])
        .unwrap_or_else(|e| panic!("policies do not load:\n{e}"))
}
