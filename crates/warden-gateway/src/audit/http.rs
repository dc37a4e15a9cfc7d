//! The log for monitors, over HTTP, to administrators: the latest signed checkpoint and the
//! Merkle tree's hash tiles in the C2SP `tlog-tiles` layout, so a monitor can check inclusion
//! and consistency proofs against checkpoints while Warden runs.
//!
//! - `GET /admin/audit/checkpoint`: the latest checkpoint, a C2SP signed note
//! - `GET /admin/audit/tile/<L>/<N>[.p/<W>]`: a hash tile (height 8), `N` in groups of three
//!   digits with all but the last prefixed by `x` (`x001/x234/067`)

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::admin::Administrator;
use crate::gateway::Gateway;

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/audit/checkpoint", get(checkpoint))
        .route("/admin/audit/tile/{*path}", get(tile))
}

fn not_found(why: &str) -> Response {
    (StatusCode::NOT_FOUND, why.to_string()).into_response()
}

async fn checkpoint(State(gw): State<Arc<Gateway>>, _: Administrator) -> Response {
    let Some(log) = gw.audit.log() else {
        return not_found("the audit trail is off (audit.enabled = false)");
    };
    match log.latest_checkpoint() {
        Some(note) => (
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (CACHE_CONTROL, "no-store"),
            ],
            note,
        )
            .into_response(),
        None => not_found("no checkpoint yet"),
    }
}

async fn tile(
    State(gw): State<Arc<Gateway>>,
    _: Administrator,
    Path(path): Path<String>,
) -> Response {
    let Some(log) = gw.audit.log() else {
        return not_found("the audit trail is off (audit.enabled = false)");
    };
    let Some((level, index, width)) = parse_tile_path(&path) else {
        return (
            StatusCode::BAD_REQUEST,
            "not a tile path: <L>/<N as x001/x234/067>[.p/<W>]",
        )
            .into_response();
    };
    match log.tile(level, index, width) {
        Ok(bytes) => ([(CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => not_found(&e.to_string()),
    }
}

/// `<L>/<N>[.p/<W>]` with `N` in the C2SP encoding, as level, index and partial width.
pub fn parse_tile_path(path: &str) -> Option<(u8, u64, Option<u16>)> {
    let (path, width) = match path.split_once(".p/") {
        Some((p, w)) => {
            let w: u16 = w.parse().ok()?;
            (p, Some(w).filter(|w| (1..256).contains(w))?.into())
        }
        None => (path, None),
    };
    let mut parts = path.split('/');
    let level: u8 = parts.next()?.parse().ok()?;
    let groups: Vec<&str> = parts.collect();
    let (last, rest) = groups.split_last()?;
    let mut index: u64 = 0;
    for g in rest {
        index = index
            .checked_mul(1000)?
            .checked_add(three_digits(g.strip_prefix('x')?)?)?;
    }
    index = index.checked_mul(1000)?.checked_add(three_digits(last)?)?;
    Some((level, index, width))
}

fn three_digits(g: &str) -> Option<u64> {
    (g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
        .then(|| g.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_tile_path;

    #[test]
    fn tile_paths_in_the_c2sp_encoding() {
        assert_eq!(parse_tile_path("0/000"), Some((0, 0, None)));
        assert_eq!(
            parse_tile_path("0/x001/x234/067"),
            Some((0, 1_234_067, None))
        );
        assert_eq!(parse_tile_path("1/005.p/7"), Some((1, 5, Some(7))));
        assert_eq!(parse_tile_path("0/5"), None);
        assert_eq!(parse_tile_path("0/001/002"), None);
        assert_eq!(parse_tile_path("0/000.p/256"), None);
        assert_eq!(parse_tile_path("0/000.p/0"), None);
        assert_eq!(parse_tile_path("x/000"), None);
    }
}
