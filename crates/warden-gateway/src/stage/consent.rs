//! The consent stage: a call that policy allows only with the user's approval stops here. Until
//! the consent flow exists (pause, link, approve, resume), the answer is a clear refusal that
//! names the policies.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::boxed;
use crate::call::{Call, Next, Refusal, RequestStage};
use crate::gateway::Gateway;

pub struct AskConsent;

impl RequestStage for AskConsent {
    fn name(&self) -> &'static str {
        "consent"
    }

    fn run<'a>(&'a self, _gw: &'a Arc<Gateway>, call: &'a mut Call) -> BoxFuture<'a, Next> {
        boxed!(match (&call.consent, &call.target) {
            (Some(consent), Some(target)) => Next::Refuse(Refusal::ConsentRequired {
                name: target.exposed.clone(),
                rule: consent.rule,
                policies: consent.policies.clone(),
            }),
            _ => Next::Continue,
        })
    }
}
