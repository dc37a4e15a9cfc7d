//! The consent stage: a call that policy allows only with a person's approval stops here,
//! unless a grant already covers it, and goes on as the same call once approved.
//!
//! How the person is asked depends on what the client can do (see `docs/consent.md`):
//!
//! | client | what Warden does |
//! |---|---|
//! | 2025-11-25, declared `elicitation.url` | sends `elicitation/create` (mode `url`, the consent link) on the call's own stream and holds the call, with progress on the client's token, up to `consent.hold`; approved: the call goes on and returns its real result (`notifications/elicitation/complete` first); not decided in time: `-32042` with the same link, and the client's retry after approval goes through |
//! | 2026-07-28, declared `elicitation.url` | answers `input_required` with the link in `inputRequests` and a sealed `requestState`; the client's retry carrying that state is held up to `consent.hold` (progress on its token), then goes on — or gets `input_required` again with the same link and a fresh state |
//! | no URL elicitation | a tool result with `isError: true` whose text holds the link (prompts and resources: error `-32053` with the link); the retry after approval goes through |
//!
//! A grant is checked first ([`crate::consent::Consents::covered`]): a standing grant of the
//! caller for the tool, or a one-call grant for exactly these arguments, which the call uses up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use warden_mcp::era::Era;
use warden_mcp::{Id, Message};

use super::later;
use crate::call::refusal::consent_message;
use crate::call::{Call, Held, Next, Refusal, RequestStage, Staged, TargetKind};
use crate::consent::{Ask, AskError, Sealer, State, Waited, canonical};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::session::Session;

pub struct AskConsent;

impl RequestStage for AskConsent {
    fn name(&self) -> &'static str {
        "consent"
    }

    fn run<'a>(&'a self, gw: &'a Arc<Gateway>, call: &'a mut Call) -> Staged<'a, Next> {
        if call.consent.is_none() {
            return Staged::Now(Next::Continue);
        }
        later!(consent(gw, call).await)
    }
}

/// The key of Warden's request in a 2026-07-28 `inputRequests` (and of its answer).
const CONSENT_INPUT: &str = "warden-consent";

/// How often a held call tells the client it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What the approval of this call is bound to.
pub(super) struct Bound {
    /// The exposed name, for messages.
    pub(super) name: String,
    pub(super) server: String,
    /// `server.tool` (the key of grants).
    tool: String,
    canonical: String,
    digest: String,
    /// A request to connect the caller's account (the connect stage's), not consent.
    pub(super) connect: bool,
}

impl Bound {
    /// What the person is told the link is for.
    fn message(&self) -> String {
        if self.connect {
            connect_message(&self.name, &self.server)
        } else {
            consent_message(&self.name)
        }
    }
}

/// What a person is told a link to connect their account is for.
pub fn connect_message(name: &str, server: &str) -> String {
    format!(
        "{name} works with your own {server} account, which is not connected to Warden yet. Open the link to connect it."
    )
}

/// The key of a tool's grants: `server.tool`.
fn grant_key(server: &str, own: &str) -> String {
    format!("{server}.{own}")
}

/// The call goes on under `grant`, which its request record names.
fn covered_by(call: &mut Call, grant: String) -> Next {
    if let Some(target) = &call.target {
        tracing::debug!(grant, target = %target.exposed, "covered by a grant");
    }
    if let Some(d) = &mut call.decided {
        d.grant = Some(grant);
    }
    Next::Continue
}

pub(super) fn bound(gw: &Gateway, call: &Call) -> Option<Bound> {
    let target = call.target.as_ref()?;
    let server = gw.pool.config(target.upstream).name.clone();
    // A resource's approval is bound to its URI; a tool's and a prompt's to their arguments.
    let uri;
    let arguments = match target.kind {
        TargetKind::Resource => {
            uri = json!({ "uri": target.own });
            Some(&uri)
        }
        _ => call.arguments(),
    };
    let canonical = canonical::canonical(arguments);
    Some(Bound {
        name: target.exposed.clone(),
        tool: grant_key(&server, &target.own),
        server,
        digest: canonical::digest(&canonical),
        canonical,
        connect: false,
    })
}

