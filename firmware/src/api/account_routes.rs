//! The accounts endpoints: setup, session (login/logout), users, passwords, TOTP,
//! API tokens and the audit log. The contract is in `docs/api.md`.

use std::net::IpAddr;
use std::rc::Rc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Principal, Via};
use super::body::{self, ResponseBody};
use super::credentials::{clear_session_cookie, set_session_cookie};
use super::json::{MAX_JSON_BODY, read_json};
use super::routes::{error, json_response, method_not_allowed};
use crate::accounts::{AccessError, AuditFilter, NewSession, Origin};
use crate::auth::{Action, Password, Role};
use crate::store::{ApiToken, AuditEntry, User};

/// The paths this module serves once the caller is authenticated.
pub fn owns(path: &str) -> bool {
    path == "/api/v1/session"
        || path == "/api/v1/users"
        || path.starts_with("/api/v1/users/")
        || path == "/api/v1/tokens"
        || path.starts_with("/api/v1/tokens/")
        || path == "/api/v1/audit"
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: Password,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: Password,
    #[serde(default)]
    totp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: Password,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnPassword {
    current_password: Password,
    new_password: Password,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetPassword {
    new_password: Password,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    scope: Role,
}

fn origin(ip: IpAddr, req: &Request<Incoming>) -> Origin {
    Origin {
        ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    }
}

macro_rules! body {
    ($req:expr) => {
        match read_json($req, MAX_JSON_BODY).await {
            Ok(v) => v,
            Err(rejection) => return rejection.into_response(),
        }
    };
}

macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return access_error(e, false),
        }
    };
}

macro_rules! require {
    ($principal:expr, $action:expr) => {
        if let Err(res) = $principal.require($action) {
            return res;
        }
    };
}

/// `GET|POST /api/v1/setup`: open to everyone on the LAN until the first account
/// exists.
pub async fn setup(
    state: &Rc<AppState>,
    ip: IpAddr,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            let needed = attempt!(state.accounts.setup_needed());
            json_response(StatusCode::OK, &json!({ "needed": needed }))
        }
        Method::POST => {
            let from = origin(ip, &req);
            let body: Credentials = body!(req);
            let done = attempt!(
                state
                    .accounts
                    .setup(body.username, body.password, from)
                    .await
            );
            state.events.set_sealing_key(done.sealing_key.clone());
            if let Err(e) = state.recording.enable(done.sealing_key) {
                tracing::error!("recording did not start after setup: {e}");
            }
            let mut res = session_response(
                StatusCode::CREATED,
                &done.session,
                json!({ "recovery_key": done.recovery_key.as_str() }),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        _ => method_not_allowed(req.method(), "/api/v1/setup", "GET, HEAD, POST"),
    }
}

/// `POST /api/v1/session`: a password login.
pub async fn login(
    state: &Rc<AppState>,
    ip: IpAddr,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let from = origin(ip, &req);
    let body: Login = body!(req);
    let session = attempt!(
        state
            .accounts
            .login(body.username, body.password, body.totp, from)
            .await
    );
    session_response(StatusCode::OK, &session, json!({}))
}

