//! Verified tokens, by the SHA-256 of the token: steady-state authentication costs a hash and a
//! map lookup. Bounded in size; an entry never outlives its token's `exp`; entries go when the
//! key that signed them leaves the provider's JWKS or when anything is revoked.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Principal;

struct Entry {
    principal: Arc<Principal>,
    expires_at: i64,
    kid: Option<String>,
}

pub struct TokenCache {
    map: RwLock<HashMap<[u8; 32], Entry>>,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            map: RwLock::default(),
            capacity,
        }
    }

    pub fn get(&self, digest: &[u8; 32], now: i64) -> Option<Arc<Principal>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(digest)
            .filter(|e| e.expires_at > now)
            .map(|e| e.principal.clone())
    }

    pub fn insert(&self, digest: [u8; 32], principal: Arc<Principal>, kid: Option<String>) {
        if self.capacity == 0 {
            return;
        }
        let Some(expires_at) = principal.expires_at else {
            return;
        };
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            let now = crate::store::now();
            map.retain(|_, e| e.expires_at > now);
            if map.len() >= self.capacity {
                // Still full of live tokens: drop the ones expiring soonest.
                let mut by_expiry: Vec<i64> = map.values().map(|e| e.expires_at).collect();
                by_expiry.sort_unstable();
                let cut = by_expiry[by_expiry.len() / 4];
                map.retain(|_, e| e.expires_at > cut);
            }
        }
        map.insert(
            digest,
            Entry {
                principal,
                expires_at,
                kid,
            },
        );
    }

    pub fn purge_keys(&self, kids: &[String]) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| e.kid.as_ref().is_none_or(|k| !kids.contains(k)));
    }

    pub fn purge_all(&self) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AuthMethod;

    fn principal(exp: i64) -> Arc<Principal> {
        Arc::new(Principal {
            user: "u".into(),
            agent: None,
            groups: vec![],
            scopes: vec![],
            token_id: None,
            expires_at: Some(exp),
            method: AuthMethod::Jwt,
        })
    }

    #[test]
    fn entries_never_outlive_their_token() {
        let c = TokenCache::new(10);
        c.insert([1; 32], principal(100), None);
        assert!(c.get(&[1; 32], 99).is_some());
        assert!(c.get(&[1; 32], 100).is_none());
    }

    #[test]
    fn stays_bounded_and_drops_keys_that_left() {
        let now = crate::store::now();
        let c = TokenCache::new(8);
        for i in 0..50u8 {
            c.insert(
                [i; 32],
                principal(now + 1000 + i64::from(i)),
                Some(format!("k{}", i % 2)),
            );
            assert!(c.len() <= 8);
        }
        c.purge_keys(&["k1".into()]);
        assert!(
            c.get(&[49; 32], now).is_none(),
            "a token of a removed key is gone"
        );
        assert!(c.get(&[48; 32], now).is_some());
    }
}
