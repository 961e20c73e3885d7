//! Request routing and the small JSON endpoints.

use std::convert::Infallible;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::body::{self, ResponseBody};
use super::{AppState, mjpeg};

const INDEX_HTML: &str = include_str!("../../web/index.html");
const STYLE_CSS: &str = include_str!("../../web/style.css");

/// How long a snapshot request waits for the camera's first frame.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(3);

pub async fn handle<B>(
    state: Rc<AppState>,
    req: Request<B>,
) -> Result<Response<ResponseBody>, Infallible> {
    let mut res = route(&state, &req).await;
    if req.method() == Method::HEAD {
        *res.body_mut() = body::empty();
    }
    secure_headers(res.headers_mut());
    Ok(res)
}

async fn route<B>(state: &Rc<AppState>, req: &Request<B>) -> Response<ResponseBody> {
    let path = req.uri().path();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let known = matches!(
        path,
        "/" | "/style.css" | "/api/v1/health" | "/api/v1/snapshot.jpg" | "/api/v1/live.mjpg"
    );
    if known && !get {
        let mut res = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}; use GET", req.method()),
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    match path {
        "/" => asset(INDEX_HTML, "text/html; charset=utf-8"),
        "/style.css" => asset(STYLE_CSS, "text/css; charset=utf-8"),
        "/api/v1/health" => health(state),
        "/api/v1/snapshot.jpg" => snapshot(state).await,
        "/api/v1/live.mjpg" => live(state, req.uri().query()),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {path}"),
        ),
    }
}

fn health(state: &AppState) -> Response<ResponseBody> {
    let camera = state.camera.report(Instant::now());
    let ok = camera.state == crate::status::CameraState::Running;
    json_response(
        StatusCode::OK,
        &json!({
            "status": if ok { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started.elapsed().as_secs(),
            "camera": camera,
            "live_clients": state.live_clients.get(),
            "connections": state.connections.get(),
        }),
    )
}

async fn snapshot(state: &AppState) -> Response<ResponseBody> {
    let mut frames = state.bus.subscribe();
    let waited =
        tokio::time::timeout(FIRST_FRAME_WAIT, frames.wait_for(|frame| frame.is_some())).await;
    let packet = match waited {
        Ok(Ok(frame)) => frame.clone(),
        _ => None,
    };
    let Some(packet) = packet else {
        let mut res = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_frame",
            "the camera has not produced a frame yet; try again shortly",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    };
    let mut res = Response::new(body::full(packet.data));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn live(state: &Rc<AppState>, query: Option<&str>) -> Response<ResponseBody> {
    let camera_fps = state
        .camera
        .report(Instant::now())
        .fps_configured
        .unwrap_or(120);
    let max_fps = match mjpeg::parse_fps(query, camera_fps) {
        Ok(v) => v,
        Err(problem) => return error(StatusCode::BAD_REQUEST, "bad_query", problem),
    };
    let mut res = Response::new(Box::pin(mjpeg::stream(state, max_fps)) as ResponseBody);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("multipart/x-mixed-replace; boundary=mecamframe"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn asset(content: &'static str, content_type: &'static str) -> Response<ResponseBody> {
    let mut res = Response::new(body::full(Bytes::from_static(content.as_bytes())));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    let mut res = Response::new(body::full(value.to_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The JSON error every endpoint answers with: a stable code for programs and a
/// sentence for people.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<ResponseBody> {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message.into() } }),
    )
}

/// Headers on every response: no inline script, no framing, no sniffing, no referrer.
pub fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
             script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
