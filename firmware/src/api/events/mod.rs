//! The events API: listing, thumbnails and the live stream of updates.
//!
//! | endpoint | role | vault |
//! |---|---|---|
//! | `GET /api/v1/events?from=&to=&kind=&limit=&cursor=` | view events | no: the index is not secret |
//! | `GET /api/v1/events/{id}/thumbnail.jpg` | view events | yes: thumbnails are sealed |
//! | `GET /api/v1/events/stream?kind=` | view events | no |
//!
//! An event as the listing and the stream show it:
//!
//! ```json
//! {"id": 42, "kind": "person", "start": "2026-03-01T08:00:00.250Z", "end": null,
//!  "score": 0.912, "boxes": [{"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.6}],
//!  "zones": ["door"], "thumbnail": "/api/v1/events/42/thumbnail.jpg"}
//! ```
//!
//! `end` is null while the event goes on; `score` is the peak (the model's score for
//! a person, the changed fraction of the frame for motion) and `boxes` those of the
//! peak frame, in normalised coordinates; `thumbnail` is null when there is none.

pub mod query;
pub mod sse;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use self::query::QueryError;
use super::AppState;
use super::auth::Principal;
use super::body::{self, ResponseBody};
use super::routes::{error, json_response, method_not_allowed};
use super::time::format_rfc3339;
use crate::auth::Action;
use crate::events::{Event, EventKind, ThumbnailError};
use crate::store::Store;
use crate::vault::VaultError;

const LIST: &str = "/api/v1/events";
const STREAM: &str = "/api/v1/events/stream";
const PREFIX: &str = "/api/v1/events/";
const THUMBNAIL_SUFFIX: &str = "/thumbnail.jpg";

/// Whether `path` is one of this module's endpoints.
pub fn owns(path: &str) -> bool {
    path == LIST || path.starts_with(PREFIX)
}

/// Serves every path [`owns`] says is ours; the caller has authenticated `principal`.
pub async fn handle(
    state: &Rc<AppState>,
    principal: &Principal,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return method_not_allowed(req.method(), &path, "GET, HEAD");
    }
    if let Err(res) = principal.require(Action::ViewEvents) {
        return res;
    }
    let result = match path.as_str() {
        LIST => list(state, req.uri().query()).await,
        STREAM => stream(state, req.uri().query()),
        _ => match thumbnail_id(&path) {
            Some(id) => thumbnail(state, principal, id).await,
            None => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such endpoint: {path}"),
            )),
        },
    };
    result.unwrap_or_else(|res| res)
}

type Answer = Result<Response<ResponseBody>, Response<ResponseBody>>;

/// The event as the API shows it (see the module documentation).
pub fn event_json(e: &Event, recording: Option<String>) -> serde_json::Value {
    // Scores and coordinates are f32 underneath; three and four decimals are all they
    // mean, and spare clients `0.9100000262260437`.
    let round = |v: f32, places: i32| {
        let scale = 10f64.powi(places);
        (f64::from(v) * scale).round() / scale
    };
    let boxes: Vec<_> = e
        .boxes
        .iter()
        .map(|b| {
            json!({
                "x": round(b.x, 4),
                "y": round(b.y, 4),
                "w": round(b.w, 4),
                "h": round(b.h, 4),
            })
        })
        .collect();
    json!({
        "id": e.id,
        "kind": match e.kind {
            EventKind::Motion => "motion",
            EventKind::Person => "person",
        },
        "start": format_rfc3339(e.start_us),
        "end": e.end_us.map(format_rfc3339),
        "score": round(e.peak_score, 3),
        "boxes": boxes,
        "zones": e.zones,
        "thumbnail": e.thumbnail.then(|| thumbnail_path(e.id)),
        "recording": recording,
    })
}

/// Finds where an event's footage plays: [`recording_link`] with what it needs.
pub type Linker = Rc<dyn Fn(&Event) -> Option<String>>;

/// The [`Linker`] of this device (its index, its pre- and post-roll, and the segment
/// being written, whose row the recorder commits only every few seconds).
pub fn linker(state: &AppState) -> Linker {
    let store = Arc::clone(&state.store);
    let recording = Rc::clone(&state.recording);
    Rc::new(move |e: &Event| {
        let writing_since = recording
            .status()
            .and_then(|s| s.current_segment)
            .map(|c| c.start_us);
        recording_link(&store, recording.rolls(), writing_since, e)
    })
}

