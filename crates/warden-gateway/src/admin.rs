//! The admin API: revocations and API keys over HTTP, for principals in `identity.admin_groups`.
//! It writes the same store the CLI writes; changes take effect on the next request.
//!
//! - `GET /admin/revocations`, `POST /admin/revocations {kind, value, reason}`,
//!   `DELETE /admin/revocations/{kind}/{value}`
//! - `GET /admin/keys`, `POST /admin/keys {name, groups, scopes, expires_in_secs}` (the answer
//!   holds the key, shown this once), `DELETE /admin/keys/{id_or_name}`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, Uri};
use serde::Deserialize;
use serde_json::json;

use crate::gateway::Gateway;
use crate::identity::keys;
use crate::identity::revocation::KINDS;
use crate::store::Store;

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
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The store, if the caller is an administrator.
async fn admin(
    gw: &Gateway,
    uri: &Uri,
    h: &HeaderMap,
    peer: SocketAddr,
) -> Result<Store, Response> {
    let principal = gw
        .identity
        .authenticate(uri.query(), h)
        .await
        .map_err(|e| {
            tracing::warn!(reason = %e, client = %peer, "admin API: authentication refused");
            let (status, challenge) = gw.identity.challenge.answer(&e);
            let mut r = problem(status, e.to_string());
            r.headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, challenge);
            r
        })?;
    if !gw.identity.is_admin(&principal) {
        tracing::warn!(user = %principal.user, client = %peer, "admin API: not an administrator");
        return Err(problem(
            StatusCode::FORBIDDEN,
            "the admin API is for members of identity.admin_groups",
        ));
    }
    tracing::info!(user = %principal.user, path = %uri.path(), "admin API call");
    gw.identity.store().cloned().ok_or_else(|| {
        problem(
            StatusCode::NOT_FOUND,
            "this gateway keeps no store (test profile)",
        )
    })
}

fn failed(e: impl std::fmt::Display) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn list_revocations(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
    Json(body): Json<NewRevocation>,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !KINDS.contains(&body.kind.as_str()) || body.value.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("kind must be one of {KINDS:?} and value non-empty"),
        );
    }
    match store.revoke(&body.kind, &body.value, &body.reason).await {
        Ok(()) => {
            gw.identity.sync().await;
            StatusCode::CREATED.into_response()
        }
        Err(e) => failed(e),
    }
}

async fn remove_revocation(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
    Path((kind, value)): Path<(String, String)>,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match store.unrevoke(&kind, &value).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such revocation"),
        Err(e) => failed(e),
    }
}

async fn list_keys(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
    Json(body): Json<NewKey>,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let new = keys::generate(&body.name, body.groups, body.scopes, body.expires_in_secs);
    match store.insert_key(&new.stored).await {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({ "id": new.stored.id, "name": new.stored.name, "key": new.key })),
        )
            .into_response(),
        Err(e) => problem(StatusCode::CONFLICT, format!("{e} (is the name taken?)")),
    }
}

async fn revoke_key(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let store = match admin(&gw, &uri, &h, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match store.revoke_key(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "no active key with that id or name"),
        Err(e) => failed(e),
    }
}
