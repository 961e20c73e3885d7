//! Request routing and the small JSON endpoints.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::auth::{Principal, Via};
use super::body::{self, ResponseBody};
use super::credentials::{self, Presented};
use super::{AppState, account_routes, events, mjpeg, recordings};
use crate::auth::{Action, check_origin, classify};

const INDEX_HTML: &str = include_str!("../../web/index.html");
const STYLE_CSS: &str = include_str!("../../web/style.css");
const APP_JS: &str = include_str!("../../web/app.js");

/// How long a snapshot request waits for the camera's first frame.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(3);

pub async fn handle(
    state: Rc<AppState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let head = req.method() == Method::HEAD;
    let mut res = route(&state, peer.ip(), req).await;
    if head {
        *res.body_mut() = body::empty();
    }
    secure_headers(res.headers_mut());
    Ok(res)
}

async fn route(state: &Rc<AppState>, ip: IpAddr, req: Request<Incoming>) -> Response<ResponseBody> {
    if !state.allow_public_clients && !classify(ip).is_local() {
        return error(
            StatusCode::FORBIDDEN,
            "public_address",
            format!(
                "{ip} is not on the local network; this camera serves only its LAN \
                 (set `server.allow_public_clients = true` to change that)"
            ),
        );
    }
    let path = req.uri().path().to_owned();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    // What anyone on the LAN may fetch: the login page, health, setup, login.
    match path.as_str() {
        "/" | "/style.css" | "/app.js" | "/api/v1/health" if !get => {
            return method_not_allowed(req.method(), &path, "GET, HEAD");
        }
        "/" => return asset(INDEX_HTML, "text/html; charset=utf-8"),
        "/style.css" => return asset(STYLE_CSS, "text/css; charset=utf-8"),
        "/app.js" => return asset(APP_JS, "text/javascript; charset=utf-8"),
        "/api/v1/health" => return health(state),
        "/api/v1/setup" => return account_routes::setup(state, ip, req).await,
        "/api/v1/session" if req.method() == Method::POST => {
            return account_routes::login(state, ip, req).await;
        }
        _ => {}
    }

    // Everything else needs an authenticated caller.
    let camera_client = matches!(path.as_str(), "/api/v1/live.mjpg" | "/api/v1/snapshot.jpg");
    let presented = credentials::presented(req.headers());
    let by_cookie = matches!(presented, Presented::Cookie(_));
    let principal = match state
        .accounts
        .authenticate(presented, ip, camera_client)
        .await
    {
        Ok(p) => p,
        Err(e) => return account_routes::access_error(e, camera_client),
    };
    if by_cookie
        && !get
        && let Err(res) = check_csrf(state, &principal, &req)
    {
        return res;
    }

    match path.as_str() {
        "/api/v1/snapshot.jpg" | "/api/v1/live.mjpg" if !get => {
            method_not_allowed(req.method(), &path, "GET, HEAD")
        }
        "/api/v1/snapshot.jpg" | "/api/v1/live.mjpg" => {
            if let Err(res) = principal.require(Action::ViewLive) {
                return res;
            }
            if path == "/api/v1/snapshot.jpg" {
                snapshot(state).await
            } else {
                live(state, req.uri().query())
            }
        }
        p if recordings::owns(p) => recordings::handle(state, &principal, req).await,
        p if events::owns(p) => events::handle(state, &principal, req).await,
        p if account_routes::owns(p) => account_routes::handle(state, &principal, ip, req).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {path}"),
        ),
    }
}

/// The CSRF defence for cookie-authenticated state changes: the request must come
/// from this device's own page (Origin) and carry the session's CSRF token.
fn check_csrf<B>(
    state: &AppState,
    principal: &Principal,
    req: &Request<B>,
) -> Result<(), Response<ResponseBody>> {
    let Via::Session(session) = &principal.via else {
        return Ok(());
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in `Host`.
    let host = header("host").or_else(|| req.uri().authority().map(|a| a.as_str()));
    if let Err(e) = check_origin(header("origin"), host) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("cross-site request refused ({e}); use the device's own web page"),
        ));
    }
    match header("x-csrf-token") {
        Some(token) if state.accounts.csrf_ok(session, token) => Ok(()),
        _ => Err(error(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong X-CSRF-Token header; send the csrf_token from the login answer \
             (GET /api/v1/session gives it again)",
        )),
    }
}

/// 405 with the methods that are allowed.
pub fn method_not_allowed(
    method: &Method,
    path: &str,
    allow: &'static str,
) -> Response<ResponseBody> {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}; use {allow}"),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

fn health(state: &AppState) -> Response<ResponseBody> {
    let camera = state.camera.report(Instant::now());
    let recorder = state.recording.status();
    let detector_stopped = state.detector.as_ref().is_some_and(|d| !d.running());
    let ok = camera.state == crate::status::CameraState::Running
        && !recorder.as_ref().is_some_and(|r| r.disk_full)
        && !detector_stopped;
    // Public endpoint: enough for a monitor to see that recording works, nothing about
    // what was recorded.
    let recording = recorder.map(|r| {
        json!({
            "mode": r.mode,
            "recording": r.recording,
            "manual": r.manual,
            "disk_full": r.disk_full,
            "disk_full_events": r.disk_full_events,
            "bytes_free": r.bytes_free,
            "errors": r.errors,
            "last_error": r.last_error,
        })
    });
    json_response(
        StatusCode::OK,
        &json!({
            "status": if ok { "ok" } else { "degraded" },
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started.elapsed().as_secs(),
            "camera": camera,
            "recording": recording,
            // Not the counts of motion or inferences: they would tell anyone on the
            // LAN when somebody is at the door.
            "detection": state.detector.as_ref().map(|d| json!({
                "running": d.running(),
                "model_errors": d.snapshot().model_errors,
            })),
            "setup_needed": state.accounts.setup_needed().unwrap_or(false),
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