/// Whether the client declared URL-mode elicitation.
pub(super) fn url_elicitation(capabilities: &Value) -> bool {
    capabilities
        .get("elicitation")
        .and_then(|e| e.get("url"))
        .is_some()
}

async fn consent(gw: &Arc<Gateway>, call: &mut Call) -> Next {
    let (Some(rule), Some(target)) = (call.consent.as_ref().map(|c| c.rule), &call.target) else {
        return Next::Continue;
    };
    let consents = &gw.consents;
    if let Some(why) = consents.unavailable() {
        let policies = call
            .consent
            .as_ref()
            .map(|c| c.policies.clone())
            .unwrap_or_default();
        tracing::info!(target = %target.exposed, why, "consent needed but not configured");
        return Next::Refuse(Refusal::ConsentRequired {
            name: target.exposed.clone(),
            rule,
            policies,
        });
    }
    let principal = call.ctx.principal.clone();
    let retry = call.ctx.era == Era::Modern
        && call
            .msg
            .param_str("requestState")
            .is_some_and(Sealer::is_ours);
    // A standing grant covers any arguments: looked up before they are put in canonical form.
    if !retry {
        let server = &gw.pool.config(target.upstream).name;
        match consents
            .standing(&principal, &grant_key(server, &target.own))
            .await
        {
            Ok(Some(grant)) => return covered_by(call, grant),
            Ok(None) => {}
            Err(e) => return Next::Refuse(store_failed(&target.exposed, &e)),
        }
    }
    let Some(b) = bound(gw, call) else {
        return Next::Continue;
    };
    // A 2026-07-28 retry that carries Warden's sealed state: wait for that request's decision.
    if retry && let Some(text) = call.msg.param_str("requestState") {
        let state = match open_state(gw, call, &b, text) {
            // A connect stage's state, left only when the upstream stopped needing accounts.
            Ok(state) if state.connect => {
                restore_upstream_state(call, &state);
                return Box::pin(consent(gw, call)).await;
            }
            Ok(state) => state,
            Err(why) => {
                tracing::warn!(user = %principal.user, target = %b.name, why, "requestState refused");
                return Next::Refuse(Refusal::ConsentState(why));
            }
        };
        if let Some(refused) = declined(call, &b, &state) {
            return refused;
        }
        restore_upstream_state(call, &state);
        return hold_modern(gw, call, b, state);
    }
    match consents.one_call(&principal, &b.tool, &b.digest).await {
        Ok(Some(grant)) => return covered_by(call, grant),
        Ok(None) => {}
        Err(e) => return unavailable(&b, e),
    }
    let consent = call
        .consent
        .as_ref()
        .map(|c| (c.policies.clone(), c.approvers.clone()));
    let (policies, approvers) = consent.unwrap_or_default();
    let ask = Ask {
        principal: &principal,
        server: &b.server,
        tool: &b.tool,
        method: call.method.as_str(),
        canonical: b.canonical.clone(),
        digest: b.digest.clone(),
        rule,
        policies: &policies,
        approvers: &approvers,
    };
    let request = match consents.ask(&ask).await {
        Ok(r) => r,
        Err(AskError::TooMany(n)) => {
            return Next::Refuse(Refusal::ConsentBusy(format!(
                "{n} requests for consent are already waiting for {}; decide or let them expire first",
                principal.user
            )));
        }
        Err(AskError::Store(e)) => return unavailable(&b, e),
    };
    ask_for(gw, call, b, &request)
}

