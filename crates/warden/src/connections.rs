//! `warden connections list|revoke`: users' own accounts at upstreams with `oauth`. `list`
//! shows who connected which upstream and when (never a token); `revoke` deletes a user's
//! tokens and revokes them at the service when it offers RFC 7009 revocation. A running gateway
//! feels it on the user's next call, which asks them to connect again.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;
use warden_gateway::Config;
use warden_gateway::connections::{Connections, upstream_of};
use warden_gateway::store::Store;
use warden_gateway::vault::{KeySource, Vault};

use crate::admin::{Opened, fail, open_audited, queue};

#[derive(Subcommand)]
pub enum ConnectionsAction {
    /// Who connected which upstream, and when; never a token.
    List {
        /// Only this user's connections.
        #[arg(long)]
        user: Option<String>,
    },
    /// Disconnect a user's account at an upstream: the tokens are deleted here and revoked at
    /// the service.
    Revoke { user: String, upstream: String },
}

pub async fn run(config: &Path, action: ConnectionsAction) -> ExitCode {
    let Opened { store, config, .. } = match open_audited(config).await {
        Ok(o) => o,
        Err(code) => return code,
    };
    let result = match action {
        ConnectionsAction::List { user } => list(&store, user.as_deref()).await,
        ConnectionsAction::Revoke { user, upstream } => {
            revoke(&config, store, &user, &upstream).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn list(store: &Arc<dyn Store>, user: Option<&str>) -> Result<(), String> {
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    let rows = tx.vault_rows(None, user).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!(
        "{:<20} {:<20} {:<12} updated",
        "user", "upstream", "connected"
    );
    for r in rows {
        if let Some(upstream) = upstream_of(&r.name) {
            println!(
                "{:<20} {:<20} {:<12} {}",
                r.owner, upstream, r.created_at, r.updated_at
            );
        }
    }
    Ok(())
}

async fn revoke(
    config: &Config,
    store: Arc<dyn Store>,
    user: &str,
    upstream: &str,
) -> Result<(), String> {
    let source = KeySource::from_env_or(&config.storage.vault_key);
    let vault = Vault::open(source, store.clone()).map_err(|e| e.to_string())?;
    let http = warden_gateway::outbound::Outbound::new(config.outbound.clone());
    let connections = Connections::new(config, Some(store.clone()), Some(Arc::new(vault)), http);
    if !connections
        .revoke(upstream, user)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("{user} has no connection to {upstream:?}"));
    }
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    let detail = json!({ "user": user, "upstream": upstream });
    queue(&mut tx, config.audit.enabled, "connection.revoke", detail)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!("disconnected {user} from {upstream}; their next call asks them to connect again");
    Ok(())
}
