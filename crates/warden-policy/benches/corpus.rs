//! A generated, realistic policy set and requests against it, shared by the benchmark and the
//! index test (`tests/index.rs`).
//!
//! Shape of the large set: 50 upstreams of 40 tools each; every tool has a group permit (half of
//! them with an argument limit) and one of a consent permit, an agent forbid or a limit forbid;
//! every server has a forbid for a blocked agent and a list permit; 20 unscoped policies (tags,
//! hours, era, address); user-specific permits fill up to the size asked for.

#![allow(dead_code)]

use std::fmt::Write as _;

pub const SERVERS: usize = 50;
pub const TOOLS_PER_SERVER: usize = 40;

pub fn server(s: usize) -> String {
    format!("srv{s:02}")
}

pub fn tool(t: usize) -> String {
    format!("tool{t:02}")
}

/// About `size` policies (at least the per-tool and unscoped ones: 4,120), in 3 files.
pub fn policies(size: usize) -> Vec<(String, String)> {
    let mut per_tool = String::new();
    let mut per_server = String::new();
    let mut unscoped = String::new();
    let mut count = 0;
    for s in 0..SERVERS {
        let server = server(s);
        for t in 0..TOOLS_PER_SERVER {
            let uid = format!("Tool::\"{server}.{}\"", tool(t));
            let group = ["eng", "finance", "ops", "support"][t % 4];
            if t % 2 == 0 {
                let _ = writeln!(
                    per_tool,
                    "permit (principal in Group::\"{group}\", action == Action::\"call_tool\", resource == {uid})\n  when {{ context.arguments has amount && context.arguments.amount <= {} }};",
                    (t + 1) * 100
                );
            } else {
                let _ = writeln!(
                    per_tool,
                    "permit (principal in Group::\"{group}\", action == Action::\"call_tool\", resource == {uid});"
                );
            }
            match t % 4 {
                0 | 2 => {
                    let _ = writeln!(
                        per_tool,
                        "@consent(\"{}\")\npermit (principal, action == Action::\"call_tool\", resource == {uid})\n  when {{ context has agent && context.agent == Agent::\"desktop\" }};",
                        if t % 8 == 0 { "once" } else { "15m" }
                    );
                }
                1 => {
                    let _ = writeln!(
                        per_tool,
                        "forbid (principal, action == Action::\"call_tool\", resource == {uid})\n  when {{ context has agent && context.agent == Agent::\"bot{t}\" }};"
                    );
                }
                _ => {
                    let _ = writeln!(
                        per_tool,
                        "forbid (principal, action == Action::\"call_tool\", resource == {uid})\n  when {{ context.arguments has amount && context.arguments.amount > 100000 }};"
                    );
                }
            }
            count += 2;
        }
        let _ = writeln!(
            per_server,
            "forbid (principal, action, resource in Server::\"{server}\")\n  when {{ context has agent && context.agent == Agent::\"blocked{s}\" }};\npermit (principal, action == Action::\"list_tools\", resource == Server::\"{server}\");"
        );
        count += 2;
    }
    let globals = [
        "forbid (principal, action, resource is Tool) when { resource.hasTag(\"risk\") && resource.getTag(\"risk\") == \"critical\" };",
        "permit (principal, action == Action::\"call_tool\", resource is Tool) when { resource.hasTag(\"risk\") && resource.getTag(\"risk\") == \"low\" };",
        "forbid (principal, action == Action::\"subscribe\", resource) when { context.era == \"legacy\" };",
        "permit (principal, action in [Action::\"list_prompts\", Action::\"list_resources\"], resource);",
        "forbid (principal, action, resource is Tool) when { resource.hasTag(\"admin\") && !(context has client_ip && context.client_ip.isInRange(ip(\"10.0.0.0/8\"))) };",
        "permit (principal in Group::\"hr\", action == Action::\"call_tool\", resource is Tool) when { resource.hasTag(\"hr\") && context.hour >= 9 && context.hour < 17 };",
        "forbid (principal, action == Action::\"call_tool\", resource) when { context has agent && context.agent == Agent::\"quarantined\" };",
        "forbid (principal in Group::\"contractors\", action, resource is Tool) when { resource.hasTag(\"pii\") };",
        "permit (principal, action == Action::\"read_resource\", resource) when { resource.uri like \"docs://public/*\" };",
        "forbid (principal, action, resource) when { [\"sat\", \"sun\"].contains(context.weekday) && context.scopes.contains(\"weekday-only\") };",
    ];
    for i in 0..20 {
        let _ = writeln!(unscoped, "{}", globals[i % globals.len()]);
        count += 1;
    }
    let mut extra = 0;
    while count < size {
        let s = extra % SERVERS;
        let t = (extra / SERVERS) % TOOLS_PER_SERVER;
        let _ = writeln!(
            per_tool,
            "permit (principal == User::\"user{extra}\", action == Action::\"call_tool\", resource == Tool::\"{}.{}\");",
            server(s),
            tool(t)
        );
        extra += 1;
        count += 1;
    }
    vec![
        ("corpus/tools.cedar".into(), per_tool),
        ("corpus/servers.cedar".into(), per_server),
        ("corpus/unscoped.cedar".into(), unscoped),
    ]
}

/// A deterministic stream of pseudo-random numbers (no dependency needed).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

/// One generated call, owned; `request()` borrows it as a `warden_policy::Request`.
pub struct Sample {
    pub user: String,
    pub groups: Vec<&'static str>,
    pub agent: Option<String>,
    pub server: String,
    pub target: String,
    pub tags: Vec<(&'static str, &'static str)>,
    pub arguments: serde_json::Value,
    pub list: bool,
}

pub fn samples(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let groups = ["eng", "finance", "ops", "support", "hr", "contractors"];
            let agents = ["desktop", "bot1", "bot5", "blocked3", "quarantined", "cli"];
            let tags = [
                ("risk", "low"),
                ("risk", "critical"),
                ("hr", "yes"),
                ("pii", "yes"),
            ];
            Sample {
                user: format!("user{}", rng.next(3000)),
                groups: vec![
                    groups[rng.next(groups.len())],
                    groups[rng.next(groups.len())],
                ],
                agent: (rng.next(4) > 0).then(|| agents[rng.next(agents.len())].to_owned()),
                server: server(rng.next(SERVERS + 2)),
                target: tool(rng.next(TOOLS_PER_SERVER + 2)),
                tags: if rng.next(3) == 0 {
                    vec![tags[rng.next(tags.len())]]
                } else {
                    Vec::new()
                },
                arguments: serde_json::json!({
                    "amount": rng.next(5000),
                    "currency": "EUR",
                    "memo": "invoice 2026-03",
                    "tags": ["a", "b"],
                }),
                list: rng.next(20) == 0,
            }
        })
        .collect()
}

impl Sample {
    pub fn request(&self) -> warden_policy::Request<'_> {
        warden_policy::Request {
            user: &self.user,
            groups: &self.groups,
            agent: self.agent.as_deref(),
            scopes: &["tools:call"],
            action: if self.list {
                warden_policy::Action::ListTools
            } else {
                warden_policy::Action::CallTool
            },
            server: &self.server,
            target: if self.list { "" } else { &self.target },
            tags: &self.tags,
            arguments: (!self.list).then_some(&self.arguments),
            now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_773_225_000),
            utc_offset_minutes: 60,
            client_ip: Some(std::net::IpAddr::from([10, 1, 2, 3])),
            era: "modern",
        }
    }
}