/// The export of an event's footage, from the pre-roll before its start to the
/// post-roll after its end (after its start while it goes on), when the index holds
/// any recording in that window or the segment being written (started at
/// `writing_since`, µs) reaches into it; `None` otherwise (recording off, or retention
/// took it). One index read (microseconds).
pub fn recording_link(
    store: &Store,
    (pre_roll, post_roll): (Duration, Duration),
    writing_since: Option<u64>,
    e: &Event,
) -> Option<String> {
    let from = e.start_us.saturating_sub(pre_roll.as_micros() as u64);
    let to = e.end_us.unwrap_or(e.start_us) + post_roll.as_micros() as u64;
    let writing = writing_since.is_some_and(|start| start < to);
    match store.segments_overlapping(from, to, 1) {
        Ok(found) if writing || !found.is_empty() => Some(format!(
            "/api/v1/export.mp4?from={}&to={}",
            format_rfc3339(from),
            format_rfc3339(to)
        )),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("the recording of an event cannot be looked up: {e}");
            None
        }
    }
}

/// Where event `id`'s thumbnail is served.
pub fn thumbnail_path(id: u64) -> String {
    format!("{PREFIX}{id}{THUMBNAIL_SUFFIX}")
}

/// `/api/v1/events/{id}/thumbnail.jpg` → the id.
fn thumbnail_id(path: &str) -> Option<u64> {
    let digits = path.strip_prefix(PREFIX)?.strip_suffix(THUMBNAIL_SUFFIX)?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn bad_query(e: QueryError) -> Response<ResponseBody> {
    error(StatusCode::BAD_REQUEST, "bad_query", e.to_string())
}

fn internal(what: &str, e: impl std::fmt::Display) -> Response<ResponseBody> {
    tracing::error!("{what}: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{what}: {e}"),
    )
}

// ---------------------------------------------------------------------------------
// GET /api/v1/events

async fn list(state: &AppState, query: Option<&str>) -> Answer {
    let query = query::parse_list(query).map_err(bad_query)?;
    let events = state.events.clone();
    let page = tokio::task::spawn_blocking(move || events.store().list(&query))
        .await
        .map_err(|e| internal("events cannot be listed", e))?
        .map_err(|e| internal("events cannot be listed", e))?;
    let link = linker(state);
    let events: Vec<_> = page.events.iter().map(|e| event_json(e, link(e))).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "events": events,
            "next_cursor": page.next.map(|c| c.encode()),
        }),
    ))
}

// ---------------------------------------------------------------------------------
// GET /api/v1/events/{id}/thumbnail.jpg

async fn thumbnail(state: &AppState, principal: &Principal, id: u64) -> Answer {
    let vault = Arc::clone(principal.vault()?);
    let events = state.events.clone();
    let read = tokio::task::spawn_blocking(move || events.thumbnails().read(id, &vault))
        .await
        .map_err(|e| internal("the thumbnail cannot be read", e))?;
    let jpeg = match read {
        Ok(Some(jpeg)) => jpeg,
        Ok(None) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "event {id} has no thumbnail (it does not exist, retention deleted it, it \
                     happened before setup, or the camera had no picture then)"
                ),
            ));
        }
        Err(ThumbnailError::Vault {
            source: source @ VaultError::WrongVault { .. },
            ..
        }) => {
            return Err(error(
                StatusCode::CONFLICT,
                "wrong_vault",
                source.to_string(),
            ));
        }
        Err(e @ (ThumbnailError::Vault { .. } | ThumbnailError::TooLarge { .. })) => {
            tracing::error!("thumbnail not served: {e}");
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "thumbnail_damaged",
                e.to_string(),
            ));
        }
        Err(e) => return Err(internal("the thumbnail cannot be read", e)),
    };
    let len = jpeg.len();
    let mut res = Response::new(body::full(jpeg));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // Decrypted: never kept by a browser cache or a proxy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---------------------------------------------------------------------------------
// GET /api/v1/events/stream

