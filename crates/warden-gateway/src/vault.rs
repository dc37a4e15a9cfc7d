//! The credential vault: upstream keys and users' tokens, sealed with AES-256-GCM under a master
//! key, kept in the store ([`crate::store::VaultRow`]) and opened only where they are used.
//!
//! - **The master keys** are a key ring: the environment variable `WARDEN_VAULT_KEY` (64 hex
//!   digits, one key) or the key file (`[storage] vault_key`, default `<storage>/vault.key`, mode
//!   0600, created on first use): one key per line in hex, the newest first. Each row names the
//!   key that sealed it (`key_id`, the first 8 bytes of the key's SHA-256). New values are sealed
//!   with the newest key; `warden vault rotate-key` puts a new key first, re-seals every row with
//!   it while gateways keep serving (they read rows sealed with either key), and then drops the
//!   old keys from the file. A gateway that meets a key id it does not hold reads the file again.
//! - **Each value is bound to its row**: a fresh random 96-bit nonce per write, and associated data
//!   `warden-vault/v1 ‖ 0 ‖ name ‖ 0 ‖ owner`, so a ciphertext copied to another row (another name
//!   or owner) does not open.
//! - **What it must never do**: put a value in an error, a log line, a metric or a `Debug` output
//!   ([`Secret`] prints `<redacted>`), or keep a key or a value in memory after use without
//!   zeroising it ([`zeroize::Zeroizing`]). A wrong master key fails cleanly (the row names a key
//!   the ring does not hold, or the tag does not verify) and changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::catalog::{read, write};
use crate::store::{Generation, Store, StoreError, VaultRow};

/// The environment variable that holds a master key instead of the key file.
pub const KEY_ENV: &str = "WARDEN_VAULT_KEY";

/// A secret value out of the vault. It never prints itself.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(Arc::new(Zeroizing::new(value)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the vault key {0}")]
    Key(String),
    #[error("no secret {name:?}{}", owner_text(.owner))]
    Missing { name: String, owner: String },
    #[error(
        "secret {name:?}{} was sealed with master key {key_id}, which this key ring does not hold",
        owner_text(.owner)
    )]
    UnknownKey {
        name: String,
        owner: String,
        key_id: String,
    },
    #[error("secret {name:?}{} does not open: wrong master key, or the row was altered or moved", owner_text(.owner))]
    Tampered { name: String, owner: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn owner_text(owner: &str) -> String {
    if owner.is_empty() {
        String::new()
    } else {
        format!(" of {owner}")
    }
}

/// One master key.
struct MasterKey {
    id: String,
    key: LessSafeKey,
}

fn master(bytes: &[u8; 32]) -> Result<MasterKey, VaultError> {
    let id = hex::encode(&Sha256::digest(bytes)[..8]);
    let key = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| VaultError::Key("cannot be used as an AES-256 key".into()))?;
    Ok(MasterKey {
        id,
        key: LessSafeKey::new(key),
    })
}

/// Where the master keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// One key from [`KEY_ENV`].
    Env,
    /// The key file: one hex key per line, newest first.
    File(PathBuf),
}

impl KeySource {
    /// The environment's key if it is set, else the key file.
    pub fn from_env_or(file: &Path) -> KeySource {
        match std::env::var_os(KEY_ENV) {
            Some(_) => KeySource::Env,
            None => KeySource::File(file.to_path_buf()),
        }
    }
}

/// Parses key lines (hex, newest first; `#` comments and blank lines skipped).
fn parse_keys(text: &str) -> Result<Vec<MasterKey>, VaultError> {
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = Zeroizing::new(
            hex::decode(line)
                .map_err(|_| VaultError::Key("holds a line that is not hex".into()))?,
        );
        let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            VaultError::Key("holds a key that is not 32 bytes (64 hex digits)".into())
        })?;
        keys.push(master(bytes)?);
    }
    if keys.is_empty() {
        return Err(VaultError::Key("holds no key".into()));
    }
    Ok(keys)
}