/// Everything in [`owns`], for an authenticated caller.
pub async fn handle(
    state: &Rc<AppState>,
    principal: &Principal,
    ip: IpAddr,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    let accounts = &state.accounts;
    let method = req.method().clone();
    match (segments.as_slice(), &method) {
        (["session"], &Method::GET | &Method::HEAD) => who_am_i(state, principal),
        (["session"], &Method::DELETE) => {
            attempt!(accounts.logout(principal, ip).await);
            let mut res = no_content();
            set_cookie(&mut res, &clear_session_cookie());
            res
        }
        (["session"], _) => method_not_allowed(&method, &path, "GET, HEAD, DELETE"),

        (["users"], &Method::GET | &Method::HEAD) => {
            require!(principal, Action::ManageUsers);
            let users = attempt!(accounts.users());
            let users: Vec<Value> = users.iter().map(user_json).collect();
            json_response(StatusCode::OK, &json!({ "users": users }))
        }
        (["users"], &Method::POST) => {
            require!(principal, Action::ManageUsers);
            let body: NewUserBody = body!(req);
            let user = attempt!(
                accounts
                    .create_user(principal, ip, body.username, body.password, body.role)
                    .await
            );
            json_response(StatusCode::CREATED, &json!({ "user": user_json(&user) }))
        }
        (["users"], _) => method_not_allowed(&method, &path, "GET, HEAD, POST"),

        (["users", "me", "password"], &Method::POST) => {
            require!(principal, Action::ManageOwnAccount);
            let body: OwnPassword = body!(req);
            attempt!(
                accounts
                    .change_own_password(principal, ip, body.current_password, body.new_password)
                    .await
            );
            no_content()
        }
        (["users", "me", "totp"], &Method::POST) => {
            require!(principal, Action::ManageOwnAccount);
            if !matches!(principal.via, Via::Session(_)) {
                return access_error(
                    AccessError::Forbidden("enrol TOTP from a logged-in session".into()),
                    false,
                );
            }
            let enrolment = attempt!(accounts.begin_totp(principal));
            json_response(
                StatusCode::OK,
                &json!({
                    "secret": enrolment.secret_base32.as_str(),
                    "uri": enrolment.uri.as_str(),
                }),
            )
        }
        (["users", "me", "totp", "confirm"], &Method::POST) => {
            require!(principal, Action::ManageOwnAccount);
            let body: TotpCode = body!(req);
            let codes = attempt!(accounts.confirm_totp(principal, ip, body.code).await);
            let codes: Vec<&str> = codes.iter().map(|c| c.expose()).collect();
            json_response(StatusCode::OK, &json!({ "recovery_codes": codes }))
        }
        (["users", name, "totp"], &Method::DELETE) => {
            let target = if *name == "me" {
                require!(principal, Action::ManageOwnAccount);
                principal.username.clone()
            } else {
                require!(principal, Action::ManageUsers);
                decode_segment(name)
            };
            attempt!(accounts.disable_totp(principal, ip, target).await);
            no_content()
        }
        (["users", name, "password"], &Method::POST) if *name != "me" => {
            require!(principal, Action::ManageUsers);
            let body: ResetPassword = body!(req);
            attempt!(
                accounts
                    .reset_password(principal, ip, decode_segment(name), body.new_password)
                    .await
            );
            no_content()
        }
        (["users", name], &Method::PATCH) if *name != "me" => {
            require!(principal, Action::ManageUsers);
            let body: UserPatch = body!(req);
            let user = attempt!(
                accounts
                    .update_user(
                        principal,
                        ip,
                        decode_segment(name),
                        body.role,
                        body.disabled
                    )
                    .await
            );
            json_response(StatusCode::OK, &json!({ "user": user_json(&user) }))
        }
        (["users", name], &Method::DELETE) if *name != "me" => {
            require!(principal, Action::ManageUsers);
            attempt!(
                accounts
                    .delete_user(principal, ip, decode_segment(name))
                    .await
            );
            no_content()
        }
        (["users", ..], _) => not_found(&path),

        (["tokens"], &Method::GET | &Method::HEAD) => {
            require!(principal, Action::ManageTokens);
            let tokens = attempt!(accounts.tokens());
            let users = attempt!(accounts.users());
            let tokens: Vec<Value> = tokens.iter().map(|t| token_json(t, &users)).collect();
            json_response(StatusCode::OK, &json!({ "tokens": tokens }))
        }
        (["tokens"], &Method::POST) => {
            require!(principal, Action::ManageTokens);
            let body: NewTokenBody = body!(req);
            let created = attempt!(
                accounts
                    .create_token(principal, ip, body.name, body.scope)
                    .await
            );
            json_response(
                StatusCode::CREATED,
                &json!({
                    "id": created.row.id,
                    "name": created.row.name,
                    "scope": created.row.scope,
                    "token": created.token.expose(),
                }),
            )
        }
        (["tokens"], _) => method_not_allowed(&method, &path, "GET, HEAD, POST"),
        (["tokens", id], &Method::DELETE) => {
            require!(principal, Action::ManageTokens);
            let Ok(id) = id.parse::<u64>() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no API token with id `{id}`"),
                );
            };
            attempt!(accounts.revoke_token(principal, ip, id).await);
            no_content()
        }
        (["tokens", _], _) => method_not_allowed(&method, &path, "DELETE"),

        (["audit"], &Method::GET | &Method::HEAD) => {
            require!(principal, Action::ReadAudit);
            let filter = match audit_filter(req.uri().query()) {
                Ok(f) => f,
                Err(problem) => return error(StatusCode::BAD_REQUEST, "bad_query", problem),
            };
            let limit = filter.limit;
            let page = attempt!(accounts.audit(filter).await);
            let next_cursor = (page.entries.len() == limit)
                .then(|| page.entries.last().map(|e| e.seq))
                .flatten();
            let chain = match &page.chain {
                Ok(summary) => json!({ "ok": true, "entries": summary.entries }),
                Err(tamper) => {
                    json!({ "ok": false, "seq": tamper.seq, "problem": tamper.to_string() })
                }
            };
            let entries: Vec<Value> = page.entries.iter().map(audit_json).collect();
            json_response(
                StatusCode::OK,
                &json!({ "entries": entries, "next_cursor": next_cursor, "chain": chain }),
            )
        }
        (["audit"], _) => method_not_allowed(&method, &path, "GET, HEAD"),
        _ => not_found(&path),
    }
}

