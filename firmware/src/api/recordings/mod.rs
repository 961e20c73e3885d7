//! The recordings API: listing, playback of one segment with HTTP Range, export of a
//! time range, and manual recording.
//!
//! | endpoint | role | vault |
//! |---|---|---|
//! | `GET /api/v1/recordings?from=&to=` | view recordings | no: the index is not secret |
//! | `GET /api/v1/recordings/{id}.mp4` (Range) | view recordings | yes |
//! | `GET /api/v1/export.mp4?from=&to=` | view recordings | yes |
//! | `POST /api/v1/recordings/manual` `{"action": "start"\|"stop"}` | view live | no |
//!
//! Times are RFC 3339 (`crate::api::time`), in query strings percent-encoded or not
//! (`+` is a plus sign here, not a space). Decryption happens in `playback`.

pub mod playback;
#[cfg(test)]
mod playback_tests;
pub mod query;
pub mod range;

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use self::playback::{BlockingBody, ExportSource, PlaybackError, RangeSource, SegmentReader};
use self::query::{QueryError, Window};
use self::range::{RangeError, content_range, parse_range, unsatisfied_range};
use super::AppState;
use super::auth::Principal;
use super::body::ResponseBody;
use super::json::{MAX_JSON_BODY, read_json};
use super::routes::{error, json_response};
use super::time::format_rfc3339;
use crate::auth::Action;
use crate::record::control::trigger_name;
use crate::record::layout;
use crate::store::{SegmentId, SegmentState, SegmentSummary};

const LIST: &str = "/api/v1/recordings";
const EXPORT: &str = "/api/v1/export.mp4";
const MANUAL: &str = "/api/v1/recordings/manual";
const SEGMENT_PREFIX: &str = "/api/v1/recordings/";

/// Most rows one listing returns; `truncated` says when there were more (ask again
/// from the end of the last one).
const MAX_LIST: usize = 2000;

/// Whether `path` is one of this module's endpoints.
pub fn owns(path: &str) -> bool {
    path == EXPORT || path == LIST || path.starts_with(SEGMENT_PREFIX)
}

/// Serves every path [`owns`] says is ours; the caller has authenticated `principal`
/// and checked CSRF. Role checks are done here, per endpoint.
pub async fn handle(
    state: &Rc<AppState>,
    principal: &Principal,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let result = match path.as_str() {
        MANUAL if *req.method() != Method::POST => Err(method_not_allowed(&req, "POST")),
        MANUAL => manual(state, principal, req).await,
        _ if !get => Err(method_not_allowed(&req, "GET, HEAD")),
        LIST => list(state, principal, req.uri().query()).await,
        EXPORT => export(state, principal, req.uri().query()).await,
        _ => match segment_id(&path) {
            Some(id) => play(state, principal, id, req.headers()).await,
            None => Err(not_found(&path)),
        },
    };
    result.unwrap_or_else(|res| res)
}

type Answer = Result<Response<ResponseBody>, Response<ResponseBody>>;

/// `/api/v1/recordings/{id}.mp4` → the id.
fn segment_id(path: &str) -> Option<SegmentId> {
    let digits = path.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(".mp4")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

fn not_found(path: &str) -> Response<ResponseBody> {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {path}"),
    )
}

fn method_not_allowed(req: &Request<Incoming>, allow: &'static str) -> Response<ResponseBody> {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.uri().path()
        ),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

fn bad_query(e: QueryError) -> Response<ResponseBody> {
    error(StatusCode::BAD_REQUEST, "bad_query", e.to_string())
}

fn now_us() -> u64 {
    layout::unix_us(SystemTime::now())
}

/// Runs blocking work (index reads, file opening) off the I/O thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PlaybackError> + Send + 'static,
) -> Result<T, PlaybackError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PlaybackError::Task(e.to_string()))?
}

/// The answer for an error found before any byte of a body was sent.
fn failure(e: &PlaybackError) -> Response<ResponseBody> {
    use crate::vault::VaultError;
    let (status, code) = match e {
        PlaybackError::Missing { .. } => (StatusCode::NOT_FOUND, "not_found"),
        PlaybackError::NoRecordings => (StatusCode::NOT_FOUND, "no_recordings"),
        PlaybackError::Vault {
            source: VaultError::WrongVault { .. },
            ..
        } => (StatusCode::CONFLICT, "wrong_vault"),
        PlaybackError::Vault { .. }
        | PlaybackError::Mismatch { .. }
        | PlaybackError::Mp4 { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "recording_damaged"),
        PlaybackError::Io { .. } | PlaybackError::Store(_) | PlaybackError::Task(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("recording not served: {e}");
    }
    error(status, code, e.to_string())
}

// ---------------------------------------------------------------------------------
// GET /api/v1/recordings

async fn list(state: &AppState, principal: &Principal, query: Option<&str>) -> Answer {
    principal.require(Action::ViewRecordings)?;
    let window = Window::for_list(query, now_us()).map_err(bad_query)?;
    let store = Arc::clone(&state.store);
    let rows = blocking(move || {
        Ok(store.segments_overlapping(window.from_us, window.to_us, MAX_LIST + 1)?)
    })
    .await
    .map_err(|e| failure(&e))?;
    let truncated = rows.len() > MAX_LIST;
    let recordings: Vec<_> = rows.iter().take(MAX_LIST).map(summary_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "from": format_rfc3339(window.from_us),
            "to": format_rfc3339(window.to_us),
            "recordings": recordings,
            "truncated": truncated,
        }),
    ))
}