/// Reads the key ring, creating the key file with one new key when it does not exist.
fn load_keys(source: &KeySource) -> Result<Vec<MasterKey>, VaultError> {
    match source {
        KeySource::Env => {
            let text = Zeroizing::new(std::env::var(KEY_ENV).unwrap_or_default());
            parse_keys(&text).map_err(|e| VaultError::Key(format!("in {KEY_ENV}: {e}")))
        }
        KeySource::File(path) => {
            let at = |e: String| VaultError::Key(format!("{}: {e}", path.display()));
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let text = Zeroizing::new(text);
                    check_private(path).map_err(at)?;
                    parse_keys(&text).map_err(|e| at(e.to_string()))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = Zeroizing::new(rand::random::<[u8; 32]>());
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| at(e.to_string()))?;
                    }
                    let line = Zeroizing::new(format!("{}\n", hex::encode(*key)));
                    crate::consent::write_private(path, line.as_bytes())
                        .map_err(|e| at(format!("cannot create it: {e}")))?;
                    Ok(vec![master(&key)?])
                }
                Err(e) => Err(at(e.to_string())),
            }
        }
    }
}

/// Refuses a key file that others can read.
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "is readable by others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ));
        }
    }
    Ok(())
}

fn aad(name: &str, owner: &str) -> Vec<u8> {
    let mut a = b"warden-vault/v1\0".to_vec();
    a.extend_from_slice(name.as_bytes());
    a.push(0);
    a.extend_from_slice(owner.as_bytes());
    a
}

/// Values opened since the store last changed.
#[derive(Default)]
struct Opened {
    generation: Option<Generation>,
    values: HashMap<(String, String), Secret>,
}

/// The vault of one process.
pub struct Vault {
    source: KeySource,
    keys: RwLock<Vec<MasterKey>>,
    store: Arc<dyn Store>,
    opened: RwLock<Opened>,
}

impl Vault {
    /// Opens the key ring (creating the key file if needed) over `store`.
    pub fn open(source: KeySource, store: Arc<dyn Store>) -> Result<Vault, VaultError> {
        let keys = load_keys(&source)?;
        Ok(Vault {
            source,
            keys: RwLock::new(keys),
            store,
            opened: RwLock::default(),
        })
    }

    /// Seals `value` as the secret `name` of `owner` with the newest key, at `now`.
    pub fn seal(
        &self,
        name: &str,
        owner: &str,
        value: &str,
        now: i64,
    ) -> Result<VaultRow, VaultError> {
        let keys = read(&self.keys);
        let key = keys
            .first()
            .ok_or_else(|| VaultError::Key("holds no key".into()))?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut sealed = value.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad(name, owner).as_slice()),
                &mut sealed,
            )
            .map_err(|_| VaultError::Key("cannot seal".into()))?;
        Ok(VaultRow {
            name: name.to_string(),
            owner: owner.to_string(),
            key_id: key.id.clone(),
            nonce: nonce_bytes.to_vec(),
            sealed,
            created_at: now,
            updated_at: now,
        })
    }

    /// Opens a row. A key id the ring does not hold makes it read the key file again once (a
    /// rotation may have added the key since).
    pub fn unseal(&self, row: &VaultRow) -> Result<Secret, VaultError> {
        if !read(&self.keys).iter().any(|k| k.id == row.key_id)
            && let Ok(keys) = load_keys(&self.source)
        {
            *write(&self.keys) = keys;
        }
        let keys = read(&self.keys);
        let Some(key) = keys.iter().find(|k| k.id == row.key_id) else {
            return Err(VaultError::UnknownKey {
                name: row.name.clone(),
                owner: row.owner.clone(),
                key_id: row.key_id.clone(),
            });
        };
        let tampered = || VaultError::Tampered {
            name: row.name.clone(),
            owner: row.owner.clone(),
        };
        let nonce = Nonce::try_assume_unique_for_key(&row.nonce).map_err(|_| tampered())?;
        let mut buf = Zeroizing::new(row.sealed.clone());
        let plain = key
            .key
            .open_in_place(
                nonce,
                Aad::from(aad(&row.name, &row.owner).as_slice()),
                &mut buf,
            )
            .map_err(|_| tampered())?;
        let text = std::str::from_utf8(plain).map_err(|_| tampered())?;
        Ok(Secret::new(text.to_string()))
    }

    /// The secret `name` of `owner` (`""`: gateway-wide), from memory while the store has not
    /// changed.
    pub async fn get(&self, name: &str, owner: &str) -> Result<Secret, VaultError> {
        let generation = self.store.generation().await?;
        let key = (name.to_string(), owner.to_string());
        {
            let opened = read(&self.opened);
            if opened.generation == Some(generation)
                && let Some(s) = opened.values.get(&key)
            {
                return Ok(s.clone());
            }
        }
        let mut tx = self.store.begin().await?;
        let rows = tx.vault_rows(Some(name), Some(owner)).await?;
        tx.commit().await?;
        let row = rows.into_iter().next().ok_or_else(|| VaultError::Missing {
            name: name.to_string(),
            owner: owner.to_string(),
        })?;
        let secret = self.unseal(&row)?;
        let mut opened = write(&self.opened);
        if opened.generation != Some(generation) {
            opened.values.clear();
            opened.generation = Some(generation);
        }
        opened.values.insert(key, secret.clone());
        Ok(secret)
    }

    /// The id of the newest master key.
    pub fn current_key_id(&self) -> String {
        read(&self.keys)
            .first()
            .map(|k| k.id.clone())
            .unwrap_or_default()
    }
}

