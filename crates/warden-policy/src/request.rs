//! What a decision is asked about: who, which operation on which upstream item, with which
//! arguments, when and from where.

use std::net::IpAddr;
use std::time::SystemTime;

/// One MCP operation to decide on. Borrowed from the gateway's request: building one is free.
/// Its `Debug` output leaves out the arguments' values, which may hold secrets.
#[derive(Clone)]
pub struct Request<'a> {
    /// The user (`sub`).
    pub user: &'a str,
    /// The user's groups, from the identity's claims.
    pub groups: &'a [&'a str],
    /// The MCP client acting for the user, when known.
    pub agent: Option<&'a str>,
    pub scopes: &'a [&'a str],
    pub action: Action,
    /// The upstream's configured name.
    pub server: &'a str,
    /// Per action (see [`Action`]): the tool or prompt name as the upstream knows it (without
    /// Warden's server prefix), the resource URI, or `""` for list actions.
    pub target: &'a str,
    /// The tool's (or prompt's) tags from the configuration, e.g. `("risk", "high")`.
    pub tags: &'a [(&'a str, &'a str)],
    /// The call's `arguments` (tools/call, prompts/get) or, for completion, `argument`.
    pub arguments: Option<&'a serde_json::Value>,
    /// When the request arrived; injected so that decisions are reproducible.
    pub now: SystemTime,
    /// Offset of the organisation's local time from UTC, for `hour`, `minute` and `weekday`.
    pub utc_offset_minutes: i32,
    pub client_ip: Option<IpAddr>,
    /// `"legacy"` or `"modern"`.
    pub era: &'a str,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let arguments = self.arguments.map(|v| match v.as_object() {
            Some(m) if m.len() == 1 => "<1 field>".to_owned(),
            Some(m) => format!("<{} fields>", m.len()),
            None => "<not an object>".to_owned(),
        });
        f.debug_struct("Request")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .field("agent", &self.agent)
            .field("scopes", &self.scopes)
            .field("action", &self.action)
            .field("server", &self.server)
            .field("target", &self.target)
            .field("tags", &self.tags)
            .field("arguments", &arguments)
            .field("now", &self.now)
            .field("utc_offset_minutes", &self.utc_offset_minutes)
            .field("client_ip", &self.client_ip)
            .field("era", &self.era)
            .finish()
    }
}

/// The MCP operations policies decide on, and the Cedar resource each one is about.
///
/// | action | MCP method | Cedar action | resource |
/// |---|---|---|---|
/// | `CallTool` | `tools/call` | `call_tool` | `Tool::"<server>.<target>"` in `Server::"<server>"` |
/// | `GetPrompt` | `prompts/get` | `get_prompt` | `Prompt::"<server>.<target>"` in `Server::"<server>"` |
/// | `ReadResource` | `resources/read` | `read_resource` | `Resource::"<target URI>"` in `Server::"<server>"` |
/// | `Subscribe` | `resources/subscribe` | `subscribe` | `Resource::"<target URI>"` in `Server::"<server>"` |
/// | `ListTools` | `tools/list` | `list_tools` | `Server::"<server>"` |
/// | `ListResources` | `resources/list`, `resources/templates/list` | `list_resources` | `Server::"<server>"` |
/// | `ListPrompts` | `prompts/list` | `list_prompts` | `Server::"<server>"` |
/// | `Complete` | `completion/complete` | `complete` | `Server::"<server>"` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    CallTool,
    ListTools,
    ReadResource,
    ListResources,
    GetPrompt,
    ListPrompts,
    Complete,
    Subscribe,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::CallTool,
        Action::ListTools,
        Action::ReadResource,
        Action::ListResources,
        Action::GetPrompt,
        Action::ListPrompts,
        Action::Complete,
        Action::Subscribe,
    ];

    /// The Cedar action id, e.g. `call_tool`.
    pub fn cedar_name(self) -> &'static str {
        match self {
            Action::CallTool => "call_tool",
            Action::ListTools => "list_tools",
            Action::ReadResource => "read_resource",
            Action::ListResources => "list_resources",
            Action::GetPrompt => "get_prompt",
            Action::ListPrompts => "list_prompts",
            Action::Complete => "complete",
            Action::Subscribe => "subscribe",
        }
    }

    pub fn from_cedar_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.cedar_name() == name)
    }

    /// Position in [`Action::ALL`].
    pub(crate) fn slot(self) -> usize {
        self as usize
    }

    pub(crate) fn resource_kind(self) -> Kind {
        match self {
            Action::CallTool => Kind::Tool,
            Action::GetPrompt => Kind::Prompt,
            Action::ReadResource | Action::Subscribe => Kind::Resource,
            Action::ListTools | Action::ListResources | Action::ListPrompts | Action::Complete => {
                Kind::Server
            }
        }
    }
}

/// The entity types a policy's resource can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Server,
    Tool,
    Prompt,
    Resource,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Server, Kind::Tool, Kind::Prompt, Kind::Resource];

    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Server => "Server",
            Kind::Tool => "Tool",
            Kind::Prompt => "Prompt",
            Kind::Resource => "Resource",
        }
    }

    /// The entity id of the resource a request names: `server.tool` for tools and prompts, the
    /// URI for resources, the server itself for list actions.
    pub fn resource_id(self, server: &str, target: &str) -> String {
        match self {
            Kind::Server => server.to_owned(),
            Kind::Tool | Kind::Prompt => {
                // Joined by hand: `format!` costs ten times as much, on every call.
                let mut id = String::with_capacity(server.len() + 1 + target.len());
                id.push_str(server);
                id.push('.');
                id.push_str(target);
                id
            }
            Kind::Resource => target.to_owned(),
        }
    }

    pub fn from_type_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_name() == name)
    }
}