fn stream(state: &Rc<AppState>, query: Option<&str>) -> Answer {
    let kind = query::parse_stream(query).map_err(bad_query)?;
    let mut res = Response::new(Box::pin(sse::stream(state, kind)) as ResponseBody);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style reverse proxies not to hold messages back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    #[test]
    fn events_paths() {
        assert!(owns("/api/v1/events"));
        assert!(owns("/api/v1/events/stream"));
        assert!(owns("/api/v1/events/3/thumbnail.jpg"));
        assert!(!owns("/api/v1/eventsx"));
        assert_eq!(thumbnail_id("/api/v1/events/3/thumbnail.jpg"), Some(3));
        assert_eq!(thumbnail_id(&thumbnail_path(u64::MAX)), Some(u64::MAX));
        for bad in [
            "/api/v1/events//thumbnail.jpg",
            "/api/v1/events/3/thumbnail.png",
            "/api/v1/events/3",
            "/api/v1/events/-3/thumbnail.jpg",
            "/api/v1/events/+3/thumbnail.jpg",
            "/api/v1/events/3/../thumbnail.jpg",
            "/api/v1/events/99999999999999999999/thumbnail.jpg",
            "/api/v1/events/stream",
        ] {
            assert_eq!(thumbnail_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_event_links_the_footage_around_it_when_there_is_any() {
        use crate::store::{Segment, SegmentState, Trigger};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        const S: u64 = 1_000_000;
        let t0 = 1_772_323_200 * S;
        let rolls = (Duration::from_secs(5), Duration::from_secs(10));
        let event = |start_s: u64, end_s: Option<u64>| Event {
            id: 1,
            kind: EventKind::Person,
            start_us: t0 + start_s * S,
            end_us: end_s.map(|e| t0 + e * S),
            peak_score: 0.9,
            boxes: Vec::new(),
            zones: Vec::new(),
            thumbnail: false,
        };
        assert_eq!(
            recording_link(&store, rolls, None, &event(100, Some(110))),
            None
        );
        assert!(
            recording_link(&store, rolls, Some(t0 + 90 * S), &event(100, Some(110))).is_some(),
            "the segment being written, not in the index yet"
        );
        assert_eq!(
            recording_link(&store, rolls, Some(t0 + 130 * S), &event(100, Some(110))),
            None,
            "a segment started after the event's post-roll"
        );

        // One event-mode recording from 95 s to 120 s.
        store
            .put_segment(&Segment {
                id: store.allocate_segment_id().unwrap(),
                path: "rec/1.seg".into(),
                start_us: t0 + 95 * S,
                end_us: t0 + 120 * S,
                bytes: 1,
                state: SegmentState::Complete,
                trigger: Trigger::Event,
                fragments: Vec::new(),
            })
            .unwrap();
        assert_eq!(
            recording_link(&store, rolls, None, &event(100, Some(110))).as_deref(),
            Some("/api/v1/export.mp4?from=2026-03-01T00:01:35Z&to=2026-03-01T00:02:00Z"),
            "from the pre-roll before the start to the post-roll after the end"
        );
        assert!(
            recording_link(&store, rolls, None, &event(117, None)).is_some(),
            "an event going on links from its pre-roll"
        );
        assert_eq!(
            recording_link(&store, rolls, None, &event(200, Some(210))),
            None,
            "no footage of that time"
        );
    }

    #[test]
    fn event_json_is_what_clients_get() {
        let e = Event {
            id: 9,
            kind: EventKind::Motion,
            start_us: 1_772_323_200_000_000,
            end_us: Some(1_772_323_231_500_000),
            peak_score: 0.91,
            boxes: vec![BBox {
                x: 0.123_456,
                y: 0.0,
                w: 1.0,
                h: 0.333_333,
            }],
            zones: vec!["drive".into(), "porch".into()],
            thumbnail: true,
        };
        assert_eq!(
            event_json(&e, Some("/api/v1/export.mp4?from=a&to=b".into())),
            json!({
                "id": 9,
                "kind": "motion",
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-01T00:00:31.500Z",
                "score": 0.91,
                "boxes": [{"x": 0.1235, "y": 0.0, "w": 1.0, "h": 0.3333}],
                "zones": ["drive", "porch"],
                "thumbnail": "/api/v1/events/9/thumbnail.jpg",
                "recording": "/api/v1/export.mp4?from=a&to=b",
            })
        );
    }
}