/// Rotation's first step: a new key put first in the key file (the old ones kept, so every
/// gateway still opens every row). Returns the new key's id.
pub fn add_key(file: &Path) -> Result<String, VaultError> {
    let at = |e: String| VaultError::Key(format!("{}: {e}", file.display()));
    let old = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| at(e.to_string()))?);
    parse_keys(&old).map_err(|e| at(e.to_string()))?;
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    let text = Zeroizing::new(format!("{}\n{}", hex::encode(*key), old.as_str()));
    replace_private(file, &text).map_err(at)?;
    Ok(master(&key)?.id)
}

/// Rotation's last step: every key but the newest dropped from the key file.
pub fn keep_newest_key(file: &Path) -> Result<(), VaultError> {
    let at = |e: String| VaultError::Key(format!("{}: {e}", file.display()));
    let text = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| at(e.to_string()))?);
    let newest = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| at("holds no key".into()))?;
    let line = Zeroizing::new(format!("{newest}\n"));
    replace_private(file, &line).map_err(at)
}

/// Rotates the master key of the key file `file` while gateways keep serving: a new key first
/// in the file (so every reader holds both), every row re-sealed with it in passes until none
/// is sealed with an old key (a value written meanwhile with an old key is caught by the next
/// pass), then the old keys dropped. Returns the new key's id and how many rows were re-sealed.
pub async fn rotate(store: &Arc<dyn Store>, file: &Path) -> Result<(String, usize), VaultError> {
    let new_id = add_key(file)?;
    let vault = Vault::open(KeySource::File(file.to_path_buf()), store.clone())?;
    let mut resealed = 0;
    for _ in 0..10 {
        let mut tx = store.begin().await?;
        let old: Vec<VaultRow> = tx
            .vault_rows(None, None)
            .await?
            .into_iter()
            .filter(|r| r.key_id != new_id)
            .collect();
        if old.is_empty() {
            tx.commit().await?;
            keep_newest_key(file)?;
            return Ok((new_id, resealed));
        }
        for row in &old {
            let value = vault.unseal(row)?;
            let mut fresh = vault.seal(&row.name, &row.owner, value.expose(), row.updated_at)?;
            fresh.created_at = row.created_at;
            tx.vault_put(&fresh).await?;
            resealed += 1;
        }
        tx.commit().await?;
    }
    Err(VaultError::Key(format!(
        "{}: secrets kept being sealed with an old key; the old keys stay in the file, run rotate-key again",
        file.display()
    )))
}

/// Writes `text` to a new file (mode 0600) next to `file`, then renames it over `file`.
fn replace_private(file: &Path, text: &str) -> Result<(), String> {
    let tmp = file.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    crate::consent::write_private(&tmp, text.as_bytes()).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, file).map_err(|e| e.to_string())
}

