//! The admin API: revocations and API keys over HTTP, for principals in `identity.admin_groups`.
//! It writes the same store the CLI writes; changes take effect on the next request.
//!
//! - `GET /admin/revocations`, `POST /admin/revocations {kind, value, reason}`,
//!   `DELETE /admin/revocations/{kind}/{value}`
//! - `GET /admin/keys`, `POST /admin/keys {name, groups, scopes, expires_in_secs}` (the answer
//!   holds the key, shown this once), `DELETE /admin/keys/{id_or_name}`
//! - `GET /admin/grants[?user=U]` (live grants made on the consent page),
//!   `DELETE /admin/grants/{id}` (ends one now)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;

use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::identity::keys;
use crate::identity::revocation::KINDS;
use crate::store::{self, Store};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route(
            "/admin/revocations",
            get(list_revocations).post(add_revocation),
        )
        .route(
            "/admin/revocations/{kind}/{value}",
            delete(remove_revocation),
        )
        .route("/admin/keys", get(list_keys).post(create_key))
        .route("/admin/keys/{id}", delete(revoke_key))
        .route("/admin/grants", get(list_grants))
        .route("/admin/grants/{id}", delete(revoke_grant))
        .merge(crate::audit::http::routes())
}

/// A grant as the admin API and `warden grants list` show it.
pub fn grant_json(g: &store::Grant) -> serde_json::Value {
    let (kind, digest) = match &g.kind {
        store::GrantKind::OneCall { arguments_digest } => ("one_call", Some(arguments_digest)),
        store::GrantKind::Standing => ("standing", None),
    };
    json!({
        "id": g.id, "user": g.user, "agent": g.agent, "tool": g.tool, "kind": kind,
        "arguments_digest": digest, "created_at": g.created_at, "expires_at": g.expires_at,
    })
}

#[derive(Deserialize)]
struct GrantFilter {
    user: Option<String>,
}

async fn list_grants(
    State(gw): State<Arc<Gateway>>,
    Admin(store, _): Admin,
    axum::extract::Query(filter): axum::extract::Query<GrantFilter>,
) -> Response {
    match store
        .grants(filter.user.as_deref(), gw.consents.clock.now())
        .await
    {
        Ok(list) => Json(list.iter().map(grant_json).collect::<Vec<_>>()).into_response(),
        Err(e) => failed(e),
    }
}

async fn revoke_grant(
    State(gw): State<Arc<Gateway>>,
    Admin(store, by): Admin,
    Path(id): Path<String>,
) -> Response {
    match store.consume_grant(&id, gw.consents.clock.now()).await {
        Ok(store::ConsumeOutcome::Consumed) => {
            tracing::info!(event = "grant.revoked", grant = %id, "grant revoked by an administrator");
            let mut record = crate::audit::records::about(warden_audit::Kind::GrantRevoked, &by);
            record.name = Some("grant.revoke".into());
            record.detail = json!({ "grant": id });
            if let Err(r) = gw.audit.write(record).await {
                tracing::error!(grant = %id, reason = %r, "grant revocation not recorded");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => problem(StatusCode::NOT_FOUND, format!("no live grant {id:?}")),
        Err(e) => failed(e),
    }
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An authenticated administrator; any handler taking it is admin-only.
pub struct Administrator(pub Arc<Principal>);

impl FromRequestParts<Arc<Gateway>> for Administrator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Administrator, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let principal = gw
            .identity
            .authenticate(parts.uri.query(), &parts.headers)
            .await
            .map_err(|e| {
                tracing::warn!(reason = %e, client = ?peer, "admin API: authentication refused");
                let (status, challenge) = gw.identity.challenge.answer(&e);
                let mut r = problem(status, e.to_string());
                r.headers_mut()
                    .insert(http::header::WWW_AUTHENTICATE, challenge);
                r
            })?;
        if !gw.identity.is_admin(&principal) {
            tracing::warn!(user = %principal.user, client = ?peer, "admin API: not an administrator");
            return Err(problem(
                StatusCode::FORBIDDEN,
                "the admin API is for members of identity.admin_groups",
            ));
        }
        tracing::info!(user = %principal.user, path = %parts.uri.path(), "admin API call");
        Ok(Administrator(principal))
    }
}

/// The store and the administrator who called; any handler taking it is admin-only.
pub struct Admin(Arc<dyn Store>, Arc<Principal>);

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Admin, Response> {
        let Administrator(by) = Administrator::from_request_parts(parts, gw).await?;
        let store = gw.identity.store().cloned();
        store.map(|s| Admin(s, by)).ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "this gateway keeps no store (test profile)",
            )
        })
    }
}

