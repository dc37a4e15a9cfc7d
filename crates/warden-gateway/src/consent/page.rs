//! The consent page, under the public URL's origin:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /consent/{id}` | signed in: the request (agent, server, tool, arguments with secret-looking values masked, who asked and why) and the choices; otherwise off to sign in |
//! | `GET /consent/callback` | the identity provider's redirect: finishes the sign-in, then back to the request |
//! | `POST /consent/{id}` | the choice: allow this call once, allow the tool for N minutes (N within the policy's duration), or deny; for a request to connect an account: connect (off to the service's sign-in) or not now |
//! | `GET /consent/connected` | the service's redirect after a person connected their account (see [`crate::connections`]) |
//! | `GET /consent/style.css` | the page's only stylesheet |
//!
//! Every answer carries `Content-Security-Policy: default-src 'none'; style-src 'self';
//! form-action 'self'; frame-ancestors 'none'; base-uri 'none'`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: same-origin` and `Cache-Control: no-store`. Pages are askama templates
//! (checked at compile time, HTML-escaped). A request is shown only to someone who may decide
//! it: the caller, or — when the policy names approvers — a member of those groups other than
//! the caller. The form carries the browser session's CSRF token; the only redirects go to the
//! provider's own authorization endpoint or to `/consent/{id}` of a request id this gateway
//! made, never to a URL taken from the request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::signin::{ATTEMPT_COOKIE, BrowserSession, SESSION_COOKIE};
use super::{Consents, Decision};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::store::{ConsentRequest, ConsentState, DecideOutcome};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const STYLE: &str = include_str!("../../templates/consent.css");

/// The page's routes, for the gateway's router.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/consent/style.css", get(style))
        .route("/consent/callback", get(callback))
        .route("/consent/connected", get(connected))
        .route("/consent/{id}", get(show).post(decide))
}

#[derive(Template)]
#[template(path = "consent.html")]
struct AskPage<'a> {
    id: &'a str,
    csrf: &'a str,
    person: &'a str,
    caller: &'a str,
    agent: &'a str,
    server: &'a str,
    tool: &'a str,
    method: &'a str,
    arguments: String,
    policies: String,
    approvers: String,
    four_eyes: bool,
    expires: String,
    /// The longest standing grant the policy allows, in minutes; `None`: this call only.
    max_minutes: Option<i64>,
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage<'a> {
    id: &'a str,
    csrf: &'a str,
    person: &'a str,
    caller: &'a str,
    agent: &'a str,
    server: &'a str,
    issuer: &'a str,
    scopes: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    tone: &'a str,
    text: &'a str,
}

/// A page of the consent flow with its security headers.
fn page(status: StatusCode, html: String, cookies: &[String]) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(SET_COOKIE, v);
        }
    }
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin: the link (which holds the request id) never leaves in a Referer, and the
    // form's posts still carry the page's Origin.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

fn message(status: StatusCode, title: &str, tone: &str, text: &str) -> Response {
    let html = MessagePage { title, tone, text }
        .render()
        .unwrap_or_else(|_| title.to_string());
    page(status, html, &[])
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = page(StatusCode::SEE_OTHER, String::new(), cookies);
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    )
}

/// `r` with a `Set-Cookie` that deletes cookie `name`.
fn clearing(mut r: Response, name: &str) -> Response {
    let clear = format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

async fn style() -> Response {
    let mut r = STYLE.into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure_headers(h);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    r
}

/// Request ids are this gateway's own: 22 base64url characters.
fn plausible_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `person` may decide `request`: the caller themselves, or — when the policy names
/// approvers — a member of one of those groups who is not the caller.
pub fn may_decide(person: &Principal, request: &ConsentRequest) -> bool {
    if request.approvers.is_empty() {
        *person.user == *request.user
    } else {
        *person.user != *request.user && request.approvers.iter().any(|g| person.in_group(g))
    }
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Nothing to decide here",
        "neutral",
        "This link does not lead to a request for approval. It may have been mistyped, or it was cleaned up after it ended.",
    )
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the consent page cannot read the store");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "neutral",
        "Warden cannot read its records right now. Nothing was decided.",
    )
}

