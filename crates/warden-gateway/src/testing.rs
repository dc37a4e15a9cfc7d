//! A waiting stage for tests, installed with [`crate::server::start_with`] where consent holds
//! calls. It holds every call to one tool the way consent will: on a stream kept alive, as a call
//! in flight. Asked to, it sends the client a request of Warden's own (`elicitation/create`, form
//! mode) on the call's stream and lets the call go on once the answer arrives; otherwise the call
//! waits until the test releases it, or the client cancels it or goes away.
//!
//! Never part of a gateway that serves: no configuration installs it.

use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use warden_mcp::era::Era;
use warden_mcp::{Id, Message};

use crate::call::{Call, Held, Next, RequestStage, Staged};
use crate::gateway::Gateway;

/// What a test can see of the waiting stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    /// Calls waiting now.
    pub waiting: usize,
    /// Waits that ended without the call going on (cancelled, or the client went away).
    pub abandoned: usize,
    /// Waits that ended with the call going on.
    pub resumed: usize,
    /// The clients' answers to the stage's own requests, in order.
    pub answers: Vec<serde_json::Value>,
}

pub struct Waiting {
    tool: String,
    ask: bool,
    waits: watch::Sender<Waits>,
    released: watch::Sender<bool>,
}

impl Waiting {
    /// Holds every call to `tool` (the name the client uses) until [`Waiting::release`].
    pub fn new(tool: &str) -> Arc<Waiting> {
        Arc::new(Waiting {
            tool: tool.to_string(),
            ask: false,
            waits: watch::Sender::new(Waits::default()),
            released: watch::Sender::new(false),
        })
    }

    /// Holds every call to `tool` until a legacy client that declared form elicitation answers
    /// the stage's own `elicitation/create`; other clients wait for [`Waiting::release`].
    pub fn asking(tool: &str) -> Arc<Waiting> {
        let mut w = Waiting::new(tool);
        if let Some(w) = Arc::get_mut(&mut w) {
            w.ask = true;
        }
        w
    }

    pub fn watch(&self) -> watch::Receiver<Waits> {
        self.waits.subscribe()
    }

    /// Lets every waiting call go on, and every later one.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

/// Counts a wait as ended when dropped, however the wait ends.
struct Guard {
    waits: watch::Sender<Waits>,
    resumed: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let resumed = self.resumed;
        self.waits.send_modify(|w| {
            w.waiting -= 1;
            if resumed {
                w.resumed += 1;
            } else {
                w.abandoned += 1;
            }
        });
    }
}

impl RequestStage for Waiting {
    fn name(&self) -> &'static str {
        "test-waiting"
    }

    fn run<'a>(&'a self, _gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        let held = call.target.as_ref().is_some_and(|t| t.exposed == self.tool);
        if !held {
            return Staged::Now(Next::Continue);
        }
        self.waits.send_modify(|w| w.waiting += 1);
        let guard = Arc::new(Mutex::new(Guard {
            waits: self.waits.clone(),
            resumed: false,
        }));
        let session = call
            .ctx
            .session
            .clone()
            .filter(|s| self.ask && call.ctx.era == Era::Legacy && s.declares("elicitation"));
        let (waits, mut released) = (self.waits.clone(), self.released.subscribe());
        let resume = move |guard: Arc<Mutex<Guard>>| {
            if let Ok(mut g) = guard.lock() {
                g.resumed = true;
            }
            Held::Resume
        };
        let held = match session {
            Some(session) => {
                let mut request = Message::request(
                    Id::Int(0),
                    "elicitation/create",
                    json!({
                        "mode": "form",
                        "message": "Warden's test stage asks before this call goes on",
                        "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } } }
                    }),
                );
                let answer = session.ask(&mut request);
                let after = stream::once(async move {
                    let Ok(msg) = answer.await else {
                        return None;
                    };
                    let value = msg.into_value();
                    let result = value.get("result").cloned().unwrap_or(value);
                    waits.send_modify(|w| w.answers.push(result));
                    Some(resume(guard))
                })
                .filter_map(std::future::ready);
                stream::once(async move { Held::Interim(request) })
                    .chain(after)
                    .boxed()
            }
            None => stream::once(async move {
                // The sender lives as long as the stage, which outlives its calls.
                let _ = released.wait_for(|r| *r).await;
                resume(guard)
            })
            .boxed(),
        };
        Staged::Now(Next::Hold(held))
    }
}
