//! What a handler may do while a request runs, whatever the transport and era: send
//! notifications that belong to the request (progress, log messages), learn what the client
//! declared it can do, and — legacy only — send the client a request and await its reply.
//!
//! Every outgoing message goes to the request's outbox. Over HTTP that is the request's own
//! response stream; over stdio it is stdout.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use warden_mcp::era::{Era, META_CLIENT_CAPABILITIES, MODERN_VERSION};
use warden_mcp::{Id, Message, RpcError, codes};

use crate::catalog::LOG_LEVELS;
use crate::conversation::Conversation;
use crate::state::Fixture;

/// Where the messages a request produces go, in order.
pub(crate) type Outbox = mpsc::UnboundedSender<Message>;

/// `_meta` key of the per-request minimum log level (modern).
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// A client capability the fixture may need for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capability {
    Elicitation,
    Sampling,
    Roots,
}

impl Capability {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Capability::Elicitation => "elicitation",
            Capability::Sampling => "sampling",
            Capability::Roots => "roots",
        }
    }
}

/// The client capabilities the fixture cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientCaps {
    /// Form-mode elicitation: `elicitation: {}` or `elicitation: { form: {} }`.
    pub elicitation_form: bool,
    pub sampling: bool,
    pub roots: bool,
}

impl ClientCaps {
    pub(crate) fn from_map(caps: Option<&Map<String, Value>>) -> ClientCaps {
        let Some(caps) = caps else {
            return ClientCaps::default();
        };
        let elicitation_form = match caps.get("elicitation") {
            Some(Value::Object(e)) => e.is_empty() || e.contains_key("form"),
            _ => false,
        };
        ClientCaps {
            elicitation_form,
            sampling: caps.get("sampling").is_some_and(Value::is_object),
            roots: caps.get("roots").is_some_and(Value::is_object),
        }
    }

    pub(crate) fn has(self, capability: Capability) -> bool {
        match capability {
            Capability::Elicitation => self.elicitation_form,
            Capability::Sampling => self.sampling,
            Capability::Roots => self.roots,
        }
    }
}

pub(crate) struct Exchange {
    pub era: Era,
    outbox: Outbox,
    caps: ClientCaps,
    progress_token: Option<Value>,
    /// Modern: index into `LOG_LEVELS` from the request's `_meta`, `None` = send no logs.
    modern_log_level: Option<usize>,
    /// Legacy: the state `initialize` set up.
    conversation: Option<Arc<Conversation>>,
}

impl Exchange {
    /// A modern request: capabilities and log level come from its `_meta`.
    pub(crate) fn modern(msg: &Message, outbox: Outbox) -> Result<Exchange, RpcError> {
        let caps = msg.meta_value(META_CLIENT_CAPABILITIES);
        let caps = caps.as_ref().and_then(Value::as_object);
        let modern_log_level = match msg.meta_value(META_LOG_LEVEL).as_ref() {
            None => None,
            Some(level) => Some(level_index(level).ok_or_else(|| {
                RpcError::new(
                    codes::INVALID_PARAMS,
                    format!("unknown log level in _meta: {level}"),
                )
            })?),
        };
        Ok(Exchange {
            era: Era::Modern,
            outbox,
            caps: ClientCaps::from_map(caps),
            progress_token: progress_token(msg),
            modern_log_level,
            conversation: None,
        })
    }

    /// A legacy request: capabilities and log level come from the conversation.
    pub(crate) fn legacy(
        msg: &Message,
        conversation: Arc<Conversation>,
        outbox: Outbox,
    ) -> Exchange {
        Exchange {
            era: Era::Legacy,
            outbox,
            caps: conversation.caps(),
            progress_token: progress_token(msg),
            modern_log_level: None,
            conversation: Some(conversation),
        }
    }

