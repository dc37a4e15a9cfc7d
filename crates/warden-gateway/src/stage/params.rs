//! Modern routing parameters: a `tools/call` whose tool binds arguments to `Mcp-Param-*` headers
//! (`x-mcp-header` in its input schema) must send headers that match the body. Policy decides on
//! the body; this stage only makes sure that what intermediaries route on says the same.

use std::sync::Arc;

use warden_mcp::Method;
use warden_mcp::era::Era;

use crate::call::{Call, Next, Refusal, RequestStage, Staged};
use crate::gateway::Gateway;

pub struct RoutingParams;

impl RequestStage for RoutingParams {
    fn name(&self) -> &'static str {
        "routing-params"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        Staged::Now(check(gw, call))
    }
}

fn check(gw: &Gateway, call: &Call) -> Next {
    let (Method::ToolsCall, Era::Modern, Some(target)) = (call.method, call.ctx.era, &call.target)
    else {
        return Next::Continue;
    };
    let bindings = gw.catalog.params(&target.exposed).unwrap_or_default();
    if bindings.is_empty() {
        // Most tools bind nothing: their arguments need not be read here.
        return Next::Continue;
    }
    let header = |h: &str| {
        call.ctx
            .param_headers
            .iter()
            .find(|(k, _)| k == h)
            .map(|(_, v)| v.as_str())
    };
    match warden_mcp::params::check(&bindings, call.arguments(), header) {
        Ok(()) => Next::Continue,
        Err(e) => Next::Refuse(Refusal::HeaderMismatch(e.to_string())),
    }
}