fn who_am_i(state: &AppState, principal: &Principal) -> Response<ResponseBody> {
    let (via, csrf) = match &principal.via {
        Via::Session(hash) => ("session", Some(state.accounts.csrf_token(hash))),
        Via::ApiToken(_) => ("token", None),
        Via::Basic => ("basic", None),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "user": { "username": principal.username, "role": principal.role },
            "via": via,
            "csrf_token": csrf,
            "vault_unlocked": principal.vault.is_some(),
        }),
    )
}

/// The answer to a login or setup: the cookie, and the CSRF token in the JSON.
fn session_response(
    status: StatusCode,
    session: &NewSession,
    extra: Value,
) -> Response<ResponseBody> {
    let mut body = json!({
        "user": { "username": session.user.username, "role": session.user.role },
        "csrf_token": session.csrf_token,
        "expires": rfc3339(session.expires_us),
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut res = json_response(status, &body);
    set_cookie(
        &mut res,
        &set_session_cookie(session.token.expose(), session.max_age_secs),
    );
    res
}

fn set_cookie(res: &mut Response<ResponseBody>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
}

/// Maps a refusal to its HTTP answer. `basic_challenge` adds `WWW-Authenticate` to a
/// 401, for the endpoints camera clients fetch with Basic.
pub fn access_error(e: AccessError, basic_challenge: bool) -> Response<ResponseBody> {
    let (status, code) = match &e {
        AccessError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        AccessError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        AccessError::TotpRequired => (StatusCode::UNAUTHORIZED, "totp_required"),
        AccessError::TotpInvalid => (StatusCode::UNAUTHORIZED, "totp_invalid"),
        AccessError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        AccessError::AlreadySetUp => (StatusCode::CONFLICT, "already_set_up"),
        AccessError::SetupNotLocal => (StatusCode::FORBIDDEN, "setup_not_local"),
        AccessError::WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
        AccessError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        AccessError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        AccessError::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
        AccessError::LastAdmin(_) => (StatusCode::CONFLICT, "last_admin"),
        AccessError::Invalid { field, .. } if *field == "username" => {
            (StatusCode::BAD_REQUEST, "bad_username")
        }
        AccessError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        AccessError::Internal(detail) => {
            tracing::error!("request failed: {detail}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the device could not complete this; see its log",
            );
        }
    };
    let mut res = error(status, code, e.to_string());
    let h = res.headers_mut();
    if let AccessError::TooManyAttempts(retry) = &e
        && let Ok(v) = HeaderValue::from_str(&retry.secs().max(1).to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    if basic_challenge && status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ME_CAM\", charset=\"UTF-8\""),
        );
    }
    res
}

fn no_content() -> Response<ResponseBody> {
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

fn not_found(path: &str) -> Response<ResponseBody> {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {path}"),
    )
}

/// A user name from a path segment (percent-decoded UTF-8; left as is if invalid).
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "totp": user.totp.is_some(),
        "disabled": user.disabled,
        "created": rfc3339(user.created_us),
    })
}

fn token_json(token: &ApiToken, users: &[User]) -> Value {
    let owner = users
        .iter()
        .find(|u| u.id == token.user_id)
        .map(|u| u.username.as_str());
    json!({
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "owner": owner,
        "created": rfc3339(token.created_us),
        "last_used": token.last_used_us.map(rfc3339),
        "revoked": token.revoked,
    })
}

fn audit_json(entry: &AuditEntry) -> Value {
    json!({
        "seq": entry.seq,
        "time": rfc3339(entry.time_us),
        "actor": { "user": entry.actor.user, "addr": entry.actor.addr },
        "action": entry.action,
        "details": entry.details,
    })
}

/// Default and largest page of the audit log.
const AUDIT_PAGE: usize = 100;
const AUDIT_PAGE_MAX: usize = 1000;

fn audit_filter(query: Option<&str>) -> Result<AuditFilter, String> {
    let mut filter = AuditFilter {
        limit: AUDIT_PAGE,
        ..Default::default()
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode_segment(&v.replace('+', " "));
        let number = |name: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{name}` must be a whole number, not `{v}`"))
        };
        match k {
            "limit" => {
                let n = number("limit")?;
                if n == 0 || n as usize > AUDIT_PAGE_MAX {
                    return Err(format!("`limit` must be 1 to {AUDIT_PAGE_MAX}"));
                }
                filter.limit = n as usize;
            }
            "cursor" => filter.cursor = Some(number("cursor")?),
            "action" => filter.action = Some(v),
            "user" => filter.user = Some(v),
            "from" => filter.from_us = Some(parse_time("from", &v)?),
            "to" => filter.to_us = Some(parse_time("to", &v)?),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`; allowed: limit, cursor, action, user, from, to"
                ));
            }
        }
    }
    Ok(filter)
}

fn parse_time(name: &str, v: &str) -> Result<u64, String> {
    crate::api::time::parse_rfc3339(v)
        .ok_or_else(|| format!("`{name}` must be an RFC 3339 time such as 2026-01-31T08:00:00Z"))
}

fn rfc3339(us: u64) -> String {
    crate::api::time::format_rfc3339(us)
}
