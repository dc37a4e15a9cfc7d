//! `warden keys`, `warden revoke` and `warden grants`: write the store the gateway reads; a running gateway sees
//! the change on the next request it authenticates.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use std::sync::Arc;
use warden_gateway::Config;
use warden_gateway::config::parse_duration;
use warden_gateway::identity::keys;

use warden_gateway::store::{self, Store};

#[derive(Subcommand)]
pub enum KeysAction {
    /// Create a key; it is printed once and only its hash is kept.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated groups the key's agent belongs to.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Comma-separated scopes the key carries.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime such as 90d is written 2160h; none by default.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name.
    Revoke { id_or_name: String },
}

#[derive(Subcommand)]
pub enum GrantsAction {
    /// List live grants (made on the consent page), of one user or of everyone.
    List {
        #[arg(long)]
        user: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End a grant now.
    Revoke { id: String },
}

pub async fn grants(config: &Path, action: GrantsAction) -> ExitCode {
    let store = match open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match action {
        GrantsAction::List { user, json } => {
            match store.grants(user.as_deref(), store::now()).await {
                Ok(list) if json => {
                    for g in &list {
                        println!("{}", warden_gateway::admin::grant_json(g));
                    }
                    ExitCode::SUCCESS
                }
                Ok(list) => {
                    println!(
                        "{:<24} {:<16} {:<16} {:<28} {:<9} expires",
                        "id", "user", "agent", "tool", "kind"
                    );
                    for g in list {
                        let kind = match g.kind {
                            store::GrantKind::Standing => "for-a-while",
                            store::GrantKind::OneCall { .. } => "one-call",
                        };
                        println!(
                            "{:<24} {:<16} {:<16} {:<28} {:<9} {}",
                            g.id,
                            g.user,
                            g.agent.as_deref().unwrap_or("-"),
                            g.tool,
                            kind,
                            g.expires_at
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        GrantsAction::Revoke { id } => match store.consume_grant(&id, store::now()).await {
            Ok(store::ConsumeOutcome::Consumed) => {
                println!("revoked grant {id}");
                ExitCode::SUCCESS
            }
            Ok(_) => fail(format!("no live grant {id:?}")),
            Err(e) => fail(e),
        },
    }
}

/// What to revoke: exactly one.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A token id (`jti` claim), or an API key's id.
    #[arg(long)]
    token: Option<String>,
    /// A user (`sub`).
    #[arg(long)]
    user: Option<String>,
    /// An agent (`client_id` / `azp`).
    #[arg(long)]
    agent: Option<String>,
}

async fn open(config: &Path) -> Result<Arc<dyn Store>, ExitCode> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    store::open(&config.storage).await.map_err(|e| {
        eprintln!("warden: {e}");
        ExitCode::FAILURE
    })
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden: {e}");
    ExitCode::FAILURE
}

pub async fn keys(config: &Path, action: KeysAction) -> ExitCode {
    let store = match open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match action {
        KeysAction::Create {
            name,
            groups,
            scopes,
            expires_in,
        } => {
            let lifetime = match expires_in.as_deref().map(parse_duration) {
                None => None,
                Some(Ok(d)) => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                Some(Err(e)) => return fail(e),
            };
            let new = keys::generate(&name, groups, scopes, lifetime);
            if let Err(e) = store.insert_key(&new.stored).await {
                return fail(format!("{e} (is the name {name:?} taken?)"));
            }
            println!("{}", new.key);
            eprintln!(
                "Key {:?} created (id {}). This is the only time it is shown: store it now.",
                name, new.stored.id
            );
            ExitCode::SUCCESS
        }
        KeysAction::List => match store.keys().await {
            Ok(list) => {
                println!(
                    "{:<18} {:<24} {:<12} {:<12} groups",
                    "id", "name", "expires", "state"
                );
                for k in list {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let expires = k.expires_at.map_or("never".to_string(), |e| e.to_string());
                    println!(
                        "{:<18} {:<24} {:<12} {:<12} {}",
                        k.id,
                        k.name,
                        expires,
                        state,
                        k.groups.join(",")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        KeysAction::Revoke { id_or_name } => {
            match store.revoke_key(&id_or_name, store::now()).await {
                Ok(true) => {
                    println!("revoked key {id_or_name}");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no active key {id_or_name:?}")),
                Err(e) => fail(e),
            }
        }
    }
}

pub async fn revoke(config: &Path, target: Target, reason: &str, undo: bool) -> ExitCode {
    let store = match open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (kind, value) = match (target.token, target.user, target.agent) {
        (Some(t), _, _) => ("token", t),
        (_, Some(u), _) => ("user", u),
        (_, _, Some(a)) => ("agent", a),
        _ => return fail("say what to revoke: --token, --user or --agent"),
    };
    let result = if undo {
        store.unrevoke(kind, &value).await.map(|_| ())
    } else {
        store.revoke(kind, &value, reason, store::now()).await
    };
    match result {
        Ok(()) => {
            println!(
                "{} {kind} {value}",
                if undo { "restored" } else { "revoked" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub async fn revocations(config: &Path) -> ExitCode {
    let store = match open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.revocations().await {
        Ok(list) => {
            for r in list {
                println!(
                    "{:<6} {:<40} {}  {}",
                    r.kind, r.value, r.created_at, r.reason
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
