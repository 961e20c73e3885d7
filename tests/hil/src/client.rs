//! An HTTPS client for the device: hyper 1's connection API over the pinned TLS
//! stream, HTTP/1.1 or HTTP/2 as ALPN decides or as a test forces.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::Error;
use crate::auth::{self, Auth, SESSION_COOKIE, Session};
use crate::mjpeg::MjpegStream;
use crate::tls::{self, Fingerprint};

/// No API response is this large; a bigger one means the test is reading the wrong thing.
const MAX_BODY: usize = 32 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Which HTTP version to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// Offer `h2` and `http/1.1` and use what the server picks, as browsers do.
    Negotiate,
    Http1,
    Http2,
}

impl HttpVersion {
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Self::Negotiate => &[b"h2", b"http/1.1"],
            Self::Http1 => &[b"http/1.1"],
            Self::Http2 => &[b"h2"],
        }
    }
}

/// A whole response, body read to the end.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Protocol(format!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            ))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code` of a JSON error body (`""` if the body is not one).
    pub fn error_code(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// `error.message` of a JSON error body (`""` if the body is not one).
    pub fn error_message(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Every value of a header, e.g. all `Set-Cookie` lines.
    pub fn header_all(&self, name: impl header::AsHeaderName) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The `Set-Cookie` line that sets (or clears) the session cookie.
    pub fn session_set_cookie(&self) -> Option<auth::SetCookie> {
        self.header_all(header::SET_COOKIE)
            .into_iter()
            .filter_map(auth::SetCookie::parse)
            .find(|c| c.name == SESSION_COOKIE)
    }

    /// Panics, showing the body, unless the status is `expected`.
    #[track_caller]
    pub fn assert_status(&self, expected: StatusCode, what: &str) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "{what}: body {}",
            String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
        );
        self
    }

    /// Panics unless this is the JSON error `{"error": {"code": code, "message": ...}}`
    /// with status `expected` and a non-empty message.
    #[track_caller]
    pub fn assert_error(&self, expected: StatusCode, code: &str, what: &str) -> &Self {
        self.assert_status(expected, what);
        assert_eq!(
            self.error_code(),
            code,
            "{what}: error code; body {}",
            self.text()
        );
        assert!(
            !self.error_message().is_empty(),
            "{what}: an error says why; body {}",
            self.text()
        );
        assert!(
            self.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{what}: errors are JSON: {:?}",
            self.headers
        );
        self
    }

    /// Fails with the status and body unless the status is `expected`: for helpers
    /// that need a success to go on.
    pub fn expect_status(self, expected: StatusCode, what: &str) -> Result<Self, Error> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(Error::Protocol(format!(
                "{what}: expected {expected}, got {}: {}",
                self.status,
                self.text()
            )))
        }
    }
}

/// A request to send with [`Client::send`] or [`Connection::send`]: method, path,
/// extra headers and a body. Credentials of the client are added unless turned off;
/// for a cookie session, non-GET requests also get the `Origin` and `X-CSRF-Token`
/// a browser page would send, unless a test overrides them.
#[derive(Debug, Clone)]
pub struct Req {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, String)>,
    body: Bytes,
    credentials: bool,
    /// `None`: automatic; `Some(None)`: left out; `Some(Some(v))`: this value.
    csrf_token: Option<Option<String>>,
    origin: Option<Option<String>>,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            credentials: true,
            csrf_token: None,
            origin: None,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn patch(path: &str) -> Self {
        Self::new(Method::PATCH, path)
    }

    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body(value.to_string(), Some("application/json"))
    }

    /// A body as is, with the given content type (or none).
    pub fn body(mut self, body: impl Into<Bytes>, content_type: Option<&str>) -> Self {
        self.body = body.into();
        self.headers.retain(|(n, _)| n != header::CONTENT_TYPE);
        if let Some(ct) = content_type {
            self.headers.push((header::CONTENT_TYPE, ct.to_owned()));
        }
        self
    }

    /// An extra header (added after the automatic ones).
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Sends no credentials even if the client has some.
    pub fn without_credentials(mut self) -> Self {
        self.credentials = false;
        self
    }

    /// Leaves out the automatic `X-CSRF-Token` of a cookie session.
    pub fn without_csrf_token(mut self) -> Self {
        self.csrf_token = Some(None);
        self
    }

    /// Sends this `X-CSRF-Token` instead of the session's.
    pub fn csrf_token(mut self, token: &str) -> Self {
        self.csrf_token = Some(Some(token.to_owned()));
        self
    }

    /// Leaves out the automatic `Origin` of a cookie session.
    pub fn without_origin(mut self) -> Self {
        self.origin = Some(None);
        self
    }

    /// Sends this `Origin` (on any request, any credentials).
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(Some(origin.to_owned()));
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Connects to one device and trusts only its pinned certificate.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    /// `host:port` for `Host` and `:authority`.
    authority: String,
    pin: Fingerprint,
    timeout: Duration,
    auth: Auth,
}