/// The person declined to open the link in the client (a 2026-07-28 retry's answer): the call
/// ends here.
pub(super) fn declined(call: &Call, b: &Bound, state: &State) -> Option<Next> {
    let answer = call
        .msg
        .params()
        .and_then(|p| p.get("inputResponses"))
        .and_then(|r| r.get(CONSENT_INPUT))
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str);
    if !matches!(answer, Some("decline" | "cancel")) {
        return None;
    }
    tracing::info!(consent = %state.consent, action = ?answer, "link not opened in the client");
    Some(Next::Refuse(Refusal::ConsentDeclined {
        name: b.name.clone(),
    }))
}

/// The upstream sees the call as the client first sent it (with its own state, if any).
pub(super) fn restore_upstream_state(call: &mut Call, state: &State) {
    let params = call.msg.params_mut();
    params.remove("inputResponses");
    match &state.upstream {
        Some(theirs) => params.insert("requestState".into(), theirs.clone().into()),
        None => params.remove("requestState"),
    };
}

/// How a caller is asked once a request exists: held on the call's stream (a legacy client
/// with URL elicitation), `input_required` (a 2026-07-28 client with it), or the link as text.
pub(super) fn ask_for(
    gw: &Arc<Gateway>,
    call: &Call,
    b: Bound,
    request: &crate::store::ConsentRequest,
) -> Next {
    let url = gw.consents.link(&request.id);
    let elicits = url_elicitation(&call.ctx.client_capabilities);
    match (call.ctx.era, elicits, call.ctx.session.clone()) {
        (Era::Legacy, true, Some(session)) => {
            hold_legacy(gw, call, b, request.id.clone(), url, session)
        }
        (Era::Modern, true, _) => {
            let upstream = call.msg.param_str("requestState").map(str::to_string);
            let state = new_state(gw, call, &b, &request.id, request.expires_at, upstream);
            Next::Answer(crate::call::Reply::Json(input_required(
                &call.id, &b, &url, &state,
            )))
        }
        _ => no_elicitation(call, &b, url),
    }
}

fn unavailable(b: &Bound, e: crate::store::StoreError) -> Next {
    Next::Refuse(store_failed(&b.name, &e))
}

/// The refusal of a call whose consent records cannot be read or written.
pub(super) fn store_failed(name: &str, e: &crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, target = %name, "consent cannot use the store");
    Refusal::ConsentUnavailable {
        name: name.to_string(),
        why: "Warden cannot read or write its consent records right now".into(),
    }
}

/// The answer for a client that cannot open a link for the user: the link as text.
fn no_elicitation(call: &Call, b: &Bound, url: String) -> Next {
    if call
        .target
        .as_ref()
        .is_some_and(|t| t.kind == TargetKind::Tool)
    {
        let text = if b.connect {
            format!(
                "Account needed: {name} works with the user's own {server} account, which is not connected yet. Ask the user to open {url} and connect it, then call {name} again.",
                name = b.name,
                server = b.server
            )
        } else {
            format!(
                "Approval needed: {name} runs only after the user approves it. Ask the user to open {url} and approve it, then call {name} again with the same arguments.",
                name = b.name
            )
        };
        return Next::Answer(crate::call::Reply::result(
            &call.id,
            json!({ "content": [{ "type": "text", "text": text }], "isError": true }),
        ));
    }
    Next::Refuse(Refusal::ConsentLink {
        name: b.name.clone(),
        message: b.message(),
        url,
        elicitation: None,
    })
}

fn new_state(
    gw: &Gateway,
    call: &Call,
    b: &Bound,
    consent: &str,
    expires_at: i64,
    upstream: Option<String>,
) -> String {
    let p = &call.ctx.principal;
    let state = State {
        consent: consent.to_string(),
        user: p.user.to_string(),
        agent: p.agent.as_deref().map(str::to_string),
        method: call.method.as_str().to_string(),
        name: b.name.clone(),
        digest: b.digest.clone(),
        expires_at,
        upstream,
        connect: b.connect,
    };
    gw.consents
        .sealer()
        .map(|s| s.seal(&state))
        .unwrap_or_default()
}

