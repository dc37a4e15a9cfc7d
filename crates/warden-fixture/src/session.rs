//! Legacy Streamable HTTP sessions: minted by `initialize`, named by the `Mcp-Session-Id`
//! header, ended by DELETE. The modern era has no sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::conversation::Conversation;

pub(crate) struct Session {
    pub conversation: Arc<Conversation>,
    /// Cancelled when the session ends; ends its GET stream.
    pub ended: CancellationToken,
    /// Whether a GET stream is open: the fixture allows one, so that no message is ever
    /// sent on two streams.
    get_stream: AtomicBool,
}

impl Session {
    /// Claims the session's one GET stream; `None` if it is already open. Dropping the
    /// claim frees it.
    pub(crate) fn claim_get_stream(self: &Arc<Self>) -> Option<GetStreamClaim> {
        let taken = self.get_stream.swap(true, Ordering::AcqRel);
        (!taken).then(|| GetStreamClaim(self.clone()))
    }
}

pub(crate) struct GetStreamClaim(Arc<Session>);

impl Drop for GetStreamClaim {
    fn drop(&mut self) {
        self.0.get_stream.store(false, Ordering::Release);
    }
}

#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        // The map is consistent between statements, so a poisoned lock still holds sound data.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh session id: 128 random bits in hex (visible ASCII, as the spec requires).
    pub(crate) fn new_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    pub(crate) fn insert(&self, id: String, conversation: Arc<Conversation>) {
        let session = Session {
            conversation,
            ended: CancellationToken::new(),
            get_stream: AtomicBool::new(false),
        };
        self.map().insert(id, Arc::new(session));
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    /// Ends a session: its GET stream closes, its running calls are cancelled, and its id
    /// is unknown from now on. `false` if there was no such session.
    pub(crate) fn end(&self, id: &str) -> bool {
        let Some(session) = self.map().remove(id) else {
            return false;
        };
        session.ended.cancel();
        session.conversation.cancel_all();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_until_ended() {
        let sessions = Sessions::default();
        let id = Sessions::new_id();
        assert_eq!(id.len(), 32);
        sessions.insert(id.clone(), Arc::default());
        let s = sessions.get(&id).unwrap();
        let claim = s.claim_get_stream().unwrap();
        assert!(s.claim_get_stream().is_none());
        drop(claim);
        assert!(s.claim_get_stream().is_some());
        assert!(sessions.end(&id));
        assert!(s.ended.is_cancelled());
        assert!(sessions.get(&id).is_none());
        assert!(!sessions.end(&id));
    }
}
