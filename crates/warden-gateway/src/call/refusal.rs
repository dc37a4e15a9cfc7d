//! The gateway's refusals: one type, whose variants carry what went wrong, and one renderer
//! ([`Refusal::render`]) that turns a refusal into the HTTP status and the JSON-RPC error of the
//! era. No other module builds an error answer for a client. The HTTP status of a message that
//! passes through (an upstream's error, say) is decided here too ([`status_of`]).

use std::time::Duration;

use axum::response::Response;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::json;
use warden_mcp::era::{Era, MODERN_VERSION, SUPPORTED_VERSIONS};
use warden_mcp::{Id, Message, ParseError, RpcError, codes};
use warden_policy::ConsentRule;

use crate::catalog::NameKind;
use crate::gateway::Gateway;
use crate::identity::AuthError;
use crate::session::SessionProblem;
use crate::upstream::UpstreamError;

/// `Retry-After` (seconds) of a 503 from authentication, when the identity provider or the
/// store cannot be read. The next request tries them again whenever it comes; this only tells a
/// client that retries at once to leave a few seconds.
const AUTH_RETRY_AFTER: &str = "5";

/// Why the gateway did not carry a request through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    // At the edge, before any body is read.
    #[error("this Host is not allowed; add it to server.allowed_hosts")]
    HostNotAllowed,
    #[error("this Origin is not allowed; add it to server.allowed_origins")]
    OriginNotAllowed,
    /// A rate limit: per address at the edge (429), or per principal or tool in a call.
    #[error("rate limit for {who} reached; retry in {} ms", millis(*.wait))]
    Limited { who: String, wait: Duration },

    // Identity.
    #[error("{0}")]
    Auth(AuthError),

    // The transport's rules.
    #[error("Content-Type must be application/json")]
    ContentType,
    #[error("Accept must list {0}")]
    NotAcceptable(&'static str),
    #[error("the body is over the limit of {0} bytes (server.max_body_bytes)")]
    TooLarge(usize),
    #[error("the request body could not be read")]
    Unreadable,
    #[error("{0}")]
    Malformed(ParseError),
    #[error("{}", session_text(.0))]
    Session(SessionProblem),
    #[error("MCP-Protocol-Version {0} is not supported")]
    LegacyVersion(String),
    #[error(
        "{0} is not part of 2026-07-28, which has no sessions (use subscriptions/listen for notifications)"
    )]
    NoSessionsInModern(&'static str),
    #[error("in 2026-07-28 clients do not send responses")]
    ResponseInModern,
    #[error("this response answers no request Warden sent to this session")]
    StrayResponse,
    /// A modern request whose headers and body disagree, or a routing parameter that does not
    /// match its `Mcp-Param-*` header.
    #[error("{0}")]
    HeaderMismatch(String),
    /// A modern request without the `_meta` the era requires.
    #[error("{0}")]
    MissingMeta(String),
    #[error("protocol version {0} is not supported")]
    ModernVersion(String),

    // The call.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    #[error("{0}")]
    InvalidParams(String),
    /// A tool or prompt no upstream has (for this caller).
    #[error("Unknown {}: {name}", kind_word(*.kind))]
    Unknown { kind: NameKind, name: String },
    /// A tool or prompt policy denies; answered exactly like an unknown one.
    #[error("Unknown {}: {name}", kind_word(*.kind))]
    Denied { kind: NameKind, name: String },
    /// A resource no upstream has, or one policy denies.
    #[error("Resource not found: {0}")]
    ResourceNotFound(String),
    #[error("approval required: {} require(s) the user's consent for {} before {name} runs", .policies.join(", "), consent_scope(.rule, .name))]
    ConsentRequired {
        name: String,
        rule: ConsentRule,
        policies: Vec<String>,
    },
    /// Consent is needed and asked for: the person opens `url` (the consent page). A legacy
    /// client that declared URL elicitation gets it as `-32042` (`elicitation` is its id);
    /// other clients as `-32053` with the link in the text.
    #[error("{message} Link: {url} — then call {name} again.")]
    ConsentLink {
        name: String,
        /// What the person is told the link is for.
        message: String,
        url: String,
        elicitation: Option<String>,
    },
    #[error("{name} did not run: {by} declined it on the consent page")]
    ConsentDenied { name: String, by: String },
    #[error(
        "{name} did not run: nobody approved it before the request for consent expired; call it again for a new one"
    )]
    ConsentExpired { name: String },
    #[error("{name} did not run: the approval was declined in the client")]
    ConsentDeclined { name: String },
    /// A `requestState` that Warden cannot open, or that belongs to another call or caller.
    #[error("requestState is not valid for this call: {0}")]
    ConsentState(&'static str),
    /// Too many consent requests or held calls.
    #[error("{0}")]
    ConsentBusy(String),
    /// Consent is needed but cannot be asked for (no sign-in configured, the store failing).
    #[error("approval required for {name}, but it cannot be asked for: {why}")]
    ConsentUnavailable { name: String, why: String },
    #[error("{0}")]
    Upstream(UpstreamError),
    #[error("the upstream did not answer within {0:?}")]
    UpstreamTimeout(Duration),
    /// The audit trail cannot make the call's record durable (fail closed).
    #[error("the audit trail cannot record this call, so it was not carried out: {0}")]
    AuditUnavailable(String),
    /// Data policy: a DLP detector set to block found something (its types named, never its
    /// values).
    #[error("withheld by data policy: the {} of {name} hold(s) {}", .direction.as_str(), .detectors.join(", "))]
    DataPolicy {
        name: String,
        direction: crate::dlp::Direction,
        detectors: Vec<String>,
    },
    /// The result needed redacting, and the redacted `structuredContent` would no longer match
    /// the tool's `outputSchema`: the result is withheld rather than sent invalid.
    #[error("withheld by data policy: the result of {name} holds {}, and redacting it breaks the tool's outputSchema ({why})", .detectors.join(", "))]
    RedactionBreaksSchema {
        name: String,
        detectors: Vec<String>,
        why: String,
    },
    /// A tool whose definition changed since it was approved, or that tool integrity flags;
    /// hidden from lists and not called until an operator approves it.
    #[error("{name} is withheld: {why}")]
    ToolWithheld { name: String, why: String },
    #[error(
        "the upstream asked for input in the 2026-07-28 way (InputRequiredResult), which a 2025 session cannot answer; connect with a 2026-07-28 client"
    )]
    InputAcrossEras,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn kind_word(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Tool => "tool",
        NameKind::Prompt => "prompt",
    }
}