/// A sealed state, opened and checked against the call that carries it.
pub(super) fn open_state(
    gw: &Gateway,
    call: &Call,
    b: &Bound,
    text: &str,
) -> Result<State, &'static str> {
    let sealer = gw
        .consents
        .sealer()
        .ok_or("this gateway cannot open states")?;
    let state = sealer
        .open(text)
        .ok_or("it was not made by this gateway, or it was changed")?;
    let p = &call.ctx.principal;
    if state.user != *p.user || state.agent.as_deref() != p.agent.as_deref() {
        return Err("it belongs to another caller");
    }
    if state.method != call.method.as_str() || state.name != b.name || state.digest != b.digest {
        return Err("it belongs to another call (method, name or arguments differ)");
    }
    if state.expires_at <= gw.consents.clock.now() {
        return Err("it has expired; call again without it for a new request");
    }
    Ok(state)
}

/// A 2026-07-28 `InputRequiredResult` asking the client to open the consent link.
fn input_required(id: &Id, b: &Bound, url: &str, state: &str) -> Message {
    Message::response(
        id,
        json!({
            "resultType": "input_required",
            "inputRequests": {
                CONSENT_INPUT: {
                    "method": "elicitation/create",
                    "params": { "mode": "url", "message": b.message(), "url": url }
                }
            },
            "requestState": state,
        }),
    )
}

/// Uses the approval of a decided request: the grant it made lets this one call through.
async fn use_approval(gw: &Gateway, principal: &Principal, b: &Bound) -> Held {
    if b.connect {
        // The account is connected: the user's link sends its token.
        return Held::Resume;
    }
    match gw.consents.covered(principal, &b.tool, &b.digest).await {
        Ok(Some(_)) => Held::Resume,
        Ok(None) => Held::Refuse(Refusal::ConsentUnavailable {
            name: b.name.clone(),
            why: "its approval was already used by another call or has ended".into(),
        }),
        Err(e) => Held::Refuse(store_failed(&b.name, &e)),
    }
}

/// What a held call does once its wait ended: goes on when approved (using the approval),
/// ends when declined or expired, and does `pending` when nobody decided within the hold. A
/// legacy client is also told (`complete`) that the elicitation is over once it was decided.
async fn after_wait(
    gw: &Gateway,
    principal: &Principal,
    b: Bound,
    waited: Result<Waited, crate::store::StoreError>,
    complete: Option<Held>,
    pending: Held,
) -> Vec<Held> {
    let decided = |last: Held| complete.into_iter().chain([last]).collect();
    match waited {
        Ok(Waited::Approved) => decided(use_approval(gw, principal, &b).await),
        Ok(Waited::Denied { by }) => {
            decided(Held::Refuse(Refusal::ConsentDenied { name: b.name, by }))
        }
        Ok(Waited::Expired | Waited::Gone) => {
            vec![Held::Refuse(Refusal::ConsentExpired { name: b.name })]
        }
        Ok(Waited::Pending) => vec![pending],
        Err(e) => vec![Held::Refuse(store_failed(&b.name, &e))],
    }
}

