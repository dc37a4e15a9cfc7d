//! The checkpoints' signing key: a C2SP signed-note Ed25519 key in a file of mode 0600, created
//! at the first start when missing (or by `warden audit keygen`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use warden_audit::Signer;

use super::AuditError;

fn key_error(path: &Path, why: impl Into<String>) -> AuditError {
    AuditError::Key {
        path: path.display().to_string(),
        why: why.into(),
    }
}

/// Reads the signing key at `path`, or creates one named `name` there.
pub fn load_or_create_key(path: &Path, name: &str) -> Result<Signer, AuditError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(key_error(
                    path,
                    format!(
                        "its mode is {:o}; others must not read it (chmod 600)",
                        mode & 0o777
                    ),
                ));
            }
            Signer::from_key_string(text.trim()).map_err(|e| key_error(path, e.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = create_key(path, name)?;
            tracing::info!(
                key = %path.display(),
                verifier = %signer.verifier_key(),
                "audit signing key created; give the verifier key to your auditors"
            );
            Ok(signer)
        }
        Err(e) => Err(key_error(path, e.to_string())),
    }
}

/// Creates a new signing key named `name` at `path`; an existing file is never overwritten.
pub fn create_key(path: &Path, name: &str) -> Result<Signer, AuditError> {
    let signer = Signer::generate(name).map_err(|e| key_error(path, e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_error(path, e.to_string()))?;
    file.write_all(format!("{}\n", signer.to_key_string()).as_bytes())?;
    file.sync_all()?;
    Ok(signer)
}

/// The verifier key of the signing key at `path`.
pub fn verifier_key(path: &Path) -> Result<String, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
    let signer =
        Signer::from_key_string(text.trim()).map_err(|e| key_error(path, e.to_string()))?;
    Ok(signer.verifier_key())
}
