//! API keys for headless service agents: `wdn_<id>_<secret>`. The key is shown once when it is
//! created; the store keeps the id and the SHA-256 of the secret, compared in constant time.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{AuthError, AuthMethod, Principal, sha256_hex};
use crate::store::StoredKey;

pub const PREFIX: &str = "wdn_";

/// A new key: the text to give the user once, and what to store.
pub struct NewKey {
    pub key: String,
    pub stored: StoredKey,
}

/// Makes a key for `name` with the given groups, scopes and lifetime (seconds).
pub fn generate(
    name: &str,
    groups: Vec<String>,
    scopes: Vec<String>,
    lifetime: Option<i64>,
) -> NewKey {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::fill(&mut id);
    rand::fill(&mut secret);
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let now = crate::store::now();
    NewKey {
        key: format!("{PREFIX}{id}_{secret}"),
        stored: StoredKey {
            id,
            name: name.to_string(),
            hash: sha256_hex(secret.as_bytes()),
            groups,
            scopes,
            created_at: now,
            expires_at: lifetime.map(|l| now + l),
            revoked_at: None,
        },
    }
}

/// The keys the gateway accepts, as last read from the store.
#[derive(Default)]
pub struct ApiKeys {
    by_id: RwLock<HashMap<String, StoredKey>>,
}

impl ApiKeys {
    pub fn replace(&self, keys: Vec<StoredKey>) {
        *self.by_id.write().unwrap_or_else(|e| e.into_inner()) =
            keys.into_iter().map(|k| (k.id.clone(), k)).collect();
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let bad = || AuthError::InvalidToken("unknown API key".into());
        let rest = token.strip_prefix(PREFIX).ok_or_else(bad)?;
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        let keys = self.by_id.read().unwrap_or_else(|e| e.into_inner());
        let key = keys.get(id).ok_or_else(bad)?;
        let given = sha256_hex(secret.as_bytes());
        if !bool::from(given.as_bytes().ct_eq(key.hash.as_bytes())) {
            return Err(bad());
        }
        if key.revoked_at.is_some() {
            return Err(AuthError::Revoked("API key"));
        }
        if key.expires_at.is_some_and(|e| e <= crate::store::now()) {
            return Err(AuthError::InvalidToken("expired API key".into()));
        }
        Ok(Principal {
            user: key.name.as_str().into(),
            agent: Some(key.name.as_str().into()),
            groups: key.groups.iter().map(|g| g.as_str().into()).collect(),
            scopes: key.scopes.iter().map(|s| s.as_str().into()).collect(),
            token_id: Some(key.id.as_str().into()),
            expires_at: key.expires_at,
            method: AuthMethod::ApiKey,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_and_any_changed_byte_does_not() {
        let new = generate("ci", vec!["bots".into()], vec![], None);
        let keys = ApiKeys::default();
        keys.replace(vec![new.stored.clone()]);
        let p = keys.verify(&new.key).unwrap();
        assert_eq!(&*p.user, "ci");
        assert_eq!(p.method, AuthMethod::ApiKey);
        for i in PREFIX.len()..new.key.len() {
            let mut bytes = new.key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != new.key {
                assert!(
                    keys.verify(&changed).is_err(),
                    "byte {i} changed still verifies"
                );
            }
        }
        assert!(
            !new.stored.hash.contains(&new.key[PREFIX.len() + 17..]),
            "the secret is not stored"
        );
    }

    #[test]
    fn expired_and_revoked_keys_are_refused() {
        let mut new = generate("ci", vec![], vec![], Some(-1));
        let keys = ApiKeys::default();
        keys.replace(vec![new.stored.clone()]);
        assert_eq!(
            keys.verify(&new.key),
            Err(AuthError::InvalidToken("expired API key".into()))
        );
        new.stored.expires_at = None;
        new.stored.revoked_at = Some(1);
        keys.replace(vec![new.stored]);
        assert_eq!(keys.verify(&new.key), Err(AuthError::Revoked("API key")));
    }
}