/// Holds a legacy call: Warden's own `elicitation/create` on the call's stream, then the wait.
pub(super) fn hold_legacy(
    gw: &Arc<Gateway>,
    call: &Call,
    b: Bound,
    consent: String,
    url: String,
    session: Arc<Session>,
) -> Next {
    let Some(slot) = gw.consents.hold_slot() else {
        // Too many held calls: the client still gets the link, and retries after approval.
        return Next::Refuse(Refusal::ConsentLink {
            message: b.message(),
            name: b.name,
            url,
            elicitation: Some(consent),
        });
    };
    let mut request = Message::request(
        Id::Int(0),
        "elicitation/create",
        json!({ "mode": "url", "message": b.message(), "url": url, "elicitationId": consent }),
    );
    let mut answer = session.ask(&mut request);
    let (gw, principal, hold) = (
        gw.clone(),
        call.ctx.principal.clone(),
        gw.consents.config().hold,
    );
    let decided = async move {
        let _slot = slot;
        let waiting_for = consent.clone();
        let wait = gw.consents.wait(&waiting_for, hold);
        tokio::pin!(wait);
        let mut answered = false;
        let waited = loop {
            tokio::select! {
                w = &mut wait => break w,
                a = &mut answer, if !answered => {
                    answered = true;
                    let action = a.ok().and_then(|m| m.result().and_then(|r| r.get("action")).and_then(Value::as_str).map(str::to_string));
                    if action.as_deref() != Some("accept") {
                        tracing::info!(consent, action = ?action, "consent link not opened in the client");
                        return vec![Held::Refuse(Refusal::ConsentDeclined { name: b.name })];
                    }
                }
            }
        };
        let complete = Held::Interim(Message::notification(
            "notifications/elicitation/complete",
            json!({ "elicitationId": consent }),
        ));
        let pending = Held::Refuse(Refusal::ConsentLink {
            message: b.message(),
            name: b.name.clone(),
            url: gw.consents.link(&consent),
            elicitation: Some(consent),
        });
        after_wait(&gw, &principal, b, waited, Some(complete), pending).await
    };
    Next::Hold(waiting(
        vec![Held::Interim(request)],
        Box::pin(decided),
        call.progress_token(),
    ))
}

/// Holds a 2026-07-28 retry until its request is decided, or answers `input_required` again.
pub(super) fn hold_modern(gw: &Arc<Gateway>, call: &Call, b: Bound, state: State) -> Next {
    // Asked again (the same request, a fresh state) when nobody decides within the hold, or
    // at once when no more calls can be held.
    let fresh = new_state(
        gw,
        call,
        &b,
        &state.consent,
        state.expires_at,
        state.upstream.clone(),
    );
    let again = input_required(&call.id, &b, &gw.consents.link(&state.consent), &fresh);
    let Some(slot) = gw.consents.hold_slot() else {
        return Next::Answer(crate::call::Reply::Json(again));
    };
    let gw = gw.clone();
    let (principal, hold) = (call.ctx.principal.clone(), gw.consents.config().hold);
    let decided = async move {
        let _slot = slot;
        let waited = gw.consents.wait(&state.consent, hold).await;
        after_wait(&gw, &principal, b, waited, None, Held::Answer(again)).await
    };
    Next::Hold(waiting(
        Vec::new(),
        Box::pin(decided),
        call.progress_token(),
    ))
}

/// A hold as a stream: `first`, then progress every [`PROGRESS_EVERY`] on `token` (if the
/// client gave one) until `decided` ends it with its messages. Dropping the stream drops the
/// wait.
fn waiting(
    first: Vec<Held>,
    decided: BoxFuture<'static, Vec<Held>>,
    token: Option<Value>,
) -> BoxStream<'static, Held> {
    struct Wait {
        queue: VecDeque<Held>,
        decided: Option<BoxFuture<'static, Vec<Held>>>,
        tick: tokio::time::Interval,
        token: Option<Value>,
        sent: u64,
    }
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Wait {
        queue: first.into(),
        decided: Some(decided),
        tick,
        token,
        sent: 0,
    };
    stream::unfold(start, |mut w| async move {
        loop {
            if let Some(next) = w.queue.pop_front() {
                return Some((next, w));
            }
            let decided = w.decided.as_mut()?;
            tokio::select! {
                out = decided => {
                    w.decided = None;
                    w.queue.extend(out);
                }
                _ = w.tick.tick(), if w.token.is_some() => {
                    w.sent += 1;
                    let token = w.token.clone().unwrap_or(Value::Null);
                    let progress = Message::notification(
                        "notifications/progress",
                        json!({ "progressToken": token, "progress": w.sent, "message": "waiting for the user's approval" }),
                    );
                    return Some((Held::Interim(progress), w));
                }
            }
        }
    })
    .boxed()
}
