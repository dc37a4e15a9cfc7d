//! `warden keys`, `warden revoke` and `warden grants`: write the store the gateway reads; a running gateway sees
//! the change on the next request it authenticates. Each change is committed together with its
//! audit record in the store's outbox, which the gateway moves into its audit log within
//! seconds (the gateway is the log's one writer).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use std::sync::Arc;
use warden_gateway::Config;
use warden_gateway::config::parse_duration;
use warden_gateway::identity::keys;

use serde_json::{Value, json};
use warden_gateway::store::{self, Store, StoreError, Transaction};

/// The store, and whether the audit trail takes the CLI's records.
pub(crate) struct Opened {
    pub store: Arc<dyn Store>,
    pub audited: bool,
    pub config: Config,
}

/// Who runs the command, as the operating system knows them.
pub(crate) fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Queues the audit record of an action taken here, in the action's transaction.
pub(crate) async fn queue(
    tx: &mut Box<dyn Transaction>,
    audited: bool,
    action: &str,
    detail: Value,
) -> Result<(), StoreError> {
    if !audited {
        return Ok(());
    }
    let kind = match action {
        "grant.revoke" => warden_audit::Kind::GrantRevoked,
        _ => warden_audit::Kind::Admin,
    };
    let mut record = warden_gateway::audit::record(kind);
    record.principal = Some(format!("cli:{}", operator()));
    record.name = Some(action.to_string());
    record.detail = detail;
    let text = String::from_utf8_lossy(&record.to_bytes()).into_owned();
    tx.queue_audit(&text).await
}

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
    let Opened { store, audited, .. } = match open_audited(config).await {
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
        GrantsAction::Revoke { id } => match revoke_grant(&store, audited, &id).await {
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
    open_audited(config).await.map(|o| o.store)
}

pub(crate) async fn open_audited(config: &Path) -> Result<Opened, ExitCode> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    let store = store::open(&config.storage).await.map_err(|e| {
        eprintln!("warden: {e}");
        ExitCode::FAILURE
    })?;
    Ok(Opened {
        store,
        audited: config.audit.enabled,
        config,
    })
}

pub(crate) fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden: {e}");
    ExitCode::FAILURE
}

pub async fn keys(config: &Path, action: KeysAction) -> ExitCode {
    let Opened { store, audited, .. } = match open_audited(config).await {
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
            if let Err(e) = create_key(&store, audited, &new.stored).await {
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
        KeysAction::Revoke { id_or_name } => match revoke_key(&store, audited, &id_or_name).await {
            Ok(true) => {
                println!("revoked key {id_or_name}");
                ExitCode::SUCCESS
            }
            Ok(false) => fail(format!("no active key {id_or_name:?}")),
            Err(e) => fail(e),
        },
    }
}

pub async fn revoke(config: &Path, target: Target, reason: &str, undo: bool) -> ExitCode {
    let Opened { store, audited, .. } = match open_audited(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (kind, value) = match (target.token, target.user, target.agent) {
        (Some(t), _, _) => ("token", t),
        (_, Some(u), _) => ("user", u),
        (_, _, Some(a)) => ("agent", a),
        _ => return fail("say what to revoke: --token, --user or --agent"),
    };
    let result = change_revocation(&store, audited, kind, &value, reason, undo).await;
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

// Each change below commits with its audit record, or not at all.

async fn create_key(
    store: &Arc<dyn Store>,
    audited: bool,
    key: &store::StoredKey,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.insert_key(key).await?;
    // The key itself is shown once to whoever made it and never recorded.
    let detail = json!({ "id": key.id, "name": key.name, "groups": key.groups, "scopes": key.scopes, "expires_at": key.expires_at });
    queue(&mut tx, audited, "key.create", detail).await?;
    tx.commit().await
}

async fn revoke_key(
    store: &Arc<dyn Store>,
    audited: bool,
    id_or_name: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let revoked = tx.revoke_key(id_or_name, store::now()).await?;
    if revoked {
        queue(&mut tx, audited, "key.revoke", json!({ "key": id_or_name })).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

async fn change_revocation(
    store: &Arc<dyn Store>,
    audited: bool,
    kind: &str,
    value: &str,
    reason: &str,
    undo: bool,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    if undo {
        if tx.unrevoke(kind, value).await? {
            let detail = json!({ "kind": kind, "value": value });
            queue(&mut tx, audited, "revocation.remove", detail).await?;
        }
    } else {
        tx.revoke(kind, value, reason, store::now()).await?;
        let detail = json!({ "kind": kind, "value": value, "reason": reason });
        queue(&mut tx, audited, "revocation.add", detail).await?;
    }
    tx.commit().await
}

async fn revoke_grant(
    store: &Arc<dyn Store>,
    audited: bool,
    id: &str,
) -> Result<store::ConsumeOutcome, StoreError> {
    let mut tx = store.begin().await?;
    let outcome = tx.consume_grant(id, store::now()).await?;
    if outcome == store::ConsumeOutcome::Consumed {
        queue(&mut tx, audited, "grant.revoke", json!({ "grant": id })).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}
