//! `subscriptions/listen` (modern era): what a listener asked for, the acknowledgement that
//! opens its stream, and the tagged notifications it then receives. The transports own the
//! streams; this module only decides what goes on them.

use serde_json::{Map, Value, json};
use warden_mcp::{Id, Message, RpcError, codes};

use crate::state::Change;

/// `_meta` key tying a notification to the `subscriptions/listen` request that asked for it.
const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// What a `subscriptions/listen` request asked to hear about; the fixture honours all of it.
struct Filter {
    tools: bool,
    acknowledged: Map<String, Value>,
}

fn filter(msg: &Message) -> Result<Filter, RpcError> {
    let Some(requested) = msg
        .params()
        .and_then(|p| p.get("notifications"))
        .and_then(Value::as_object)
    else {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            "subscriptions/listen needs \"notifications\"",
        ));
    };
    let mut acknowledged = Map::new();
    for flag in [
        "toolsListChanged",
        "promptsListChanged",
        "resourcesListChanged",
    ] {
        if requested.get(flag) == Some(&Value::Bool(true)) {
            acknowledged.insert(flag.into(), true.into());
        }
    }
    if let Some(uris) = requested
        .get("resourceSubscriptions")
        .and_then(Value::as_array)
    {
        let uris: Vec<Value> = uris.iter().filter(|u| u.is_string()).cloned().collect();
        acknowledged.insert("resourceSubscriptions".into(), Value::Array(uris));
    }
    let tools = acknowledged.contains_key("toolsListChanged");
    Ok(Filter {
        tools,
        acknowledged,
    })
}

/// A notification on a listen stream, tagged with the stream's subscription id.
fn tagged(method: &str, subscription: &Id, mut params: Map<String, Value>) -> Message {
    params.insert(
        "_meta".into(),
        json!({ META_SUBSCRIPTION_ID: subscription.to_value() }),
    );
    Message::notification(method, Value::Object(params))
}

/// The acknowledgement that opens a listen stream, and how the stream renders each change.
pub(crate) fn subscription(
    msg: &Message,
) -> Result<(Message, impl Fn(Change) -> Option<Message> + Send + 'static), RpcError> {
    let filter = filter(msg)?;
    // Requests reach here only after `Message::parse` saw an id.
    let id = msg.id().unwrap_or(Id::Int(0));
    let mut ack = Map::new();
    ack.insert("notifications".into(), Value::Object(filter.acknowledged));
    let opening = tagged("notifications/subscriptions/acknowledged", &id, ack);
    let wants_tools = filter.tools;
    let render = move |change: Change| match change {
        Change::ToolsListChanged if wants_tools => {
            Some(tagged("notifications/tools/list_changed", &id, Map::new()))
        }
        Change::ToolsListChanged => None,
    };
    Ok((opening, render))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(notifications: Value) -> Message {
        Message::request(
            Id::Str("l-1".into()),
            "subscriptions/listen",
            json!({ "notifications": notifications }),
        )
    }

    #[test]
    fn acknowledges_then_tags_what_was_asked_for() {
        let (ack, render) = subscription(&listen(
            json!({ "toolsListChanged": true, "promptsListChanged": false }),
        ))
        .unwrap();
        assert_eq!(
            ack.method(),
            Some("notifications/subscriptions/acknowledged")
        );
        let params = ack.params().unwrap();
        assert_eq!(params["notifications"], json!({ "toolsListChanged": true }));
        assert_eq!(params["_meta"][META_SUBSCRIPTION_ID], "l-1");
        let note = render(Change::ToolsListChanged).unwrap();
        assert_eq!(note.method(), Some("notifications/tools/list_changed"));
        assert_eq!(note.params().unwrap()["_meta"][META_SUBSCRIPTION_ID], "l-1");
    }

    #[test]
    fn stays_quiet_about_what_was_not_asked_for() {
        let (_, render) = subscription(&listen(json!({ "promptsListChanged": true }))).unwrap();
        assert!(render(Change::ToolsListChanged).is_none());
        assert!(
            subscription(&Message::request(
                Id::Int(1),
                "subscriptions/listen",
                json!({})
            ))
            .is_err()
        );
    }
}
