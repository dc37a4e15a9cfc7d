//! The calls in flight on one link, and where each message from the upstream goes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::broadcast;
use warden_mcp::{Id, Kind, Message};

use super::events::{self, EventRx, EventTx};
use super::{Link, Notice, ServerRequest, UpstreamEvent};

#[derive(Default, Debug)]
pub(super) struct Inflight {
    calls: Mutex<BTreeMap<i64, EventTx>>,
}

impl Inflight {
    pub fn register(&self, id: i64) -> EventRx {
        let (tx, rx) = events::channel();
        self.lock().insert(id, tx);
        rx
    }

    pub fn remove(&self, id: i64) -> Option<EventTx> {
        self.lock().remove(&id)
    }

    pub fn get(&self, id: i64) -> Option<EventTx> {
        self.lock().get(&id).cloned()
    }

    /// The most recent call, which receives server messages that name no call (stdio has no
    /// way to say which call a log line or an elicitation belongs to).
    pub fn latest(&self) -> Option<EventTx> {
        self.lock().values().next_back().cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Ends every call with `error`: the link is gone.
    pub async fn fail_all(&self, error: &super::UpstreamError) {
        let calls = std::mem::take(&mut *self.lock());
        for (_, tx) in calls {
            let _ = tx.send(UpstreamEvent::Failed(error.clone())).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, EventTx>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still sound.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Routes one message that arrived from the upstream on the link's shared channel
/// (stdout of a child, or the GET stream of an HTTP session).
pub(super) async fn dispatch(
    link: &Link,
    inflight: &Inflight,
    notices: &broadcast::Sender<Notice>,
    upstream: &std::sync::Arc<str>,
    user: &Option<std::sync::Arc<str>>,
    msg: Message,
) {
    tracing::debug!(upstream = %upstream, kind = ?msg.kind(), method = msg.method(), "from upstream");
    match msg.kind() {
        Kind::Response | Kind::Error => {
            let Some(Id::Int(id)) = msg.id() else {
                tracing::debug!(upstream = %upstream, "a reply for no call of ours; dropped");
                return;
            };
            if let Some(tx) = inflight.remove(id) {
                let _ = tx.send(UpstreamEvent::Done(msg)).await;
            }
        }
        Kind::Request => {
            let Some(upstream_id) = msg.id() else { return };
            if msg.method() == Some("ping") {
                let _ = link
                    .send(Message::response(&upstream_id, serde_json::json!({})))
                    .await;
                return;
            }
            let request = ServerRequest {
                msg,
                link: link.clone(),
                upstream_id,
            };
            match inflight.latest() {
                Some(tx) => {
                    if let Err(UpstreamEvent::Request(r)) =
                        tx.send(UpstreamEvent::Request(request)).await
                    {
                        r.refuse("the call this request belongs to has ended").await;
                    }
                }
                None => {
                    request
                        .refuse("Warden relays server requests only during a client's call")
                        .await
                }
            }
        }
        Kind::Notification => {
            let method = msg.method().unwrap_or_default();
            let target = match method {
                "notifications/progress" => {
                    let token = msg
                        .params()
                        .and_then(|p| p.get("progressToken"))
                        .and_then(|t| t.as_i64());
                    token.and_then(|t| inflight.get(t))
                }
                "notifications/message" | "notifications/cancelled" => inflight.latest(),
                _ => None,
            };
            match target {
                Some(tx) => {
                    let _ = tx.send(UpstreamEvent::Notification(msg)).await;
                }
                None if method != "notifications/progress" => {
                    let _ = notices.send(Notice {
                        upstream: upstream.clone(),
                        user: user.clone(),
                        msg,
                    });
                }
                None => {}
            }
        }
    }
}
