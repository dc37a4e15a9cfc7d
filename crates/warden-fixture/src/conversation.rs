//! A conversation is what one client connection carries across messages: the legacy state
//! `initialize` and `logging/setLevel` set, the fixture's own requests awaiting the client's
//! reply, and the calls still running (so `notifications/cancelled` can stop them).
//!
//! A legacy HTTP session owns one; a stdio connection owns one for both eras (modern
//! requests there only use the running-call registry). Modern HTTP needs none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use warden_mcp::era::{ASSUMED_WITHOUT_HEADER, LEGACY_VERSIONS};
use warden_mcp::{Id, Message};

use crate::catalog::LOG_LEVELS;
use crate::exchange::ClientCaps;

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every map kept
/// here stays consistent between statements, so the data is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
pub(crate) struct Conversation {
    /// Index into `LEGACY_VERSIONS` plus one; 0 until `initialize`.
    version: AtomicU8,
    caps: Mutex<ClientCaps>,
    /// Index into `LOG_LEVELS` plus one; 0 until `logging/setLevel` (then everything is sent).
    level: AtomicU8,
    initialized: std::sync::atomic::AtomicBool,
    pending: Mutex<HashMap<Id, oneshot::Sender<Message>>>,
    running: Mutex<HashMap<Id, (u64, CancellationToken)>>,
    /// Tells registrations under a reused id apart.
    next_call: std::sync::atomic::AtomicU64,
}

impl Conversation {
    /// Records what `initialize` negotiated.
    pub(crate) fn initialize(&self, version: &'static str, caps: ClientCaps) {
        let index = LEGACY_VERSIONS
            .iter()
            .position(|v| *v == version)
            .map_or(0, |i| i + 1);
        self.version.store(index as u8, Ordering::Release);
        *lock(&self.caps) = caps;
        self.initialized.store(true, Ordering::Release);
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// The negotiated legacy version, or the one a legacy server assumes without one.
    pub(crate) fn version(&self) -> &'static str {
        match self.version.load(Ordering::Acquire) {
            0 => ASSUMED_WITHOUT_HEADER,
            i => LEGACY_VERSIONS[usize::from(i) - 1],
        }
    }

    pub(crate) fn caps(&self) -> ClientCaps {
        *lock(&self.caps)
    }

    /// Sets the minimum level of `notifications/message`; `false` if the level is unknown.
    pub(crate) fn set_level(&self, level: &str) -> bool {
        match LOG_LEVELS.iter().position(|l| *l == level) {
            Some(i) => {
                self.level.store(i as u8 + 1, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// The minimum level set by `logging/setLevel`, if any.
    pub(crate) fn level(&self) -> Option<&'static str> {
        match self.level.load(Ordering::Acquire) {
            0 => None,
            i => Some(LOG_LEVELS[usize::from(i) - 1]),
        }
    }

    /// Registers a request the fixture is about to send to the client; the receiver gets
    /// the client's reply. Dropping the returned guard forgets the request.
    pub(crate) fn expect_reply(&self, id: Id) -> (PendingGuard<'_>, oneshot::Receiver<Message>) {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        (
            PendingGuard {
                conversation: self,
                id,
            },
            rx,
        )
    }

    /// Delivers a reply (result or error) from the client; `false` if nobody awaits it.
    pub(crate) fn deliver(&self, reply: Message) -> bool {
        let Some(id) = reply.id() else { return false };
        match lock(&self.pending).remove(&id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Registers a running call; `notifications/cancelled` for its id cancels the token.
    /// Dropping the guard unregisters it.
    pub(crate) fn start_call(&self, id: Id) -> (RunningGuard<'_>, CancellationToken) {
        let token = CancellationToken::new();
        let serial = self.next_call.fetch_add(1, Ordering::Relaxed);
        lock(&self.running).insert(id.clone(), (serial, token.clone()));
        (
            RunningGuard {
                conversation: self,
                id,
                serial,
            },
            token,
        )
    }

    /// Cancels the running call named by a `notifications/cancelled` params object.
    pub(crate) fn cancel(&self, params: Option<&serde_json::Map<String, Value>>) {
        let Some(id) = params
            .and_then(|p| p.get("requestId"))
            .and_then(Id::from_value)
        else {
            return;
        };
        if let Some((_, token)) = lock(&self.running).get(&id) {
            token.cancel();
        }
    }

    /// Cancels every running call and forgets every awaited reply (the session ended).
    pub(crate) fn cancel_all(&self) {
        for (_, token) in lock(&self.running).values() {
            token.cancel();
        }
        lock(&self.pending).clear();
    }
}

pub(crate) struct PendingGuard<'a> {
    conversation: &'a Conversation,
    id: Id,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.conversation.pending).remove(&self.id);
    }
}

pub(crate) struct RunningGuard<'a> {
    conversation: &'a Conversation,
    id: Id,
    serial: u64,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.conversation.running);
        // A client may reuse an id once its call ended; remove only our own entry.
        if running
            .get(&self.id)
            .is_some_and(|(serial, _)| *serial == self.serial)
        {
            running.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remembers_version_and_level() {
        let c = Conversation::default();
        assert_eq!(c.version(), ASSUMED_WITHOUT_HEADER);
        assert!(!c.is_initialized());
        c.initialize("2025-06-18", ClientCaps::default());
        assert_eq!(c.version(), "2025-06-18");
        assert_eq!(c.level(), None);
        assert!(c.set_level("warning"));
        assert!(!c.set_level("loud"));
        assert_eq!(c.level(), Some("warning"));
    }

    #[tokio::test]
    async fn delivers_replies_to_whoever_waits() {
        let c = Conversation::default();
        let (guard, rx) = c.expect_reply(Id::Int(7));
        let reply = Message::response(&Id::Int(7), json!({ "ok": true }));
        assert!(c.deliver(reply.clone()));
        assert_eq!(rx.await.unwrap(), reply);
        drop(guard);
        assert!(!c.deliver(reply));
    }

    #[test]
    fn cancels_running_calls_by_id() {
        let c = Conversation::default();
        let (guard, token) = c.start_call(Id::Str("a".into()));
        c.cancel(json!({ "requestId": "b" }).as_object());
        assert!(!token.is_cancelled());
        c.cancel(json!({ "requestId": "a" }).as_object());
        assert!(token.is_cancelled());
        drop(guard);
        assert!(lock(&c.running).is_empty());
    }
}
