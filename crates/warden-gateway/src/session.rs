//! Legacy-era sessions: minted by Warden on `initialize`, bound to the principal that opened
//! them, ended by DELETE or idleness. A session id is a handle, never a proof of identity:
//! the same id presented by another principal is answered as unknown (404).

// Sessions, and the requests Warden sends to a client, are found by ids Warden made: foldhash
// (a fraction of SipHash's cost, on every call) is enough there. A session's calls are kept by
// ids its client chose: a few in a list, more in a map with std's SipHash, which an adversary
// cannot make collide; foldhash does not claim that (see `Calls`).
use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use warden_mcp::{Id, Message};

use crate::call::Cancel;
use crate::catalog::lock;
use crate::identity::Principal;
use crate::upstream::ServerRequest;

pub struct Session {
    pub id: Arc<str>,
    pub principal: Arc<Principal>,
    pub protocol_version: String,
    pub client_capabilities: Value,
    pub client_info: Value,
    pub log_level: Mutex<Option<String>>,
    last_seen: Mutex<Instant>,
    /// Requests sent to this client, by the id Warden gave them: relayed from upstreams, or
    /// Warden's own.
    server_requests: Mutex<HashMap<Id, Pending>>,
    /// Calls in flight, by the client's request id, to cancel them.
    calls: Mutex<Calls>,
    next_id: AtomicU64,
    /// Cancelled when the session ends: its GET streams stop (its calls are cancelled one by
    /// one, see [`Calls::end`]).
    pub ended: CancellationToken,
}

impl Session {
    /// Whether the client declared a capability, e.g. `"elicitation"` or `"sampling"`.
    pub fn declares(&self, capability: &str) -> bool {
        self.client_capabilities.get(capability).is_some()
    }

    pub fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    fn pending(&self, pending: Pending) -> Id {
        let id = Id::Str(format!(
            "warden-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ));
        lock(&self.server_requests).insert(id.clone(), pending);
        id
    }

    /// Registers a request from an upstream and returns the id the client will see.
    pub fn relay_request(&self, request: ServerRequest) -> Id {
        self.pending(Pending::Upstream(Box::new(request)))
    }

    /// Registers Warden's own request to the client (`elicitation/create` for consent, say):
    /// `request` gets the id the client will answer, and the answer arrives on the receiver. The
    /// request is sent on a call's stream by the stage that made it.
    pub fn ask(&self, request: &mut Message) -> oneshot::Receiver<Message> {
        let (tx, rx) = oneshot::channel();
        let id = self.pending(Pending::Gateway(tx));
        request.set_id(&id);
        rx
    }

    /// The request a client's answer belongs to.
    pub fn take_server_request(&self, id: &Id) -> Option<Pending> {
        lock(&self.server_requests).remove(id)
    }

    /// Drops a relayed request the upstream withdrew; returns the id the client knew it by.
    pub fn forget_server_request(&self, upstream_id: &Id) -> Option<Id> {
        let mut map = lock(&self.server_requests);
        let ours = map
            .iter()
            .find(|(_, r)| matches!(r, Pending::Upstream(r) if r.upstream_id() == upstream_id))
            .map(|(id, _)| id.clone())?;
        map.remove(&ours);
        Some(ours)
    }

    /// Whether calls of this session are in flight.
    pub fn is_busy(&self) -> bool {
        !lock(&self.calls).is_empty()
    }

    /// Registers a call in flight and returns its cancel; one begun after the session ended is
    /// cancelled already.
    pub fn begin_call(&self, id: Id) -> Cancel {
        let cancel = Cancel::new();
        let mut calls = lock(&self.calls);
        if calls.ended {
            cancel.cancel();
        } else {
            calls.insert(id, cancel.clone());
        }
        cancel
    }

    pub fn end_call(&self, id: &Id) {
        lock(&self.calls).remove(id);
    }

    pub fn cancel_call(&self, id: &Id) -> bool {
        match lock(&self.calls).remove(id) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Ends the session: its calls in flight are cancelled, calls begun later are cancelled at
    /// once, and its GET streams end.
    fn close(&self) {
        let cancels = lock(&self.calls).end();
        for cancel in cancels {
            cancel.cancel();
        }
        self.ended.cancel();
    }
}

/// A session's calls in flight by the client's ids. While there are at most [`Calls::FEW`],
/// nearly always, they are found by comparing ids, which costs less than hashing one with
/// SipHash (each call was hashed three times); past that, and until they are all done, in a
/// map hashed with SipHash, so that a client with many calls in flight cannot make each lookup
/// slow.
#[derive(Default)]
struct Calls {
    few: Vec<(Id, Cancel)>,
    many: std::collections::HashMap<Id, Cancel>,
    /// The session has ended.
    ended: bool,
}

impl Calls {
    const FEW: usize = 8;

    fn is_empty(&self) -> bool {
        self.few.is_empty() && self.many.is_empty()
    }

    /// Keeps `token` for `id`, in place of one kept for it before.
    fn insert(&mut self, id: Id, token: Cancel) {
        if let Some((_, kept)) = self.few.iter_mut().find(|(k, _)| *k == id) {
            *kept = token;
        } else if self.many.is_empty() && self.few.len() < Calls::FEW {
            self.few.push((id, token));
        } else {
            self.many.extend(self.few.drain(..));
            self.many.insert(id, token);
        }
    }

    fn remove(&mut self, id: &Id) -> Option<Cancel> {
        match self.few.iter().position(|(k, _)| k == id) {
            Some(i) => Some(self.few.swap_remove(i).1),
            None if self.many.is_empty() => None,
            None => self.many.remove(id),
        }
    }

    /// Marks the session ended and gives up every call's cancel.
    fn end(&mut self) -> Vec<Cancel> {
        self.ended = true;
        let few = self.few.drain(..).map(|(_, c)| c);
        few.chain(self.many.drain().map(|(_, c)| c)).collect()
    }
}

/// A request sent to a client and not answered yet.
pub enum Pending {
    /// Relayed from an upstream: the answer goes back to it.
    Upstream(Box<ServerRequest>),
    /// Warden's own: the answer goes to the stage that waits for it.
    Gateway(oneshot::Sender<Message>),
}

impl Pending {
    /// Delivers the client's answer.
    pub async fn answer(self, msg: Message) {
        match self {
            Pending::Upstream(request) => (*request).reply(msg).await,
            // The stage may have stopped waiting (its call was cancelled); then nobody listens.
            Pending::Gateway(tx) => {
                let _ = tx.send(msg);
            }
        }
    }
}

/// Why a request's session cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionProblem {
    Missing,
    Unknown,
}

pub struct Sessions {
    map: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    idle: Duration,
    /// How many times idle sessions were looked for (a test waits for sweeps, not for time).
    sweeps: AtomicU64,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            map: RwLock::default(),
            idle,
            sweeps: AtomicU64::new(0),
        }
    }

