//! `warden vault put|list|rm|rotate-key`: the secrets Warden injects on the way out. Values are
//! read from standard input (never from the command line, where `ps` and shell history would
//! see them) and never printed; `list` shows names, owners, keys and dates only. Each change is
//! committed with its audit record (see [`crate::admin`]).

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use warden_gateway::store::{self, Store};
use warden_gateway::vault::{self, KeySource, Vault};
use zeroize::Zeroizing;

use crate::admin::{Opened, fail, open_audited, queue};

#[derive(Subcommand)]
pub enum VaultAction {
    /// Store a secret read from standard input (a trailing newline is dropped).
    Put {
        name: String,
        /// The user it belongs to; none: the gateway's own (for `${vault:NAME}`).
        #[arg(long, default_value = "")]
        owner: String,
    },
    /// Names, owners, master key ids and dates; never values.
    List,
    /// Delete a secret.
    Rm {
        name: String,
        #[arg(long, default_value = "")]
        owner: String,
    },
    /// Seal every secret under a new master key while gateways keep serving, then retire the old keys.
    RotateKey,
}

pub async fn run(config: &Path, action: VaultAction) -> ExitCode {
    let Opened {
        store,
        audited,
        config,
    } = match open_audited(config).await {
        Ok(o) => o,
        Err(code) => return code,
    };
    let source = KeySource::from_env_or(&config.storage.vault_key);
    let vault = match Vault::open(source.clone(), store.clone()) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let result = match action {
        VaultAction::Put { name, owner } => put(&store, &vault, audited, &name, &owner).await,
        VaultAction::List => list(&store).await,
        VaultAction::Rm { name, owner } => rm(&store, audited, &name, &owner).await,
        VaultAction::RotateKey => match source {
            KeySource::Env => Err(format!(
                "the master key comes from {}: rotate it by re-sealing under a key file (unset it and use [storage] vault_key)",
                vault::KEY_ENV
            )),
            KeySource::File(file) => rotate(&store, &file, audited).await,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn put(
    store: &std::sync::Arc<dyn Store>,
    vault: &Vault,
    audited: bool,
    name: &str,
    owner: &str,
) -> Result<(), String> {
    if name.is_empty() || name.contains(['}', '$']) {
        return Err(format!(
            "{name:?} cannot name a secret: use letters, digits, _ - ."
        ));
    }
    let mut value = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| format!("cannot read the value from standard input: {e}"))?;
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err("the value on standard input is empty".into());
    }
    let mut row = vault
        .seal(name, owner, trimmed, store::now())
        .map_err(|e| e.to_string())?;
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    if let Some(old) = tx
        .vault_rows(Some(name), Some(owner))
        .await
        .map_err(|e| e.to_string())?
        .first()
    {
        row.created_at = old.created_at;
    }
    tx.vault_put(&row).await.map_err(|e| e.to_string())?;
    let detail = json!({ "secret": name, "owner": owner, "key": row.key_id });
    queue(&mut tx, audited, "vault.put", detail)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!(
        "stored {name}{}",
        if owner.is_empty() {
            String::new()
        } else {
            format!(" of {owner}")
        }
    );
    Ok(())
}

async fn list(store: &std::sync::Arc<dyn Store>) -> Result<(), String> {
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    let rows = tx.vault_rows(None, None).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!(
        "{:<28} {:<16} {:<18} {:<12} updated",
        "name", "owner", "key", "created"
    );
    for r in rows {
        let owner = if r.owner.is_empty() { "-" } else { &r.owner };
        println!(
            "{:<28} {:<16} {:<18} {:<12} {}",
            r.name, owner, r.key_id, r.created_at, r.updated_at
        );
    }
    Ok(())
}

async fn rm(
    store: &std::sync::Arc<dyn Store>,
    audited: bool,
    name: &str,
    owner: &str,
) -> Result<(), String> {
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    if !tx.vault_rm(name, owner).await.map_err(|e| e.to_string())? {
        return Err(format!("no secret {name:?}"));
    }
    queue(
        &mut tx,
        audited,
        "vault.rm",
        json!({ "secret": name, "owner": owner }),
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!("deleted {name}");
    Ok(())
}

/// Rotates the key file's master key, then records it.
async fn rotate(
    store: &std::sync::Arc<dyn Store>,
    file: &Path,
    audited: bool,
) -> Result<(), String> {
    let (new_id, resealed) = vault::rotate(store, file)
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    let detail = json!({ "key": new_id, "resealed": resealed });
    queue(&mut tx, audited, "vault.rotate-key", detail)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    println!(
        "every secret is sealed with key {new_id} ({resealed} re-sealed); the old keys are gone"
    );
    Ok(())
}
