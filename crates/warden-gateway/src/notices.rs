//! Messages that belong to no call — list changes, resource updates — fanned out to the
//! clients that listen: a legacy session's GET stream, or a modern `subscriptions/listen` stream.

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use warden_mcp::{Id, Message};

use crate::call::{CallCtx, Frame, Reply, Stream};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::upstream::Notice;

/// Which notices a modern listener asked for.
#[derive(Clone, Debug, Default)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: Vec<String>,
}

impl Filter {
    fn from_params(p: &Value) -> Filter {
        let n = &p["notifications"];
        let flag = |k: &str| n.get(k).and_then(Value::as_bool).unwrap_or(false);
        let uris = n
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Filter {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris,
        }
    }

    fn wants(&self, msg: &Message) -> bool {
        match msg.method().unwrap_or_default() {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => msg
                .param_str("uri")
                .is_some_and(|u| self.uris.iter().any(|x| x == u)),
            _ => false,
        }
    }

    fn honoured(&self) -> Value {
        let mut v = json!({});
        if self.tools {
            v["toolsListChanged"] = true.into();
        }
        if self.prompts {
            v["promptsListChanged"] = true.into();
        }
        if self.resources {
            v["resourcesListChanged"] = true.into();
        }
        if !self.uris.is_empty() {
            v["resourceSubscriptions"] = json!(self.uris);
        }
        v
    }
}

/// Whether a notice is for this principal: shared links speak to everyone, private links
/// only to their user.
pub fn is_for(notice: &Notice, principal: &Principal) -> bool {
    notice.user.as_ref().is_none_or(|u| *u == principal.user)
}

/// The next notice for `principal` that `keep` accepts; `None` when the bus is closed.
pub async fn next_for(
    rx: &mut broadcast::Receiver<Notice>,
    principal: &Principal,
    keep: impl Fn(&Message) -> bool,
) -> Option<Message> {
    loop {
        match rx.recv().await {
            Ok(n) if is_for(&n, principal) && keep(&n.msg) => return Some(n.msg),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// Notices a legacy session hears on its GET stream.
pub fn for_legacy_session(msg: &Message) -> bool {
    matches!(
        msg.method().unwrap_or_default(),
        "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed"
            | "notifications/resources/updated"
            | "notifications/message"
            | "notifications/elicitation/complete"
    )
}

impl Gateway {
    /// `subscriptions/listen`: acknowledges, then streams the requested notices, each tagged with
    /// the subscription id (the listen request's id), until the client closes the stream.
    pub(crate) fn listen(&self, ctx: &CallCtx, id: &Id, msg: &Message) -> Reply {
        let filter =
            Filter::from_params(&msg.params().cloned().map(Value::Object).unwrap_or_default());
        let ack = Message::notification(
            "notifications/subscriptions/acknowledged",
            json!({ "_meta": { "io.modelcontextprotocol/subscriptionId": id.to_value() }, "notifications": filter.honoured() }),
        );
        let rx = self.notices.subscribe();
        let (principal, sub) = (ctx.principal.clone(), id.to_value());
        let rest = stream::unfold((rx, filter), move |(mut rx, filter)| {
            let (principal, sub) = (principal.clone(), sub.clone());
            async move {
                let mut msg = next_for(&mut rx, &principal, |m| filter.wants(m)).await?;
                let meta = msg.params_mut().entry("_meta").or_insert_with(|| json!({}));
                meta["io.modelcontextprotocol/subscriptionId"] = sub;
                Some((msg, (rx, filter)))
            }
        });
        let frames = stream::once(async move { ack })
            .chain(rest)
            .map(Frame::Interim);
        Reply::Stream(Stream {
            frames: frames.boxed(),
            keepalive: true,
        })
    }
}
