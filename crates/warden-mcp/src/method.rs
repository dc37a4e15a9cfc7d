//! The requests of MCP that Warden knows by name: one table, read by routing, metrics, list
//! merging and era adaptation alike. Any other method string is [`Method::Other`].

use crate::era::Era;

/// A request method Warden knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Ping,
    Discover,
    SetLevel,
    ToolsList,
    PromptsList,
    ResourcesList,
    TemplatesList,
    ToolsCall,
    PromptsGet,
    ResourcesRead,
    Subscribe,
    Unsubscribe,
    Complete,
    Listen,
    /// Anything else: a client may send any string.
    Other,
}

/// Which eras have a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Eras {
    Both,
    Legacy,
    Modern,
}

/// The table: method, its name on the wire, the eras that have it.
const TABLE: &[(Method, &str, Eras)] = &[
    (Method::Initialize, "initialize", Eras::Legacy),
    (Method::Ping, "ping", Eras::Legacy),
    (Method::Discover, "server/discover", Eras::Modern),
    (Method::SetLevel, "logging/setLevel", Eras::Legacy),
    (Method::ToolsList, "tools/list", Eras::Both),
    (Method::PromptsList, "prompts/list", Eras::Both),
    (Method::ResourcesList, "resources/list", Eras::Both),
    (
        Method::TemplatesList,
        "resources/templates/list",
        Eras::Both,
    ),
    (Method::ToolsCall, "tools/call", Eras::Both),
    (Method::PromptsGet, "prompts/get", Eras::Both),
    (Method::ResourcesRead, "resources/read", Eras::Both),
    (Method::Subscribe, "resources/subscribe", Eras::Legacy),
    (Method::Unsubscribe, "resources/unsubscribe", Eras::Legacy),
    (Method::Complete, "completion/complete", Eras::Both),
    (Method::Listen, "subscriptions/listen", Eras::Modern),
];

/// What a list method returns: the result key holding its items, and the server capability
/// that offers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListShape {
    pub key: &'static str,
    pub capability: &'static str,
}

impl Method {
    pub fn parse(name: &str) -> Method {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map_or(Method::Other, |(m, _, _)| *m)
    }

    /// The wire name; `"other"` for [`Method::Other`] (a bounded label for metrics).
    pub fn as_str(self) -> &'static str {
        TABLE
            .iter()
            .find(|(m, _, _)| *m == self)
            .map_or("other", |(_, n, _)| n)
    }

    /// Whether the method exists in `era`.
    pub fn in_era(self, era: Era) -> bool {
        TABLE
            .iter()
            .find(|(m, _, _)| *m == self)
            .is_some_and(|(_, _, e)| {
                matches!(
                    (e, era),
                    (Eras::Both, _) | (Eras::Legacy, Era::Legacy) | (Eras::Modern, Era::Modern)
                )
            })
    }

    /// The shape of a list method's result; `None` for other methods.
    pub fn list(self) -> Option<ListShape> {
        let (key, capability) = match self {
            Method::ToolsList => ("tools", "tools"),
            Method::PromptsList => ("prompts", "prompts"),
            Method::ResourcesList => ("resources", "resources"),
            Method::TemplatesList => ("resourceTemplates", "resources"),
            _ => return None,
        };
        Some(ListShape { key, capability })
    }

    /// Methods whose modern results must carry `ttlMs` and `cacheScope`.
    pub fn is_cacheable(self) -> bool {
        self.list().is_some() || matches!(self, Method::ResourcesRead | Method::Discover)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_reads_back_its_own_name() {
        for (m, name, _) in TABLE {
            assert_eq!(Method::parse(name), *m);
            assert_eq!(m.as_str(), *name);
        }
        assert_eq!(Method::parse("tools/frobnicate"), Method::Other);
        assert_eq!(Method::Other.as_str(), "other");
    }

    #[test]
    fn eras_have_their_own_methods() {
        assert!(Method::Ping.in_era(Era::Legacy) && !Method::Ping.in_era(Era::Modern));
        assert!(Method::Discover.in_era(Era::Modern) && !Method::Discover.in_era(Era::Legacy));
        assert!(Method::ToolsCall.in_era(Era::Modern) && Method::ToolsCall.in_era(Era::Legacy));
        assert!(!Method::Other.in_era(Era::Legacy));
    }

    #[test]
    fn lists_and_reads_are_cacheable() {
        assert!(Method::TemplatesList.is_cacheable() && Method::ResourcesRead.is_cacheable());
        assert!(!Method::ToolsCall.is_cacheable());
        assert_eq!(
            Method::TemplatesList.list().map(|s| s.key),
            Some("resourceTemplates")
        );
    }
}