/// Puts an administrator's action on the audit record before it is answered.
async fn recorded(gw: &Gateway, by: &Principal, action: &str, detail: serde_json::Value) {
    let mut record = crate::audit::records::about(warden_audit::Kind::Admin, by);
    record.name = Some(action.to_string());
    record.detail = detail;
    if let Err(r) = gw.audit.write(record).await {
        tracing::error!(action, reason = %r, "admin action not recorded");
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn list_revocations(Admin(store, _): Admin) -> Response {
    match store.revocations().await {
        Ok(list) => Json(list.into_iter().map(|r| json!({ "kind": r.kind, "value": r.value, "reason": r.reason, "created_at": r.created_at })).collect::<Vec<_>>()).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct NewRevocation {
    kind: String,
    value: String,
    #[serde(default)]
    reason: String,
}

async fn add_revocation(
    State(gw): State<Arc<Gateway>>,
    Admin(store, by): Admin,
    Json(body): Json<NewRevocation>,
) -> Response {
    if !KINDS.contains(&body.kind.as_str()) || body.value.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("kind must be one of {KINDS:?} and value non-empty"),
        );
    }
    match store
        .revoke(&body.kind, &body.value, &body.reason, store::now())
        .await
    {
        Ok(()) => {
            let _ = gw.identity.sync().await;
            let detail = json!({ "kind": body.kind, "value": body.value, "reason": body.reason });
            recorded(&gw, &by, "revocation.add", detail).await;
            StatusCode::CREATED.into_response()
        }
        Err(e) => failed(e),
    }
}

async fn remove_revocation(
    State(gw): State<Arc<Gateway>>,
    Admin(store, by): Admin,
    Path((kind, value)): Path<(String, String)>,
) -> Response {
    match store.unrevoke(&kind, &value).await {
        Ok(true) => {
            let detail = json!({ "kind": kind, "value": value });
            recorded(&gw, &by, "revocation.remove", detail).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such revocation"),
        Err(e) => failed(e),
    }
}

async fn list_keys(Admin(store, _): Admin) -> Response {
    match store.keys().await {
        Ok(list) => Json(
            list.into_iter()
                .map(|k| json!({ "id": k.id, "name": k.name, "groups": k.groups, "scopes": k.scopes, "created_at": k.created_at, "expires_at": k.expires_at, "revoked": k.revoked_at.is_some() }))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    expires_in_secs: Option<i64>,
}

async fn create_key(
    State(gw): State<Arc<Gateway>>,
    Admin(store, by): Admin,
    Json(body): Json<NewKey>,
) -> Response {
    let new = keys::generate(&body.name, body.groups, body.scopes, body.expires_in_secs);
    match store.insert_key(&new.stored).await {
        Ok(()) => {
            // The key itself is shown to the caller once and never recorded.
            let s = &new.stored;
            let detail = json!({ "id": s.id, "name": s.name, "groups": s.groups, "scopes": s.scopes, "expires_at": s.expires_at });
            recorded(&gw, &by, "key.create", detail).await;
            (
                StatusCode::CREATED,
                Json(json!({ "id": new.stored.id, "name": new.stored.name, "key": new.key })),
            )
                .into_response()
        }
        Err(e) => problem(StatusCode::CONFLICT, format!("{e} (is the name taken?)")),
    }
}

async fn revoke_key(
    State(gw): State<Arc<Gateway>>,
    Admin(store, by): Admin,
    Path(id): Path<String>,
) -> Response {
    match store.revoke_key(&id, store::now()).await {
        Ok(true) => {
            recorded(&gw, &by, "key.revoke", json!({ "key": id })).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, "no active key with that id or name"),
        Err(e) => failed(e),
    }
}
