//! Who is calling. Every request resolves to a [`Principal`]; a session id never does.

use std::sync::Arc;

use crate::config::IdentityConfig;

/// The caller of one request: the user, the agent acting for them, and their groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: Arc<str>,
    pub agent: Option<Arc<str>>,
    pub groups: Vec<Arc<str>>,
}

/// Resolves callers. Today the only mode is the loopback test profile from config, which
/// fixes the identity; config validation refuses it on any non-loopback address.
#[derive(Debug)]
pub struct Identity {
    fixed: Arc<Principal>,
}

impl Identity {
    pub fn new(config: &IdentityConfig) -> Identity {
        let fixed = Principal {
            user: Arc::from(config.test_user.as_str()),
            agent: None,
            groups: config
                .test_groups
                .iter()
                .map(|g| Arc::from(g.as_str()))
                .collect(),
        };
        Identity {
            fixed: Arc::new(fixed),
        }
    }

    pub fn authenticate(&self, _headers: &http::HeaderMap) -> Arc<Principal> {
        self.fixed.clone()
    }
}
