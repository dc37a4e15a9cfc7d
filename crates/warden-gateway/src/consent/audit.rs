//! The audit records of consent: a request asked, a request decided (with the grant it made),
//! a grant used. They name the consent id and the argument digest, so an auditor can tie them
//! to the call's own records.

use serde_json::json;
use warden_audit::{Kind, Record};

use crate::audit::records::about;
use crate::identity::Principal;
use crate::store::{ConsentAnswer, ConsentRequest, GrantKind};

fn of_request(kind: Kind, r: &ConsentRequest) -> Record {
    let mut record = crate::audit::record(kind);
    record.principal = Some(r.user.clone());
    record.agent = r.agent.clone();
    record.upstream = Some(r.server.clone());
    record.method = Some(r.method.clone());
    record.name = Some(r.tool.clone());
    record
}

pub fn asked(r: &ConsentRequest) -> Record {
    let mut record = of_request(Kind::ConsentAsked, r);
    record.detail = json!({
        "consent": r.id,
        "arguments_digest": r.arguments_digest,
        "policies": r.policies,
        "approvers": r.approvers,
        "expires_at": r.expires_at,
    });
    record
}

pub fn decided(r: &ConsentRequest, by: &str, answer: &ConsentAnswer) -> Record {
    let mut record = of_request(Kind::ConsentDecided, r);
    let grant = match answer {
        ConsentAnswer::Approve(g) => json!({
            "id": g.id,
            "kind": match g.kind { GrantKind::Standing => "standing", GrantKind::OneCall { .. } => "one_call" },
            "expires_at": g.expires_at,
        }),
        ConsentAnswer::Connected { .. } | ConsentAnswer::Deny => serde_json::Value::Null,
    };
    record.outcome = Some(
        match answer {
            ConsentAnswer::Approve(_) => "approved",
            ConsentAnswer::Connected { .. } => "connected",
            ConsentAnswer::Deny => "denied",
        }
        .to_string(),
    );
    record.detail = json!({
        "consent": r.id,
        "by": by,
        "arguments_digest": r.arguments_digest,
        "grant": grant,
    });
    record
}

pub fn grant_used(p: &Principal, tool: &str, grant: &str, kind: &str) -> Record {
    let mut record = about(Kind::GrantUsed, p);
    record.name = Some(tool.to_string());
    record.detail = json!({ "grant": grant, "kind": kind });
    record
}
