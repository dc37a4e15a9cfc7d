//! Revoked token ids, users and agents, as last read from the store. Checked on every request,
//! after the token itself verified.

use std::collections::HashSet;
use std::sync::RwLock;

use super::{AuthError, Principal};
use crate::store::Revocation;

pub const KINDS: &[&str] = &["token", "user", "agent"];

#[derive(Default, PartialEq, Eq)]
struct Sets {
    tokens: HashSet<String>,
    users: HashSet<String>,
    agents: HashSet<String>,
}

#[derive(Default)]
pub struct Revocations {
    sets: RwLock<Sets>,
}

impl Revocations {
    /// Replaces the sets; true when something was added (cached tokens must then be dropped).
    pub fn replace(&self, list: Vec<Revocation>) -> bool {
        let mut new = Sets::default();
        for r in list {
            match r.kind.as_str() {
                "token" => new.tokens.insert(r.value),
                "user" => new.users.insert(r.value),
                "agent" => new.agents.insert(r.value),
                _ => false,
            };
        }
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        let added = !new.tokens.is_subset(&sets.tokens)
            || !new.users.is_subset(&sets.users)
            || !new.agents.is_subset(&sets.agents);
        *sets = new;
        added
    }

    pub fn check(&self, p: &Principal) -> Result<(), AuthError> {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
        if p.token_id
            .as_ref()
            .is_some_and(|t| sets.tokens.contains(&**t))
        {
            return Err(AuthError::Revoked("token"));
        }
        if sets.users.contains(&*p.user) {
            return Err(AuthError::Revoked("user"));
        }
        if p.agent.as_ref().is_some_and(|a| sets.agents.contains(&**a)) {
            return Err(AuthError::Revoked("agent"));
        }
        Ok(())
    }
}
