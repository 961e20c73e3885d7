//! The recordings API: listing, playback of one segment with HTTP Range, export of a
//! time range, and manual recording.
//!
//! STUB — being implemented.

use std::rc::Rc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::AppState;
use super::auth::Principal;
use super::body::ResponseBody;
use super::routes::error;

/// Whether `path` is one of this module's endpoints.
pub fn owns(path: &str) -> bool {
    path == "/api/v1/export.mp4"
        || path == "/api/v1/recordings"
        || path.starts_with("/api/v1/recordings/")
}

/// Serves every path [`owns`] says is ours; the caller has authenticated `principal`
/// and checked CSRF. Role checks are done here, per endpoint.
pub async fn handle(
    _state: &Rc<AppState>,
    _principal: &Principal,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {}", req.uri().path()),
    )
}