impl Client {
    /// `host` is the name the device is addressed by (an IP or a DNS name).
    pub fn new(addr: SocketAddr, host: &str, fingerprint: &str) -> Result<Self, Error> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Protocol(format!("`{host}` is not a server name: {e}")))?;
        let authority = if host.contains(':') {
            format!("[{host}]:{}", addr.port())
        } else {
            format!("{host}:{}", addr.port())
        };
        Ok(Self {
            addr,
            server_name,
            authority,
            pin: fingerprint.parse()?,
            timeout: DEFAULT_TIMEOUT,
            auth: Auth::None,
        })
    }

    /// The same device with other credentials; every request (streams included)
    /// carries them.
    pub fn with_auth(&self, auth: Auth) -> Self {
        Self {
            auth,
            ..self.clone()
        }
    }

    /// Logged in with a session cookie and its CSRF token.
    pub fn with_session(&self, session: Session) -> Self {
        self.with_auth(Auth::Session(session))
    }

    /// `Authorization: Bearer TOKEN`.
    pub fn with_bearer(&self, token: &str) -> Self {
        self.with_auth(Auth::Bearer(token.to_owned()))
    }

    /// `Authorization: Basic` with this user and password (or an API token as password).
    pub fn with_basic(&self, user: &str, password: &str) -> Self {
        self.with_auth(Auth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The same device without credentials.
    pub fn anonymous(&self) -> Self {
        self.with_auth(Auth::None)
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The cookie session, if this client has one.
    pub fn session(&self) -> Option<&Session> {
        match &self.auth {
            Auth::Session(s) => Some(s),
            _ => None,
        }
    }

    /// The credential header lines (`Cookie: ...\r\n` or `Authorization: ...\r\n`)
    /// for hand-written requests on [`Client::raw`]; empty without credentials.
    pub fn credential_header_lines(&self) -> String {
        self.auth
            .header()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .unwrap_or_default()
    }

    /// The `Origin` a page served by this device would send.
    pub fn origin(&self) -> String {
        format!("https://{}", self.authority)
    }

    /// How long a request (or the next stream frame) may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Opens a connection that can carry several requests.
    pub async fn connect(&self, version: HttpVersion) -> Result<Connection, Error> {
        let io = self.tls(version, None).await?;
        let alpn = io.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let h2 = match version {
            HttpVersion::Negotiate => alpn.as_deref() == Some(b"h2"),
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
        };
        let sender = self.within("HTTP handshake", handshake(io, h2)).await??;
        Ok(Connection {
            sender,
            alpn,
            authority: self.authority.clone(),
            timeout: self.timeout,
            auth: self.auth.clone(),
        })
    }

    /// `GET path` on a fresh connection, ALPN deciding the version.
    pub async fn get(&self, path: &str) -> Result<Response, Error> {
        self.request(Method::GET, path).await
    }

    pub async fn request(&self, method: Method, path: &str) -> Result<Response, Error> {
        self.send(Req::new(method, path)).await
    }

    /// Sends `req` on a fresh connection, ALPN deciding the version.
    pub async fn send(&self, req: Req) -> Result<Response, Error> {
        self.connect(HttpVersion::Negotiate).await?.send(req).await
    }

    /// `POST path` with a JSON body.
    ///
    /// The future borrows only the client, so a closure may build the body and return it.
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<Response, Error>> + use<'_> {
        self.send(Req::post(path).json(body))
    }

    /// `PATCH path` with a JSON body (the future borrows only the client).
    pub fn patch_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<Response, Error>> + use<'_> {
        self.send(Req::patch(path).json(body))
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Response, Error> {
        self.send(Req::delete(path)).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, Error> {
        self.get(path)
            .await?
            .expect_status(StatusCode::OK, &format!("GET {path}"))?
            .json()
    }

    /// `POST /api/v1/session` with these credentials, sent without the client's own.
    pub async fn try_login(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<Response, Error> {
        let mut body = serde_json::json!({ "username": username, "password": password });
        if let Some(code) = totp {
            body["totp"] = code.into();
        }
        self.send(
            Req::post("/api/v1/session")
                .json(&body)
                .without_credentials(),
        )
        .await
    }

    /// Logs in and returns a client with the new session; fails unless 200.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<Client, Error> {
        let res = self
            .try_login(username, password, totp)
            .await?
            .expect_status(StatusCode::OK, &format!("login as `{username}`"))?;
        Ok(self.with_session(Session::from_response(&res)?))
    }

    /// First-run setup (`POST /api/v1/setup`); fails unless 201. Returns the owner's
    /// logged-in client and the response body (with the recovery key).
    pub async fn setup(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(Client, serde_json::Value), Error> {
        let body = serde_json::json!({ "username": username, "password": password });
        let res = self
            .send(Req::post("/api/v1/setup").json(&body).without_credentials())
            .await?
            .expect_status(StatusCode::CREATED, "first-run setup")?;
        let session = Session::from_response(&res)?;
        Ok((self.with_session(session), res.json()?))
    }

    /// Creates an API token (`POST /api/v1/tokens`) and returns its secret.
    pub async fn create_token(&self, name: &str, scope: &str) -> Result<(String, u64), Error> {
        let res = self
            .post_json(
                "/api/v1/tokens",
                &serde_json::json!({ "name": name, "scope": scope }),
            )
            .await?
            .expect_status(StatusCode::CREATED, "token creation")?;
        let body = res.json()?;
        let token = body["token"]
            .as_str()
            .ok_or_else(|| Error::Protocol(format!("no `token` in {body}")))?;
        let id = body["id"]
            .as_u64()
            .or_else(|| body["id"].as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| Error::Protocol(format!("no numeric `id` in {body}")))?;
        Ok((token.to_owned(), id))
    }

    /// `GET /api/v1/health` as JSON; fails unless the status is 200.
    pub async fn health(&self) -> Result<serde_json::Value, Error> {
        let res = self.get("/api/v1/health").await?;
        if res.status != StatusCode::OK {
            return Err(Error::Protocol(format!("health answered {}", res.status)));
        }
        res.json()
    }

    /// Polls health until the camera reports `running`; returns that report.
    pub async fn wait_running(&self, timeout: Duration) -> Result<serde_json::Value, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let health = self.health().await?;
            if health["camera"]["state"] == "running" {
                return Ok(health);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "camera not running after {}s: {health}",
                    timeout.as_secs_f32()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts an MJPEG stream on its own connection.
    pub async fn mjpeg(&self, path: &str, version: HttpVersion) -> Result<MjpegStream, Error> {
        self.connect(version).await?.into_mjpeg(path).await
    }

    /// A bare TLS stream (ALPN `http/1.1`) for hand-written requests.
    pub async fn raw(&self) -> Result<TlsStream<TcpStream>, Error> {
        self.tls(HttpVersion::Http1, None).await
    }

    /// Like [`Client::raw`], with a small socket receive buffer: a client that stops
    /// reading then holds only this much, and the server feels the stall at once.
    pub async fn raw_with_receive_buffer(&self, bytes: u32) -> Result<TlsStream<TcpStream>, Error> {
        self.tls(HttpVersion::Http1, Some(bytes)).await
    }

    async fn tls(
        &self,
        version: HttpVersion,
        recv_buffer: Option<u32>,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let config = tls::client_config(self.pin, version.alpn())?;
        let connecting = tls::connect(self.addr, &self.server_name, config, recv_buffer);
        self.within("TLS connect", connecting).await?
    }

    async fn within<F: Future>(&self, what: &str, f: F) -> Result<F::Output, Error> {
        within(self.timeout, what, f).await
    }
}

/// One HTTP connection; HTTP/1.1 requests run one after another, HTTP/2 ones may overlap.
pub struct Connection {
    sender: Sender,
    alpn: Option<Vec<u8>>,
    authority: String,
    timeout: Duration,
    auth: Auth,
}

impl Connection {
    /// The protocol the server chose by ALPN, if any (`h2`, `http/1.1`).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    pub fn version(&self) -> Version {
        match self.sender {
            Sender::H1(_) => Version::HTTP_11,
            Sender::H2(_) => Version::HTTP_2,
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, Error> {
        self.request(Method::GET, path).await
    }

    pub async fn request(&mut self, method: Method, path: &str) -> Result<Response, Error> {
        self.send(Req::new(method, path)).await
    }

    /// Sends `req` on this connection and reads the whole response.
    pub async fn send(&mut self, req: Req) -> Result<Response, Error> {
        let what = format!("{} {}", req.method, req.path);
        let req = self.build(req)?;
        let sender = &mut self.sender;
        within(self.timeout, &what, async move {
            let res = sender.send(req).await?;
            collect(res).await
        })
        .await?
    }

    /// Requests `path` and returns the response as an MJPEG stream; the stream keeps
    /// this connection alive.
    pub async fn into_mjpeg(mut self, path: &str) -> Result<MjpegStream, Error> {
        let req = self.build(Req::get(path))?;
        let what = format!("GET {path}");
        let res = within(self.timeout, &what, self.sender.send(req)).await??;
        MjpegStream::new(res, self.timeout, self)
    }

    fn build(&self, spec: Req) -> Result<Request<Full<Bytes>>, Error> {
        let path = spec.path.as_str();
        let safe = spec.method == Method::GET || spec.method == Method::HEAD;
        let mut req = Request::builder().method(spec.method.clone());
        req = match self.sender {
            // HTTP/1.1 sends origin-form plus Host; HTTP/2 takes :authority from the URI.
            Sender::H1(_) => req.uri(path).header(header::HOST, &self.authority),
            Sender::H2(_) => req
                .uri(format!("https://{}{path}", self.authority))
                .version(Version::HTTP_2),
        };
        let session = match (&self.auth, spec.credentials) {
            (Auth::Session(s), true) => Some(s),
            _ => None,
        };
        if spec.credentials
            && let Some((name, value)) = self.auth.header()
        {
            req = req.header(name, value);
        }
        // What a page of this device sends on a state-changing request.
        let auto_origin =
            (session.is_some() && !safe).then(|| format!("https://{}", self.authority));
        if let Some(origin) = spec.origin.clone().unwrap_or(auto_origin) {
            req = req.header(header::ORIGIN, origin);
        }
        let auto_csrf = session.filter(|_| !safe).map(|s| s.csrf_token.clone());
        if let Some(token) = spec.csrf_token.clone().unwrap_or(auto_csrf) {
            req = req.header(auth::CSRF_HEADER, token);
        }
        for (name, value) in &spec.headers {
            req = req.header(name, value);
        }
        req.body(Full::new(spec.body))
            .map_err(|e| Error::Protocol(format!("cannot build a request for `{path}`: {e}")))
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<http::Response<Incoming>, Error> {
        Ok(match self {
            Self::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Self::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        })
    }
}

/// Runs the HTTP handshake and spawns the task that drives the connection.
async fn handshake<T>(io: T, h2: bool) -> Result<Sender, Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
        // The connection's end shows up as errors on its requests; nothing to do here.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        Ok(Sender::H1(handshake_h1(io).await?))
    }
}

async fn handshake_h1<T>(io: T) -> Result<http1::SendRequest<Full<Bytes>>, Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn collect(res: http::Response<Incoming>) -> Result<Response, Error> {
    let (parts, body) = res.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(e) => Error::Http(*e),
            Err(e) => Error::Protocol(format!("response body: {e}")),
        })?
        .to_bytes();
    Ok(Response {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

pub(crate) async fn within<F: Future>(
    timeout: Duration,
    what: &str,
    f: F,
) -> Result<F::Output, Error> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| Error::Timeout(format!("{what} took over {}s", timeout.as_secs_f32())))
}

/// `GET path` over plain HTTP/1.1, for the redirect port. `host` goes in `Host`.
pub async fn plain_http_get(addr: SocketAddr, host: &str, path: &str) -> Result<Response, Error> {
    within(DEFAULT_TIMEOUT, &format!("plain GET {path}"), async {
        let tcp = TcpStream::connect(addr).await?;
        let mut sender = handshake_h1(tcp).await?;
        let req = Request::get(path)
            .header(
                header::HOST,
                HeaderValue::from_str(host)
                    .map_err(|e| Error::Protocol(format!("bad Host `{host}`: {e}")))?,
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::Protocol(format!("cannot build a request for `{path}`: {e}")))?;
        let res = sender.send_request(req).await?;
        collect(res).await
    })
    .await?
}
