//! `warden policy test` and `warden policy lint`: ask the configured policies a question and see
//! why they answer as they do; check them against the tools the upstreams really offer.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use warden_gateway::Config;
use warden_policy::{Action, Outcome, PolicyEngine, Request, ToolInfo};

#[derive(Subcommand)]
pub enum PolicyAction {
    /// Decide one call and explain the decision.
    Test(TestArgs),
    /// Validate the policies and compare them with the tools the upstreams offer.
    Lint,
}

#[derive(Args)]
pub struct TestArgs {
    #[arg(long)]
    user: String,
    /// Comma-separated groups of the user.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    #[arg(long)]
    agent: Option<String>,
    /// Comma-separated scopes of the token.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// The tool as clients see it (`server__tool`) or as policies name it (`server.tool`).
    #[arg(long)]
    tool: String,
    /// The call's arguments, as JSON.
    #[arg(long, default_value = "{}")]
    args: String,
    #[arg(long, default_value = "legacy")]
    era: String,
    #[arg(long)]
    ip: Option<std::net::IpAddr>,
}

fn load(config: &Path) -> Result<(Config, PolicyEngine), ExitCode> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    let engine = warden_gateway::policy::load_dir(&config.policy.dir, &config.dlp.detectors())
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })?;
    Ok((config, engine))
}

/// `server__tool` (by the upstreams' prefixes) or `server.tool` → (upstream name, tool).
fn split_tool(config: &Config, tool: &str) -> Option<(String, String)> {
    let sep = &config.server.name_separator;
    for u in &config.upstreams {
        if let Some(rest) = tool
            .strip_prefix(&format!("{}{sep}", u.prefix))
            .filter(|_| !u.prefix.is_empty())
        {
            return Some((u.name.clone(), rest.to_string()));
        }
        if let Some(rest) = tool.strip_prefix(&format!("{}.", u.name)) {
            return Some((u.name.clone(), rest.to_string()));
        }
    }
    let bare: Vec<_> = config
        .upstreams
        .iter()
        .filter(|u| u.prefix.is_empty())
        .collect();
    (bare.len() == 1).then(|| (bare[0].name.clone(), tool.to_string()))
}

pub async fn run(config: &Path, action: PolicyAction) -> ExitCode {
    let (config, engine) = match load(config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match action {
        PolicyAction::Test(args) => test(&config, &engine, &args).await,
        PolicyAction::Lint => lint(config, &engine).await,
    }
}

async fn test(config: &Config, engine: &PolicyEngine, a: &TestArgs) -> ExitCode {
    let Some((server, tool)) = split_tool(config, &a.tool) else {
        eprintln!(
            "warden: {:?} names no configured upstream; write it as server__tool or server.tool",
            a.tool
        );
        return ExitCode::from(2);
    };
    let arguments: Value = match serde_json::from_str(&a.args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("warden: --args is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let groups: Vec<&str> = a.groups.iter().map(String::as_str).collect();
    let scopes: Vec<&str> = a.scopes.iter().map(String::as_str).collect();
    let tags: Vec<(&str, &str)> = config
        .upstreams
        .iter()
        .find(|u| u.name == server)
        .and_then(|u| u.tags.get(&tool))
        .map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .unwrap_or_default();
    let request = Request {
        user: &a.user,
        groups: &groups,
        agent: a.agent.as_deref(),
        scopes: &scopes,
        action: Action::CallTool,
        server: &server,
        target: &tool,
        tags: &tags,
        arguments: Some(&arguments),
        now: std::time::SystemTime::now(),
        utc_offset_minutes: config.policy.utc_offset_minutes,
        client_ip: a.ip,
        era: &a.era,
    };
    let decision = engine.decide(&request);
    let verdict = match decision.outcome {
        Outcome::Allow => "ALLOW".to_string(),
        Outcome::Deny => "DENY".to_string(),
        Outcome::Consent(rule) => format!("CONSENT ({rule:?})"),
    };
    println!("{verdict}: {} calling Tool::\"{server}.{tool}\"", a.user);
    println!("{}", decision.explain());
    if matches!(decision.outcome, Outcome::Consent(_)) {
        println!(
            "{}",
            explain_grants(config, a, &format!("{server}.{tool}"), &arguments).await
        );
    }
    ExitCode::SUCCESS
}

/// Whether a grant made on the consent page lets this call through without asking.
async fn explain_grants(config: &Config, a: &TestArgs, tool: &str, arguments: &Value) -> String {
    use warden_gateway::consent::canonical;
    use warden_gateway::store::{self, GrantKind};
    let store = match store::open(&config.storage).await {
        Ok(s) => s,
        Err(e) => return format!("grants: cannot read the store ({e})"),
    };
    let now = store::now();
    let grants = match store
        .live_grants(&a.user, a.agent.as_deref(), tool, now)
        .await
    {
        Ok(g) => g,
        Err(e) => return format!("grants: cannot read the store ({e})"),
    };
    let digest = canonical::digest(&canonical::canonical(Some(arguments)));
    let covering = grants.iter().find(|g| match &g.kind {
        GrantKind::Standing => true,
        GrantKind::OneCall { arguments_digest } => *arguments_digest == digest,
    });
    match covering {
        Some(g) => {
            let what = match g.kind {
                GrantKind::Standing => {
                    format!("grant {} allows {tool} for this user and agent", g.id)
                }
                GrantKind::OneCall { .. } => format!(
                    "one-call grant {} allows exactly these arguments once",
                    g.id
                ),
            };
            format!(
                "covered: {what}, for {} more seconds; the call goes through without asking",
                g.expires_at - now
            )
        }
        None => format!(
            "not covered by a grant ({} live for this user, agent and tool; arguments digest {digest}): the user is asked on the consent page",
            grants.len()
        ),
    }
}

async fn lint(config: Config, engine: &PolicyEngine) -> ExitCode {
    let upstreams: Vec<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
    let gateway = match warden_gateway::Gateway::new(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("warden: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut tools = Vec::new();
    let mut unreachable = 0;
    for (i, server) in upstreams.iter().enumerate() {
        match gateway.upstream_tools(i, "warden-policy-lint").await {
            Ok(list) => tools.extend(list.into_iter().filter_map(|t| {
                Some(ToolInfo {
                    server: server.clone(),
                    name: t.get("name")?.as_str()?.to_string(),
                    input_schema: t.get("inputSchema").cloned(),
                })
            })),
            Err(e) => {
                unreachable += 1;
                eprintln!("warden: cannot list the tools of {server}: {e}");
            }
        }
    }
    gateway.pool.shutdown().await;
    let findings = engine.lint(&tools);
    for f in &findings {
        println!("{f}");
    }
    println!(
        "{} policies, {} tools on {} upstreams, {} finding(s)",
        engine.len(),
        tools.len(),
        upstreams.len() - unreachable,
        findings.len()
    );
    if findings.is_empty() && unreachable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