/// Replaces every `${vault:NAME}` in `template` with the gateway-wide secret `NAME`.
pub async fn resolve(
    vault: Option<&Vault>,
    template: &str,
) -> Result<Zeroizing<String>, VaultError> {
    let mut out = Zeroizing::new(String::with_capacity(template.len()));
    let mut rest = template;
    while let Some(at) = rest.find("${vault:") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "${vault:".len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let name = &after[..end];
        let vault = vault.ok_or_else(|| VaultError::Missing {
            name: name.to_string(),
            owner: String::new(),
        })?;
        out.push_str(vault.get(name, "").await?.expose());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn setup() -> (tempfile::TempDir, Arc<dyn Store>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            crate::store::sqlite::SqliteStore::open(&dir.path().join("w.db"))
                .await
                .unwrap(),
        );
        let file = dir.path().join("vault.key");
        (dir, store, file)
    }

    async fn put(store: &Arc<dyn Store>, vault: &Vault, name: &str, owner: &str, value: &str) {
        let row = vault.seal(name, owner, value, 1).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.vault_put(&row).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn rows(store: &Arc<dyn Store>) -> Vec<VaultRow> {
        let mut tx = store.begin().await.unwrap();
        let rows = tx.vault_rows(None, None).await.unwrap();
        tx.commit().await.unwrap();
        rows
    }

    #[tokio::test]
    async fn values_round_trip_and_never_print() {
        let (_d, store, file) = setup().await;
        let vault = Vault::open(KeySource::File(file.clone()), store.clone()).unwrap();
        put(&store, &vault, "gh", "", "ghp_secret_value").await;
        let s = vault.get("gh", "").await.unwrap();
        assert_eq!(s.expose(), "ghp_secret_value");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let row = &rows(&store).await[0];
        assert!(!format!("{row:?}").contains("ghp"));
        assert!(
            !row.sealed.windows(4).any(|w| w == b"ghp_"),
            "sealed, not stored"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = vault.get("nope", "").await.unwrap_err().to_string();
        assert_eq!(e, "no secret \"nope\"");
        let resolved = resolve(Some(&vault), "Bearer ${vault:gh}").await.unwrap();
        assert_eq!(resolved.as_str(), "Bearer ghp_secret_value");
    }

    #[tokio::test]
    async fn a_wrong_master_key_fails_cleanly_and_touches_nothing() {
        let (d, store, file) = setup().await;
        let vault = Vault::open(KeySource::File(file.clone()), store.clone()).unwrap();
        put(&store, &vault, "gh", "", "v1").await;
        let before = rows(&store).await;
        let other = d.path().join("other.key");
        let wrong = Vault::open(KeySource::File(other), store.clone()).unwrap();
        let e = wrong.get("gh", "").await.unwrap_err();
        assert!(matches!(e, VaultError::UnknownKey { .. }), "{e}");
        assert!(!e.to_string().contains("v1"));
        // The same key id with other key bytes: the tag does not verify.
        let mut forged = before[0].clone();
        forged.key_id = wrong.current_key_id();
        assert!(matches!(
            wrong.unseal(&forged),
            Err(VaultError::Tampered { .. })
        ));
        assert_eq!(rows(&store).await, before, "nothing changed");
        assert_eq!(vault.get("gh", "").await.unwrap().expose(), "v1");
    }

    #[tokio::test]
    async fn ciphertexts_swapped_between_rows_do_not_open() {
        let (_d, store, file) = setup().await;
        let vault = Vault::open(KeySource::File(file), store.clone()).unwrap();
        put(&store, &vault, "a", "", "value-a").await;
        put(&store, &vault, "b", "alice", "value-b").await;
        let rs = rows(&store).await;
        let (a, b) = (&rs[0], &rs[1]);
        let mut swapped = a.clone();
        (swapped.nonce, swapped.sealed) = (b.nonce.clone(), b.sealed.clone());
        assert!(matches!(
            vault.unseal(&swapped),
            Err(VaultError::Tampered { .. })
        ));
        let mut moved = b.clone();
        moved.owner = "mallory".into();
        assert!(
            matches!(vault.unseal(&moved), Err(VaultError::Tampered { .. })),
            "bound to its owner"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn rotation_under_concurrent_reads_loses_nothing() {
        let (_d, store, file) = setup().await;
        let vault = Arc::new(Vault::open(KeySource::File(file.clone()), store.clone()).unwrap());
        for i in 0..50 {
            put(&store, &vault, &format!("s{i}"), "", &format!("value-{i}")).await;
        }
        let old_id = vault.current_key_id();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for r in 0..3 {
            let (vault, stop) = (vault.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = (reads as usize * 7 + r) % 50;
                    let v = vault.get(&format!("s{i}"), "").await.unwrap();
                    assert_eq!(v.expose(), format!("value-{i}"));
                    reads += 1;
                }
                reads
            }));
        }
        let (new_id, resealed) = rotate(&store, &file).await.unwrap();
        assert_eq!(resealed, 50);
        assert_ne!(new_id, old_id);
        // Readers keep going after the old key left the file.
        for i in 0..50 {
            assert_eq!(
                vault.get(&format!("s{i}"), "").await.unwrap().expose(),
                format!("value-{i}")
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.await.unwrap() > 0);
        }
        assert!(rows(&store).await.iter().all(|r| r.key_id == new_id));
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 1, "the old key is gone");
    }
}