/// The signed-in browser session, if any.
fn session_of(consents: &Consents, headers: &HeaderMap) -> Option<BrowserSession> {
    let signin = consents.signin.as_ref()?;
    signin.session(read_cookie(headers, SESSION_COOKIE)?)
}

async fn show(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let consents = &gw.consents;
    let Some(signin) = consents.signin.as_ref() else {
        return not_found();
    };
    if !plausible_id(&id) {
        return not_found();
    }
    let request = match consents.request(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(e),
    };
    let Some(session) = session_of(consents, &headers) else {
        return match signin.begin(&request.id).await {
            Ok((url, attempt)) => redirect(
                &url,
                &[cookie(ATTEMPT_COOKIE, &attempt, Duration::from_secs(600))],
            ),
            Err(e) => message(
                StatusCode::BAD_GATEWAY,
                "Sign-in is not available",
                "neutral",
                &e.to_string(),
            ),
        };
    };
    render_request(&gw, &request, &session).await
}

async fn render_request(
    gw: &Gateway,
    request: &ConsentRequest,
    session: &BrowserSession,
) -> Response {
    let consents = &gw.consents;
    if !may_decide(&session.person, request) {
        tracing::warn!(event = "consent.refused_viewer", consent = %request.id, viewer = %session.person.user, "consent page opened by someone who may not decide it");
        let text = if request.approvers.is_empty() || *session.person.user == *request.user {
            "This request is not yours to decide. Only the person it names, or an approver the policy names, can open it. Sign in as that person, or ask them to."
        } else {
            "This request needs an approver from a group you are not in."
        };
        return message(StatusCode::FORBIDDEN, "Not yours to decide", "danger", text);
    }
    let now = consents.clock.now();
    match request.state {
        ConsentState::Approved if request.is_connect() => {
            return message(
                StatusCode::OK,
                "Already connected",
                "ok",
                "This account is connected. You can close this page.",
            );
        }
        ConsentState::Approved => {
            return message(
                StatusCode::OK,
                "Already approved",
                "ok",
                &format!(
                    "{} approved this request. You can close this page.",
                    request.decided_by.as_deref().unwrap_or("someone")
                ),
            );
        }
        ConsentState::Denied => {
            return message(
                StatusCode::OK,
                "Already declined",
                "danger",
                &format!(
                    "{} declined this request. The call did not run.",
                    request.decided_by.as_deref().unwrap_or("someone")
                ),
            );
        }
        ConsentState::Pending if request.expires_at <= now => {
            return message(
                StatusCode::GONE,
                "This request has expired",
                "neutral",
                "Nobody decided in time, so the call did not run. If it is still needed, the agent can ask again.",
            );
        }
        ConsentState::Pending => {}
    }
    let left = request.expires_at - now;
    let expires = if left >= 120 {
        format!("{} minutes", (left + 59) / 60)
    } else {
        format!("{left} seconds")
    };
    let agent = request
        .agent
        .as_deref()
        .unwrap_or("an agent that did not name itself");
    if request.is_connect() {
        return render_connect(gw, request, session, agent, expires).await;
    }
    let arguments: Value = serde_json::from_str(&request.arguments).unwrap_or(Value::Null);
    let arguments = serde_json::to_string_pretty(&mask_secrets(arguments)).unwrap_or_default();
    // `server.tool`: the page names the tool as its server knows it.
    let tool_name = request
        .tool
        .split_once('.')
        .map_or(request.tool.as_str(), |(_, tool)| tool);
    let html = AskPage {
        id: &request.id,
        csrf: &session.csrf,
        person: &session.person.user,
        caller: &request.user,
        agent,
        server: &request.server,
        tool: tool_name,
        method: &request.method,
        arguments,
        policies: request.policies.join(", "),
        approvers: request.approvers.join(" or "),
        four_eyes: !request.approvers.is_empty(),
        expires,
        max_minutes: request.max_seconds.map(|s| (s / 60).max(1)),
    }
    .render();
    match html {
        Ok(html) => page(StatusCode::OK, html, &[]),
        Err(e) => unavailable(e),
    }
}