fn summary_json(s: &SegmentSummary) -> serde_json::Value {
    json!({
        "id": s.id.0,
        "start": format_rfc3339(s.start_us),
        "end": format_rfc3339(s.end_us),
        "bytes": s.bytes,
        "trigger": trigger_name(s.trigger),
        "state": match s.state {
            SegmentState::Writing => "writing",
            SegmentState::Complete => "complete",
            SegmentState::Interrupted => "interrupted",
        },
        "fragments": s.fragment_count,
    })
}

// ---------------------------------------------------------------------------------
// GET /api/v1/recordings/{id}.mp4

async fn play(
    state: &AppState,
    principal: &Principal,
    id: SegmentId,
    headers: &HeaderMap,
) -> Answer {
    principal.require(Action::ViewRecordings)?;
    let vault = Arc::clone(principal.vault()?);
    let store = Arc::clone(&state.store);
    let data_dir = state.recording.data_dir().to_path_buf();
    let reader = blocking(move || {
        let segment = store.segment(id)?.ok_or(PlaybackError::Missing { id })?;
        SegmentReader::open(&data_dir, &segment, &vault)
    })
    .await
    .map_err(|e| match e {
        PlaybackError::Missing { .. } => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no recording {id} (retention may have deleted it)"),
        ),
        e => failure(&e),
    })?;
    let len = reader.len();
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(value) => {
            let parsed = value
                .to_str()
                .map_err(|_| RangeError::Malformed)
                .and_then(|v| parse_range(v, len));
            match parsed {
                Ok(range) => range,
                Err(e) => return Err(unsatisfiable(&e, len)),
            }
        }
    };
    let (status, first, last) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last),
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let source = RangeSource::new(reader, first, last);
    let body_len = source.len();
    let mut res = Response::new(
        Box::pin(BlockingBody::new(source, Some(body_len), "recording")) as ResponseBody,
    );
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    // Decrypted footage: never kept by a browser cache or a proxy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&content_range(first, last, len))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(res)
}

fn unsatisfiable(e: &RangeError, len: u64) -> Response<ResponseBody> {
    let mut res = error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "bad_range",
        e.to_string(),
    );
    if let Ok(v) = HeaderValue::from_str(&unsatisfied_range(len)) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

// ---------------------------------------------------------------------------------
// GET /api/v1/export.mp4

async fn export(state: &AppState, principal: &Principal, query: Option<&str>) -> Answer {
    principal.require(Action::ViewRecordings)?;
    let window = Window::for_export(query).map_err(bad_query)?;
    let vault = Arc::clone(principal.vault()?);
    let store = Arc::clone(&state.store);
    let data_dir = state.recording.data_dir().to_path_buf();
    let source =
        blocking(move || ExportSource::open(data_dir, store, vault, window.from_us, window.to_us))
            .await
            .map_err(|e| match e {
                PlaybackError::NoRecordings => error(
                    StatusCode::NOT_FOUND,
                    "no_recordings",
                    format!(
                        "nothing was recorded between {} and {}",
                        format_rfc3339(window.from_us),
                        format_rfc3339(window.to_us)
                    ),
                ),
                e => failure(&e),
            })?;
    let mut res =
        Response::new(Box::pin(BlockingBody::new(source, None, "export")) as ResponseBody);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let disposition = format!(
        "attachment; filename=\"mecam-{}.mp4\"",
        query::compact_time(window.from_us)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------
// POST /api/v1/recordings/manual

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualRequest {
    action: ManualAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ManualAction {
    Start,
    Stop,
}

async fn manual(state: &AppState, principal: &Principal, req: Request<Incoming>) -> Answer {
    principal.require(Action::ViewLive)?;
    let body: ManualRequest = read_json(req, MAX_JSON_BODY)
        .await
        .map_err(|e| e.into_response())?;
    let Some(control) = state.recording.control() else {
        return Err(error(
            StatusCode::CONFLICT,
            "recording_disabled",
            "recording has not started: the device is not set up yet",
        ));
    };
    match body.action {
        ManualAction::Start => control.start_manual(),
        ManualAction::Stop => control.stop_manual(),
    }
    tracing::info!(user = principal.username, action = ?body.action, "manual recording");
    let status = control.status();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "manual": status.manual, "recording": status.recording }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_paths() {
        assert!(owns("/api/v1/recordings"));
        assert!(owns("/api/v1/recordings/12.mp4"));
        assert!(owns("/api/v1/export.mp4"));
        assert!(!owns("/api/v1/recordingsx"));
        assert_eq!(segment_id("/api/v1/recordings/12.mp4"), Some(SegmentId(12)));
        for bad in [
            "/api/v1/recordings/.mp4",
            "/api/v1/recordings/12",
            "/api/v1/recordings/-1.mp4",
            "/api/v1/recordings/+1.mp4",
            "/api/v1/recordings/1a.mp4",
            "/api/v1/recordings/12.mp4/x",
            "/api/v1/recordings/99999999999999999999.mp4",
            "/api/v1/recordings/000000000000000000001.mp4",
        ] {
            assert_eq!(segment_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn recordings_manual_body_is_strict() {
        use crate::api::json::parse_json;
        let ok: ManualRequest = parse_json(br#"{"action":"start"}"#).unwrap();
        assert_eq!(ok.action, ManualAction::Start);
        for bad in [
            &br#"{"action":"START"}"#[..],
            br#"{"action":"start","extra":1}"#,
            br#"{}"#,
            br#"{"action":1}"#,
        ] {
            let e = parse_json::<ManualRequest>(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
}
