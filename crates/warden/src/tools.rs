//! `warden tools list|diff|approve`: the pinned tool definitions in the store. A changed or
//! flagged definition waits there, withheld by the gateway, until an operator has looked at the
//! change (`diff`) and approved it (`approve`); a running gateway lets the tool through on its
//! next call or listing. The approval is committed with its audit record (see [`crate::admin`]).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};
use warden_gateway::store::{self, ToolPin};

use crate::admin::{fail, open_audited, queue};

#[derive(Subcommand)]
pub enum ToolsAction {
    /// Every tool definition seen: approved, or waiting with what integrity flagged.
    List {
        /// Only this upstream's tools.
        #[arg(long)]
        upstream: Option<String>,
        /// Only definitions that wait for approval.
        #[arg(long)]
        pending: bool,
    },
    /// Show how the waiting definition of a tool differs from the one last approved.
    Diff { upstream: String, tool: String },
    /// Approve the waiting definition of a tool; the gateway serves it from its next listing.
    Approve { upstream: String, tool: String },
}

pub async fn run(config: &Path, action: ToolsAction) -> ExitCode {
    let opened = match open_audited(config).await {
        Ok(o) => o,
        Err(code) => return code,
    };
    let store = opened.store;
    match action {
        ToolsAction::List { upstream, pending } => {
            let pins = match store.tool_pins(upstream.as_deref()).await {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            println!(
                "{:<16} {:<28} {:<12} {:<10} {:<20} flags",
                "upstream", "tool", "hash", "state", "approved by"
            );
            for p in pins.iter().filter(|p| !pending || p.approved_at.is_none()) {
                let state = if p.approved_at.is_some() {
                    "approved"
                } else {
                    "waiting"
                };
                println!(
                    "{:<16} {:<28} {:<12} {:<10} {:<20} {}",
                    p.upstream,
                    p.tool,
                    &p.hash[..12.min(p.hash.len())],
                    state,
                    p.approved_by.as_deref().unwrap_or("-"),
                    if p.flags.is_empty() { "-" } else { &p.flags }
                );
            }
            ExitCode::SUCCESS
        }
        ToolsAction::Diff { upstream, tool } => {
            let (pins, waiting) = match waiting(&store, &upstream, &tool).await {
                Ok(found) => found,
                Err(code) => return code,
            };
            let approved = latest(&pins, &tool, true);
            print!("{}", diff(approved, &waiting));
            ExitCode::SUCCESS
        }
        ToolsAction::Approve { upstream, tool } => {
            let (_, waiting) = match waiting(&store, &upstream, &tool).await {
                Ok(found) => found,
                Err(code) => return code,
            };
            let who = format!("cli:{}", crate::admin::operator());
            let result = async {
                let mut tx = store.begin().await?;
                let done = tx
                    .approve_tool(&upstream, &tool, &waiting.hash, &who, store::now())
                    .await?;
                let detail = json!({ "upstream": upstream, "tool": tool, "hash": waiting.hash, "flags": waiting.flags });
                queue(&mut tx, opened.audited, "tools.approve", detail).await?;
                tx.commit().await?;
                Ok::<_, store::StoreError>(done)
            }
            .await;
            match result {
                Ok(true) => {
                    println!("approved {upstream} {tool} ({})", &waiting.hash[..12]);
                    ExitCode::SUCCESS
                }
                Ok(false) => fail("it was approved meanwhile"),
                Err(e) => fail(e),
            }
        }
    }
}

/// The pins of `upstream` and the definition of `tool` that waits for approval.
async fn waiting(
    store: &std::sync::Arc<dyn warden_gateway::store::Store>,
    upstream: &str,
    tool: &str,
) -> Result<(Vec<ToolPin>, ToolPin), ExitCode> {
    let pins = store.tool_pins(Some(upstream)).await.map_err(fail)?;
    match latest(&pins, tool, false).cloned() {
        Some(w) => Ok((pins, w)),
        None => Err(fail(format!(
            "no definition of {upstream} {tool} waits for approval"
        ))),
    }
}

/// The last definition of `tool` seen that is approved (or waiting).
fn latest<'a>(pins: &'a [ToolPin], tool: &str, approved: bool) -> Option<&'a ToolPin> {
    pins.iter()
        .filter(|p| p.tool == tool && p.approved_at.is_some() == approved)
        .max_by_key(|p| (p.approved_at.unwrap_or(p.seen_at), p.seen_at))
}

/// The fields of two definitions that differ, as `-` (approved) and `+` (waiting) lines;
/// strings are shown escaped, so invisible characters show as `\u{…}`.
pub fn diff(approved: Option<&ToolPin>, waiting: &ToolPin) -> String {
    let parse = |p: &ToolPin| serde_json::from_str::<Value>(&p.definition).unwrap_or(Value::Null);
    let new = parse(waiting);
    let old = approved.map(parse).unwrap_or(Value::Null);
    let mut out = String::new();
    match approved {
        Some(a) => out.push_str(&format!(
            "--- approved {} by {}\n",
            &a.hash[..12],
            a.approved_by.as_deref().unwrap_or("-")
        )),
        None => out.push_str("--- (never approved)\n"),
    }
    out.push_str(&format!("+++ waiting  {}", &waiting.hash[..12]));
    if !waiting.flags.is_empty() {
        out.push_str(&format!("  flagged: {}", waiting.flags));
    }
    out.push('\n');
    let mut keys: Vec<&String> = new.as_object().into_iter().flat_map(|m| m.keys()).collect();
    for k in old.as_object().into_iter().flat_map(|m| m.keys()) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for k in keys {
        let (a, b) = (old.get(k), new.get(k));
        if a == b {
            continue;
        }
        if let Some(a) = a {
            out.push_str(&format!("- {k}: {}\n", shown(a)));
        }
        if let Some(b) = b {
            out.push_str(&format!("+ {k}: {}\n", shown(b)));
        }
    }
    out
}

fn shown(v: &Value) -> String {
    let text = v.to_string();
    text.chars()
        .map(|c| {
            if warden_dlp::normalise::is_invisible(c) || c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}