fn consent_scope(rule: &ConsentRule, name: &str) -> String {
    match rule {
        ConsentRule::Once => "this call".to_string(),
        ConsentRule::For(d) => format!("{name} for {}s", d.as_secs()),
    }
}

/// What the consent link says to the person who sees it in their client.
pub fn consent_message(name: &str) -> String {
    format!("Warden needs your approval before {name} runs. Open the link to review and decide.")
}

fn session_text(p: &SessionProblem) -> &'static str {
    match p {
        SessionProblem::Missing => {
            "the Mcp-Session-Id header is required; open a session with initialize first"
        }
        SessionProblem::Unknown => {
            "session not found: it ended or never existed; send initialize again"
        }
    }
}

/// A refusal as it goes to the client.
pub struct Rendered {
    pub status: StatusCode,
    pub message: Message,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The bounded label the request metrics count it under.
    pub outcome: &'static str,
}

impl Refusal {
    /// The one renderer: the HTTP status, the JSON-RPC error (with `id` when the request had
    /// one) and any header the answer needs, in the era of the request.
    pub fn render(&self, gw: &Gateway, era: Era, id: Option<&Id>) -> Rendered {
        use StatusCode as S;
        let text = self.to_string();
        let mut headers = Vec::new();
        let (status, code, data, outcome) = match self {
            Refusal::HostNotAllowed | Refusal::OriginNotAllowed => {
                (S::FORBIDDEN, codes::INVALID_REQUEST, None, "refused")
            }
            Refusal::Limited { wait, .. } => {
                let data = json!({ "retryAfterMs": millis(*wait) });
                // Without a call (at the edge) the limit is the HTTP answer itself.
                let status = if id.is_none() {
                    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                        headers.push((RETRY_AFTER, v));
                    }
                    S::TOO_MANY_REQUESTS
                } else {
                    S::OK
                };
                (status, codes::LIMITED, Some(data), "limited")
            }
            Refusal::Auth(e) => {
                let (status, challenge) = gw.identity.challenge.answer(e);
                headers.push((WWW_AUTHENTICATE, challenge));
                if status == S::SERVICE_UNAVAILABLE {
                    // The caller's credentials were not judged: the gateway could not.
                    headers.push((RETRY_AFTER, HeaderValue::from_static(AUTH_RETRY_AFTER)));
                    (status, codes::INVALID_REQUEST, None, "unavailable")
                } else {
                    (status, codes::INVALID_REQUEST, None, "unauthenticated")
                }
            }
            Refusal::ContentType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                codes::INVALID_REQUEST,
                None,
                "refused",
            ),
            Refusal::NotAcceptable(_) => {
                (S::NOT_ACCEPTABLE, codes::INVALID_REQUEST, None, "refused")
            }
            Refusal::TooLarge(_) => (
                S::PAYLOAD_TOO_LARGE,
                codes::INVALID_REQUEST,
                None,
                "refused",
            ),
            Refusal::Unreadable | Refusal::ResponseInModern | Refusal::StrayResponse => {
                (S::BAD_REQUEST, codes::INVALID_REQUEST, None, "refused")
            }
            Refusal::Malformed(e) => (S::BAD_REQUEST, e.code(), None, "refused"),
            Refusal::Session(SessionProblem::Missing) => {
                (S::BAD_REQUEST, codes::INVALID_REQUEST, None, "refused")
            }
            Refusal::Session(SessionProblem::Unknown) => {
                (S::NOT_FOUND, codes::INVALID_REQUEST, None, "refused")
            }
            Refusal::LegacyVersion(v) => (
                S::BAD_REQUEST,
                codes::INVALID_REQUEST,
                Some(json!({ "supported": SUPPORTED_VERSIONS, "requested": v })),
                "refused",
            ),
            Refusal::NoSessionsInModern(_) => (
                S::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                None,
                "refused",
            ),
            Refusal::HeaderMismatch(_) => (S::OK, codes::HEADER_MISMATCH, None, "refused"),
            Refusal::MissingMeta(_) => (S::BAD_REQUEST, codes::INVALID_PARAMS, None, "refused"),
            Refusal::ModernVersion(v) => (
                S::BAD_REQUEST,
                codes::UNSUPPORTED_VERSION,
                Some(json!({ "supported": [MODERN_VERSION], "requested": v })),
                "refused",
            ),
            Refusal::MethodNotFound(_) => (S::OK, codes::METHOD_NOT_FOUND, None, "unknown_method"),
            Refusal::InvalidParams(_) => (S::OK, codes::INVALID_PARAMS, None, "invalid_params"),
            Refusal::Unknown { .. } => (S::OK, codes::INVALID_PARAMS, None, "unknown"),
            Refusal::Denied { .. } => (S::OK, codes::INVALID_PARAMS, None, "denied"),
            Refusal::ResourceNotFound(uri) => {
                let code = match era {
                    Era::Modern => codes::INVALID_PARAMS,
                    Era::Legacy => codes::RESOURCE_NOT_FOUND,
                };
                (S::OK, code, Some(json!({ "uri": uri })), "not_found")
            }
            Refusal::ConsentRequired { name, policies, .. } => (
                S::OK,
                codes::CONSENT_REQUIRED,
                Some(json!({ "policies": policies, "name": name })),
                "consent_required",
            ),
            Refusal::ConsentLink {
                message,
                url,
                elicitation: Some(elicitation),
                ..
            } if era == Era::Legacy => {
                let data = json!({ "elicitations": [{
                    "mode": "url",
                    "elicitationId": elicitation,
                    "url": url,
                    "message": message,
                }] });
                (
                    S::OK,
                    codes::URL_ELICITATION_REQUIRED,
                    Some(data),
                    "consent_required",
                )
            }
            Refusal::ConsentLink { name, url, .. } => (
                S::OK,
                codes::CONSENT_REQUIRED,
                Some(json!({ "name": name, "url": url })),
                "consent_required",
            ),
            Refusal::ConsentDenied { name, .. }
            | Refusal::ConsentExpired { name }
            | Refusal::ConsentDeclined { name } => (
                S::OK,
                codes::CONSENT_DENIED,
                Some(json!({ "name": name })),
                "consent_denied",
            ),
            Refusal::ConsentState(_) => (S::OK, codes::INVALID_PARAMS, None, "invalid_params"),
            Refusal::ConsentBusy(_) => (S::OK, codes::LIMITED, None, "limited"),
            Refusal::ConsentUnavailable { name, .. } => (
                S::OK,
                codes::CONSENT_REQUIRED,
                Some(json!({ "name": name })),
                "consent_required",
            ),
            Refusal::Upstream(_) => (S::OK, codes::UPSTREAM_UNAVAILABLE, None, "upstream_error"),
            Refusal::UpstreamTimeout(_) => (S::OK, codes::UPSTREAM_TIMEOUT, None, "upstream_error"),
            Refusal::InputAcrossEras => (S::OK, codes::INTERNAL_ERROR, None, "upstream_error"),
            Refusal::AuditUnavailable(_) => {
                (S::OK, codes::AUDIT_UNAVAILABLE, None, "audit_unavailable")
            }
            Refusal::DataPolicy {
                direction,
                detectors,
                ..
            } => (
                S::OK,
                codes::WITHHELD,
                Some(json!({ "direction": direction.as_str(), "detectors": detectors })),
                "withheld",
            ),
            Refusal::RedactionBreaksSchema { detectors, .. } => (
                S::OK,
                codes::WITHHELD,
                Some(json!({ "direction": "results", "detectors": detectors })),
                "withheld",
            ),
            Refusal::ToolWithheld { name, .. } => (
                S::OK,
                codes::WITHHELD,
                Some(json!({ "tool": name })),
                "withheld",
            ),
        };
        let mut error = RpcError::new(code, text);
        if let Some(data) = data {
            error = error.with_data(data);
        }
        let message = Message::error(id, &error);
        // Inside the era's rules, an answer in a 200 may still need the modern status.
        let status = if status == S::OK {
            status_of(&message, era)
        } else {
            status
        };
        Rendered {
            status,
            message,
            headers,
            outcome,
        }
    }

    /// The reason a refusal outside any call is counted under in `warden_rejected`.
    pub fn reject_reason(&self) -> &'static str {
        match self {
            Refusal::HostNotAllowed => "host",
            Refusal::OriginNotAllowed => "origin",
            Refusal::Limited { .. } => "rate-address",
            Refusal::Auth(AuthError::Unavailable(_) | AuthError::StoreUnavailable) => "unavailable",
            Refusal::Auth(_) => "auth",
            Refusal::ContentType => "content-type",
            Refusal::NotAcceptable(_) => "accept",
            Refusal::TooLarge(_) => "too-large",
            Refusal::Malformed(_) | Refusal::Unreadable => "malformed",
            Refusal::Session(_) => "session",
            _ => "protocol",
        }
    }

    /// The HTTP answer to a request refused outside any call (at the edge, by identity, by the
    /// transport's rules), counted in `warden_rejected`.
    pub fn respond(&self, gw: &Gateway, era: Era, id: Option<&Id>) -> Response {
        self.respond_to(gw, era, id, None)
    }

    /// [`Refusal::respond`] for a client whose address is known, which the audit record keeps.
    /// Every such refusal is recorded, except the per-address rate limit's: recording a flood
    /// would hand the flood the disk.
    pub fn respond_to(
        &self,
        gw: &Gateway,
        era: Era,
        id: Option<&Id>,
        peer: Option<std::net::IpAddr>,
    ) -> Response {
        let reason = self.reject_reason();
        gw.metrics.reject(reason);
        let rendered = self.render(gw, era, id);
        if gw.audit.is_on() && !matches!(self, Refusal::Limited { .. }) {
            let mut record = crate::audit::record(warden_audit::Kind::Refusal);
            record.outcome = Some(reason.to_string());
            record.detail = json!({
                "reason": self.to_string(),
                "status": rendered.status.as_u16(),
                "peer": peer.map(|p| p.to_string()),
            });
            gw.audit.write_later(record);
        }
        rendered.into_response()
    }
}

impl Rendered {
    pub fn into_response(self) -> Response {
        let mut r = json_response(self.status, &self.message);
        r.headers_mut().extend(self.headers);
        r
    }
}

/// A JSON-RPC message as an HTTP response.
pub fn json_response(status: StatusCode, msg: &Message) -> Response {
    // Built directly: through `IntoResponse` the body's type first set a content type that
    // the header then replaced, parsed from text (about 400 instructions a call). The body's
    // exact length becomes its `Content-Length`.
    let mut r = Response::new(axum::body::Body::from(msg.to_bytes()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The HTTP status of a JSON-RPC reply: in the modern era an unknown method is 404, and a missing
/// client capability, a header mismatch or an unsupported version 400; everything else travels
/// in a 200.
pub fn status_of(msg: &Message, era: Era) -> StatusCode {
    if era == Era::Legacy {
        return StatusCode::OK;
    }
    match msg.rpc_error().map(|e| e.code) {
        Some(codes::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(codes::MISSING_CAPABILITY | codes::HEADER_MISMATCH | codes::UNSUPPORTED_VERSION) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}