async fn callback(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(signin) = gw.consents.signin.as_ref() else {
        return not_found();
    };
    let Some(attempt) = read_cookie(&headers, ATTEMPT_COOKIE) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign-in did not start here",
            "danger",
            "This browser did not start a sign-in to Warden's consent page. Open the consent link again.",
        );
    };
    let answer = match signin.finish(attempt, &query).await {
        Ok((session, consent)) => redirect(
            &format!("/consent/{consent}"),
            &[cookie(SESSION_COOKIE, &session, Duration::from_secs(3600))],
        ),
        Err(e) => {
            tracing::warn!(error = %e, "consent page sign-in failed");
            message(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "danger",
                &e.to_string(),
            )
        }
    };
    clearing(answer, ATTEMPT_COOKIE)
}

#[derive(Deserialize)]
struct Choice {
    csrf: Option<String>,
    decision: Option<String>,
    minutes: Option<String>,
}

async fn decide(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(choice): Form<Choice>,
) -> Response {
    let consents = &gw.consents;
    if consents.signin.is_none() || !plausible_id(&id) {
        return not_found();
    }
    let Some(session) = session_of(consents, &headers) else {
        return message(
            StatusCode::FORBIDDEN,
            "Please sign in again",
            "danger",
            "Your sign-in to the consent page has ended. Open the consent link again; nothing was decided.",
        );
    };
    let sent = choice.csrf.unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        sent.as_bytes(),
        session.csrf.as_bytes(),
    )) {
        tracing::warn!(event = "consent.csrf_refused", consent = %id, viewer = %session.person.user, "consent form without this session's CSRF token");
        return message(
            StatusCode::FORBIDDEN,
            "This form is not from this page",
            "danger",
            "The answer did not come from the consent page this browser opened. Nothing was decided.",
        );
    }
    let request = match consents.request(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(e),
    };
    if !may_decide(&session.person, &request) || request.state != ConsentState::Pending {
        return render_request(&gw, &request, &session).await;
    }
    if request.is_connect() && choice.decision.as_deref() == Some("connect") {
        return match gw.connections.begin(&request, &session.person.user).await {
            Ok((url, attempt)) => redirect(
                &url,
                &[cookie(
                    crate::connections::ATTEMPT_COOKIE,
                    &attempt,
                    Duration::from_secs(600),
                )],
            ),
            Err(e) => message(
                StatusCode::BAD_GATEWAY,
                "The service is not available",
                "neutral",
                &format!("{e}. Nothing was connected."),
            ),
        };
    }
    let decision = match choice.decision.as_deref() {
        Some("once") if !request.is_connect() => Decision::Once,
        Some("deny") => Decision::Deny,
        Some("for") if !request.is_connect() => {
            let Some(max) = request.max_seconds else {
                return message(
                    StatusCode::BAD_REQUEST,
                    "Not offered",
                    "danger",
                    "This policy allows approving this one call only.",
                );
            };
            let minutes: i64 = match choice.minutes.as_deref().map(str::trim).map(str::parse) {
                Some(Ok(m)) if m >= 1 && m * 60 <= max => m,
                _ => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        "Choose a shorter time",
                        "danger",
                        &format!(
                            "The policy allows at most {} minutes. Nothing was decided.",
                            (max / 60).max(1)
                        ),
                    );
                }
            };
            Decision::For(Duration::from_secs(
                u64::try_from(minutes * 60).unwrap_or(60),
            ))
        }
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "Choose an answer",
                "danger",
                "Nothing was decided.",
            );
        }
    };
    match consents
        .decide(&request, &session.person.user, decision)
        .await
    {
        Ok(DecideOutcome::Decided) => {
            let (title, tone, text) = match decision {
                Decision::Deny => (
                    "Declined",
                    "danger",
                    "The call will not run. The agent has been told.",
                ),
                Decision::Once => (
                    "Approved once",
                    "ok",
                    "The call goes on now, once, with exactly these arguments. You can close this page.",
                ),
                Decision::For(_) => (
                    "Approved",
                    "ok",
                    "The call goes on now, and this tool can be used for the time you chose. You can close this page.",
                ),
                Decision::Connected => ("Connected", "ok", "You can close this page."),
            };
            message(StatusCode::OK, title, tone, text)
        }
        Ok(_) => match consents.request(&id).await {
            Ok(Some(now)) => render_request(&gw, &now, &session).await,
            Ok(None) => not_found(),
            Err(e) => unavailable(e),
        },
        Err(e) => unavailable(e),
    }
}