    /// The protocol version this request is served under.
    pub(crate) fn version(&self) -> &'static str {
        match &self.conversation {
            Some(c) => c.version(),
            None => MODERN_VERSION,
        }
    }

    pub(crate) fn conversation(&self) -> Option<&Arc<Conversation>> {
        self.conversation.as_ref()
    }

    pub(crate) fn has(&self, capability: Capability) -> bool {
        self.caps.has(capability)
    }

    pub(crate) fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Sends `notifications/progress` if the request asked for progress.
    pub(crate) fn progress(&self, progress: u64, total: u64) {
        if let Some(token) = &self.progress_token {
            let params = json!({
                "progressToken": token,
                "progress": progress,
                "total": total,
                "message": format!("step {progress} of {total}"),
            });
            self.send(Message::notification("notifications/progress", params));
        }
    }

    /// Sends `notifications/message` unless the level is below the one in force; returns
    /// whether it was sent. Modern requests get logs only when their `_meta` asks.
    pub(crate) fn log(&self, level: &str, data: Value) -> bool {
        let Some(index) = LOG_LEVELS.iter().position(|l| *l == level) else {
            return false;
        };
        let minimum = match (&self.conversation, self.era) {
            (_, Era::Modern) => self.modern_log_level,
            (Some(c), Era::Legacy) => c
                .level()
                .and_then(|l| LOG_LEVELS.iter().position(|x| *x == l))
                .or(Some(0)),
            (None, Era::Legacy) => Some(0),
        };
        if minimum.is_none_or(|min| index < min) {
            return false;
        }
        let params = json!({ "level": level, "logger": "warden-fixture", "data": data });
        self.send(Message::notification("notifications/message", params));
        true
    }

    /// Legacy only: sends the client a request on this request's stream and waits for its
    /// reply. Dropping the future forgets the request.
    pub(crate) async fn ask_client(
        &self,
        fx: &Fixture,
        method: &str,
        params: Value,
    ) -> Result<Message, RpcError> {
        let Some(conversation) = &self.conversation else {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "modern requests cannot ask the client",
            ));
        };
        let id = Id::Int(fx.next_client_request_id());
        let (_pending, reply) = conversation.expect_reply(id.clone());
        self.send(Message::request(id, method, params));
        reply.await.map_err(|_| {
            RpcError::new(
                codes::INTERNAL_ERROR,
                "the session ended before the client replied",
            )
        })
    }

    /// Adds the caching hints of the modern era (`ttlMs`, `cacheScope`) to a result.
    pub(crate) fn cacheable(&self, result: &mut Map<String, Value>, ttl_ms: u64, public: bool) {
        if self.era == Era::Modern {
            result.insert("ttlMs".into(), ttl_ms.into());
            result.insert(
                "cacheScope".into(),
                if public { "public" } else { "private" }.into(),
            );
        }
    }

    fn send(&self, msg: Message) {
        // The receiver is gone only when the client stopped listening; nothing to do then.
        let _ = self.outbox.send(msg);
    }
}

fn progress_token(msg: &Message) -> Option<Value> {
    match msg.meta_value("progressToken")? {
        t @ (Value::String(_) | Value::Number(_)) => Some(t),
        _ => None,
    }
}

fn level_index(level: &Value) -> Option<usize> {
    let level = level.as_str()?;
    LOG_LEVELS.iter().position(|l| *l == level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modern(meta: Value) -> (Exchange, mpsc::UnboundedReceiver<Message>) {
        let msg = Message::request(Id::Int(1), "tools/call", json!({ "_meta": meta }));
        let (tx, rx) = mpsc::unbounded_channel();
        (Exchange::modern(&msg, tx).unwrap(), rx)
    }

    #[test]
    fn reads_capabilities() {
        let caps = |v: Value| ClientCaps::from_map(v.as_object());
        assert!(caps(json!({ "elicitation": {} })).elicitation_form);
        assert!(caps(json!({ "elicitation": { "form": {} } })).elicitation_form);
        assert!(!caps(json!({ "elicitation": { "url": {} } })).elicitation_form);
        assert!(caps(json!({ "sampling": {}, "roots": { "listChanged": true } })).roots);
        assert_eq!(caps(json!({})), ClientCaps::default());
    }

    #[test]
    fn modern_logs_only_when_asked() {
        let (ex, mut rx) = modern(json!({}));
        assert!(!ex.log("emergency", json!("x")));
        assert!(rx.try_recv().is_err());
        let (ex, mut rx) = modern(json!({ META_LOG_LEVEL: "warning" }));
        assert!(!ex.log("info", json!("x")));
        assert!(ex.log("error", json!("x")));
        assert_eq!(
            rx.try_recv().unwrap().method(),
            Some("notifications/message")
        );
    }

    #[test]
    fn refuses_unknown_log_levels() {
        let msg = Message::request(
            Id::Int(1),
            "x",
            json!({ "_meta": { META_LOG_LEVEL: "loud" } }),
        );
        let (tx, _rx) = mpsc::unbounded_channel();
        assert_eq!(
            Exchange::modern(&msg, tx).err().unwrap().code,
            codes::INVALID_PARAMS
        );
    }

    #[test]
    fn legacy_logs_everything_until_a_level_is_set() {
        let c = Arc::new(Conversation::default());
        let msg = Message::request(Id::Int(1), "tools/call", json!({}));
        let (tx, _rx) = mpsc::unbounded_channel();
        let ex = Exchange::legacy(&msg, c.clone(), tx);
        assert!(ex.log("debug", json!("x")));
        c.set_level("error");
        assert!(!ex.log("warning", json!("x")));
        assert!(ex.log("critical", json!("x")));
    }
}
