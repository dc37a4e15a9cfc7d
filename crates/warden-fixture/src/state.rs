//! The state one running fixture shares between all its connections: options, the catalog,
//! whether the `extra` tool is on, the change feed, counters and the legacy HTTP sessions.

use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::catalog::Catalog;
use crate::session::Sessions;

/// How a fixture behaves. `Default` gives every list on one page.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Page size of `tools/list`; `None` puts every tool on one page.
    pub page_size: Option<NonZeroUsize>,
    /// Answer every legacy HTTP request (notifications still get 202) with a chunked
    /// `text/event-stream` that carries the reply as its one event and then ends, as servers
    /// built with the official TypeScript SDK or `rmcp` do; otherwise a request answers in
    /// plain JSON unless it sends something before its reply.
    pub sse_always: bool,
    /// An `outputSchema` for `lookup_customer` (it has none by default), to test that a
    /// redacted `structuredContent` must still match it.
    pub lookup_output_schema: Option<Value>,
    /// Fields laid over tool definitions in `tools/list`, by tool name, changeable while the
    /// fixture runs: a server that changes what a tool claims to do (a "rug pull").
    pub tool_edits: Option<ToolEdits>,
    /// Keep every distinct request header (`name: value`) seen on HTTP, listed as `headers` in
    /// `fixture://stats`: a test sees exactly what a gateway sent upstream.
    pub record_headers: bool,
}

/// Fields laid over listed tool definitions, by tool name; see [`Options::tool_edits`].
pub type ToolEdits = std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, Value>>>;

/// Something that changed and that listeners (legacy GET streams, modern
/// `subscriptions/listen` streams, stdio clients) may want to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    ToolsListChanged,
}

/// Counters a test can read through the `fixture://stats` resource.
#[derive(Default)]
pub(crate) struct Stats {
    /// TCP connections accepted by the HTTP listener (stdio: none).
    pub connections: AtomicU64,
    pub tool_calls: AtomicU64,
    pub slow_started: AtomicU64,
    pub slow_completed: AtomicU64,
    pub slow_cancelled: AtomicU64,
    /// Distinct `name: value` request headers, with [`Options::record_headers`].
    pub headers: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn to_json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "connections": get(&self.connections),
            "toolCalls": get(&self.tool_calls),
            "slowStarted": get(&self.slow_started),
            "slowCompleted": get(&self.slow_completed),
            "slowCancelled": get(&self.slow_cancelled),
            "headers": self.headers.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

pub(crate) struct Fixture {
    pub options: Options,
    pub catalog: Catalog,
    pub stats: Stats,
    pub sessions: Sessions,
    extra: AtomicBool,
    changes: broadcast::Sender<Change>,
    /// Ids of the requests the fixture sends to legacy clients.
    next_client_request: AtomicU64,
    /// Keys the digest that binds a `requestState` to its call; random per process.
    state_key: std::collections::hash_map::RandomState,
}

impl Fixture {
    pub(crate) fn new(options: Options) -> Fixture {
        let (changes, _) = broadcast::channel(64);
        Fixture {
            options,
            catalog: Catalog::new(),
            stats: Stats::default(),
            sessions: Sessions::default(),
            extra: AtomicBool::new(false),
            changes,
            next_client_request: AtomicU64::new(1),
            state_key: Default::default(),
        }
    }

    pub(crate) fn extra_enabled(&self) -> bool {
        self.extra.load(Ordering::Acquire)
    }

    /// Flips the `extra` tool and announces the change; returns whether it is now on.
    pub(crate) fn toggle_extra(&self) -> bool {
        let now_on = !self.extra.fetch_xor(true, Ordering::AcqRel);
        // Nobody listening is fine: the change is simply not announced.
        let _ = self.changes.send(Change::ToolsListChanged);
        now_on
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub(crate) fn next_client_request_id(&self) -> i64 {
        // Wrapping into negative ids would take 2^63 requests.
        self.next_client_request.fetch_add(1, Ordering::Relaxed) as i64
    }

    /// The `requestState` the fixture hands out for one multi-round-trip call: a keyed
    /// digest of the method, the tool and its arguments, so a retry with a different
    /// call, or a tampered state, is recognised and refused.
    pub(crate) fn request_state(&self, tool: &str, arguments: &Value) -> String {
        let mut h = self.state_key.build_hasher();
        "tools/call".hash(&mut h);
        tool.hash(&mut h);
        arguments.to_string().hash(&mut h);
        format!("fx1.{tool}.{:016x}", h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_state_binds_tool_and_arguments() {
        let fx = Fixture::new(Options::default());
        let a = fx.request_state("ask", &json!({ "message": "hi" }));
        assert_eq!(a, fx.request_state("ask", &json!({ "message": "hi" })));
        assert_ne!(a, fx.request_state("ask", &json!({ "message": "ho" })));
        assert_ne!(a, fx.request_state("sample", &json!({ "message": "hi" })));
        let other = Fixture::new(Options::default());
        assert_ne!(a, other.request_state("ask", &json!({ "message": "hi" })));
    }

    #[test]
    fn toggling_announces_each_change() {
        let fx = Fixture::new(Options::default());
        let mut rx = fx.subscribe();
        assert!(fx.toggle_extra());
        assert!(fx.extra_enabled());
        assert!(!fx.toggle_extra());
        assert_eq!(rx.try_recv().unwrap(), Change::ToolsListChanged);
        assert_eq!(rx.try_recv().unwrap(), Change::ToolsListChanged);
    }
}
