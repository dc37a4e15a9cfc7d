//! The `requestState` Warden hands a 2026-07-28 client with `input_required`: what it must
//! know when the client retries, sealed so that the client can neither read nor change it.
//!
//! AES-256-GCM (aws-lc-rs, a fresh random 96-bit nonce per seal) over a small JSON object,
//! with the associated data `warden-consent-state-v1`. The text is `wc1.` + base64url(nonce ‖
//! ciphertext ‖ tag). The key is 32 random bytes in `consent-state.key` in the data directory
//! (mode 0600), made on first start, so a state survives a restart; deleting the file makes
//! every outstanding state worthless (clients then get a fresh consent link).
//!
//! Opening checks the tag; the caller then checks the binding: the same principal, method,
//! name and argument digest as the retried call, and an expiry in the future. Single use is the
//! consent request's, in the store: a state names a consent request, and that request's grant
//! can let one call through once.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "wc1.";
const AAD: &[u8] = b"warden-consent-state-v1";
/// Longer states are not ours (and are not worth decrypting).
const MAX_STATE: usize = 16 * 1024;

/// What a sealed state binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The consent request.
    pub consent: String,
    pub user: String,
    pub agent: Option<String>,
    pub method: String,
    /// The name (or URI) the client called.
    pub name: String,
    pub digest: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The upstream's own `requestState` of the call, given back to it when the call goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The request is one to connect the caller's account (the connect stage's), not consent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connect: bool,
}

pub struct Sealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    /// The sealer whose key is in `dir`, making the key if there is none.
    pub fn in_dir(dir: &Path) -> std::io::Result<Sealer> {
        let path = dir.join("consent-state.key");
        let key = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a 32-byte key; delete it to make a new one",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                let mut bytes = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| std::io::Error::other("no randomness"))?;
                write_private(&path, &bytes)?;
                bytes
            }
            Err(e) => return Err(e),
        };
        Sealer::new(&key)
    }

    pub fn new(key: &[u8]) -> std::io::Result<Sealer> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, key)
            .map_err(|_| std::io::Error::other("not an AES-256 key"))?;
        Ok(Sealer { key })
    }

    pub fn seal(&self, state: &State) -> String {
        let mut bytes = serde_json::to_vec(state).unwrap_or_default();
        let Ok(nonce) = self
            .key
            .seal_in_place_append_tag(Aad::from(AAD), &mut bytes)
        else {
            // Sealing fails only on absurd sizes; an empty state opens as nothing.
            return String::new();
        };
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&bytes);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Whether `text` looks like a state of Warden's (it may still fail to open).
    pub fn is_ours(text: &str) -> bool {
        text.starts_with(PREFIX)
    }

    /// The state, if `text` was sealed by this key and not changed since.
    pub fn open(&self, text: &str) -> Option<State> {
        if text.len() > MAX_STATE {
            return None;
        }
        let body = text.strip_prefix(PREFIX)?;
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            consent: "c1".into(),
            user: "alice".into(),
            agent: Some("claude".into()),
            method: "tools/call".into(),
            name: "bank__transfer".into(),
            digest: "ab".repeat(32),
            expires_at: 2_000_000_000,
            upstream: Some("their-state".into()),
            connect: false,
        }
    }

    #[test]
    fn a_sealed_state_opens_only_unchanged_and_with_its_key() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let text = sealer.seal(&state());
        assert!(Sealer::is_ours(&text));
        assert_eq!(sealer.open(&text), Some(state()));
        assert!(!text.contains("alice"), "the state is encrypted");
        // Every single-character change is refused.
        let body = &text[PREFIX.len()..];
        for i in 0..body.len() {
            let mut changed = body.as_bytes().to_vec();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = format!("{PREFIX}{}", String::from_utf8(changed).unwrap());
            if changed != text {
                assert_eq!(sealer.open(&changed), None, "changed at {i}");
            }
        }
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&text), None);
        assert_eq!(sealer.open("wc1."), None);
        assert_eq!(sealer.open("not ours"), None);
        assert_ne!(sealer.seal(&state()), text, "a fresh nonce each time");
    }

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sealer::in_dir(dir.path()).unwrap();
        let text = first.seal(&state());
        let again = Sealer::in_dir(dir.path()).unwrap();
        assert_eq!(again.open(&text), Some(state()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("consent-state.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("consent-state.key"), b"short").unwrap();
        assert!(Sealer::in_dir(dir.path()).is_err());
    }
}