/// The page of a request to connect an account.
async fn render_connect(
    gw: &Gateway,
    request: &ConsentRequest,
    session: &BrowserSession,
    agent: &str,
    expires: String,
) -> Response {
    let connections = &gw.connections;
    let Some((index, oauth)) = connections
        .index(&request.server)
        .and_then(|i| Some((i, connections.oauth(i)?)))
    else {
        return message(
            StatusCode::GONE,
            "Nothing to connect",
            "neutral",
            "This server no longer connects accounts per user. Nothing was changed.",
        );
    };
    // The form's answer is a redirect to the service's sign-in, which `form-action` must allow
    // (Chromium applies it to redirects after a form is sent).
    let sign_in_origin = match connections.authorization_origin(index).await {
        Ok(o) => o,
        Err(e) => {
            return message(
                StatusCode::BAD_GATEWAY,
                "The service is not available",
                "neutral",
                &format!("{e}. Nothing was connected."),
            );
        }
    };
    let html = ConnectPage {
        id: &request.id,
        csrf: &session.csrf,
        person: &session.person.user,
        caller: &request.user,
        agent,
        server: &request.server,
        issuer: &oauth.issuer,
        scopes: if oauth.scopes.is_empty() {
            "what the service grants by default".into()
        } else {
            oauth.scopes.join(", ")
        },
        expires,
    }
    .render();
    match html {
        Ok(html) => {
            let mut r = page(StatusCode::OK, html, &[]);
            let csp = CSP.replace(
                "form-action 'self'",
                &format!("form-action 'self' {sign_in_origin}"),
            );
            if let Ok(v) = HeaderValue::from_str(&csp) {
                r.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        Err(e) => unavailable(e),
    }
}

/// The service's redirect after a person connected (or declined to connect) their account.
async fn connected(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let failed = |text: &str| {
        let r = message(StatusCode::BAD_REQUEST, "Not connected", "danger", text);
        clearing(r, crate::connections::ATTEMPT_COOKIE)
    };
    let (Some(session), Some(attempt)) = (
        session_of(&gw.consents, &headers),
        read_cookie(&headers, crate::connections::ATTEMPT_COOKIE),
    ) else {
        return failed(
            "This browser did not start connecting an account here, or its sign-in to Warden ended. Open the link again; nothing was connected.",
        );
    };
    let consent = match gw
        .connections
        .finish(attempt, &query, &session.person.user)
        .await
    {
        Ok(consent) => consent,
        Err(e) => {
            tracing::warn!(event = "connection.failed", viewer = %session.person.user, error = %e, "connecting an account failed");
            return failed(&format!("{e}. Nothing was connected."));
        }
    };
    let request = match gw.consents.request(&consent).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(e),
    };
    match gw
        .consents
        .decide(&request, &session.person.user, Decision::Connected)
        .await
    {
        // Connected either way: a request that expired meanwhile still leaves the account
        // connected for the next call.
        Ok(_) => {
            let r = message(
                StatusCode::OK,
                "Connected",
                "ok",
                &format!(
                    "Your {} account is connected. The call goes on now; you can close this page.",
                    request.server
                ),
            );
            clearing(r, crate::connections::ATTEMPT_COOKIE)
        }
        Err(e) => unavailable(e),
    }
}

/// Argument names that look like they hold a secret.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "apikey",
        "api_key",
        "key",
        "auth",
        "credential",
        "cookie",
        "session",
        "private",
        "pin",
        "cvv",
        "otp",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The arguments as the page shows them: values of secret-looking names masked, at any depth.
pub fn mask_secrets(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if secret_name(&k) && !v.is_object() && !v.is_array() {
                        Value::from("••••••••")
                    } else {
                        mask_secrets(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mask_secrets).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_looking_values_are_masked_at_any_depth() {
        let shown = mask_secrets(json!({
            "to": "DE89 3704", "amount": 10, "api_key": "sk_live_1",
            "nested": { "Password": "hunter2", "list": [{ "token": "t" }] }
        }));
        assert_eq!(
            shown,
            json!({
                "to": "DE89 3704", "amount": 10, "api_key": "••••••••",
                "nested": { "Password": "••••••••", "list": [{ "token": "••••••••" }] }
            })
        );
    }
}