    pub fn create(
        &self,
        principal: Arc<Principal>,
        protocol_version: String,
        client_capabilities: Value,
        client_info: Value,
    ) -> Arc<Session> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let id: Arc<str> =
            Arc::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let session = Arc::new(Session {
            id: id.clone(),
            principal,
            protocol_version,
            client_capabilities,
            client_info,
            log_level: Mutex::new(None),
            last_seen: Mutex::new(Instant::now()),
            server_requests: Mutex::default(),
            calls: Mutex::default(),
            next_id: AtomicU64::new(1),
            ended: CancellationToken::new(),
        });
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, session.clone());
        session
    }

    /// The session named by a request, if it exists and belongs to this principal.
    pub fn find(
        &self,
        id: Option<&str>,
        principal: &Principal,
    ) -> Result<Arc<Session>, SessionProblem> {
        let id = id.ok_or(SessionProblem::Missing)?;
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let session = map.get(id).ok_or(SessionProblem::Unknown)?;
        if session.principal.user != principal.user || session.principal.agent != principal.agent {
            return Err(SessionProblem::Unknown);
        }
        session.touch();
        Ok(session.clone())
    }

    pub fn end(&self, id: &str) -> Option<Arc<Session>> {
        let session = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)?;
        session.close();
        Some(session)
    }

    /// Ends sessions idle for longer than the configured time. A session with a call in flight
    /// is not idle, however long the call waits (for a person's approval, say).
    pub fn end_idle(&self) -> usize {
        self.sweeps.fetch_add(1, Ordering::Relaxed);
        let idle: Vec<Arc<str>> = {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            map.values()
                .filter(|s| !s.is_busy() && lock(&s.last_seen).elapsed() > self.idle)
                .map(|s| s.id.clone())
                .collect()
        };
        for id in &idle {
            self.end(id);
        }
        idle.len()
    }

    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found_by_id_however_many_are_in_flight() {
        let mut calls = Calls::default();
        for n in [1usize, Calls::FEW, Calls::FEW + 1, 20] {
            let tokens: Vec<Cancel> = (0..n).map(|_| Cancel::new()).collect();
            for (i, token) in tokens.iter().enumerate() {
                calls.insert(Id::Int(i as i64), token.clone());
            }
            assert_eq!(calls.many.is_empty(), n <= Calls::FEW, "{n}");
            // The same id again replaces the call kept for it.
            let (first, second) = (Cancel::new(), Cancel::new());
            calls.insert(Id::Str("x".into()), first);
            calls.insert(Id::Str("x".into()), second.clone());
            assert!(calls.remove(&Id::Int(99)).is_none());
            assert!(
                calls
                    .remove(&Id::Str("x".into()))
                    .is_some_and(|t| t.same(&second))
            );
            assert!(calls.remove(&Id::Str("x".into())).is_none());
            for (i, token) in tokens.iter().enumerate().rev() {
                let id = Id::Int(i as i64);
                assert!(calls.remove(&id).is_some_and(|t| t.same(token)), "{n} {i}");
                assert!(calls.remove(&id).is_none());
            }
            assert!(calls.is_empty(), "{n}");
        }
    }

    #[test]
    fn ending_a_session_cancels_its_calls_in_flight_and_any_begun_later() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let principal = Arc::new(Principal {
            user: "u".into(),
            agent: None,
            groups: vec![],
            scopes: vec![],
            token_id: None,
            expires_at: None,
            method: crate::identity::AuthMethod::TestProfile,
        });
        let session = sessions.create(principal, "2025-06-18".into(), Value::Null, Value::Null);
        // More than a few, so that both the list and the map hold calls.
        let cancels: Vec<Cancel> = (0..Calls::FEW as i64 + 3)
            .map(|i| session.begin_call(Id::Int(i)))
            .collect();
        let done = session.begin_call(Id::Str("done".into()));
        session.end_call(&Id::Str("done".into()));
        assert!(session.is_busy());
        assert!(cancels.iter().all(|c| !c.is_cancelled()));

        assert!(sessions.end(&session.id).is_some());
        assert!(cancels.iter().all(Cancel::is_cancelled));
        assert!(!done.is_cancelled(), "a call that ended is not cancelled");
        assert!(!session.is_busy());
        assert!(session.ended.is_cancelled());
        let late = session.begin_call(Id::Int(1));
        assert!(late.is_cancelled());
        assert!(!session.is_busy());
    }
}
