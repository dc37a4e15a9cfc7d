//! The audit stages: the request record is durable before the call is forwarded
//! ([`AuditRequest`], the last request stage before the call leaves), and the response record
//! before the client gets the final message ([`AuditResponse`], the last reply stage, so it
//! records what the client is sent). A call that ends without a final message after its request
//! was recorded (cancelled, or the client went away) gets an end record too, so every request
//! record has its end. When the log cannot be written the call is refused (fail closed) unless
//! the config chose fail-open.

use std::sync::Arc;

use super::later;
use crate::audit::records;
use crate::call::{Call, End, Frame, Next, ReplyStage, RequestStage, Staged, Verdict};
use crate::gateway::Gateway;

/// The request record, durable before forwarding.
pub struct AuditRequest;

impl RequestStage for AuditRequest {
    fn name(&self) -> &'static str {
        "audit-request"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        if !gw.audit.is_on() {
            return Staged::Now(Next::Continue);
        }
        later!(request(gw, call).await)
    }
}

async fn request(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let record = records::request(gw, call);
    // What an end without a final message records: the same call, its outcome and latency.
    let base = record.without_detail();
    if let Err(r) = write(gw, record).await {
        return Next::Refuse(r);
    }
    call.audit_requested = true;
    let (gw, id) = (gw.clone(), call.audit_id.clone());
    call.life.on_end(move |end, took| {
        if !matches!(end, End::Answered { .. }) {
            let ended = records::ended_early(id, base, end.outcome(), took);
            gw.audit.write_later(ended);
        }
    });
    Next::Continue
}

/// The response record, durable before the final message goes out.
pub struct AuditResponse;

impl ReplyStage for AuditResponse {
    fn name(&self) -> &'static str {
        "audit-response"
    }

    fn see<'a>(
        &'a self,
        gw: &'a Gateway,
        call: &'a mut Call,
        frame: &'a mut Frame,
    ) -> Staged<'a, Verdict> {
        match frame {
            Frame::Final(m) if gw.audit.is_on() => later!({
                match write(gw, records::response(gw, call, m)).await {
                    Ok(()) => Verdict::Pass,
                    Err(r) => Verdict::Refuse(r),
                }
            }),
            _ => Staged::Now(Verdict::Pass),
        }
    }
}

/// Writes a call's record: on the call's own worker thread when it is the only call in flight
/// and the log is idle (see [`crate::audit::Audit::write_alone`]), else with the writer's group
/// commit, so that a worker other calls could use is never blocked on the disk.
async fn write(gw: &Gateway, record: warden_audit::Record) -> Result<(), crate::call::Refusal> {
    if gw.metrics.calls_in_flight.get() <= 1 {
        gw.audit.write_alone(record).await
    } else {
        gw.audit.write(record).await
    }
}
