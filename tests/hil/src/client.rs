//! An HTTPS client for the device: hyper 1's connection API over the pinned TLS
//! stream, HTTP/1.1 or HTTP/2 as ALPN decides or as a test forces.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
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
        })
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
        })
    }

    /// `GET path` on a fresh connection, ALPN deciding the version.
    pub async fn get(&self, path: &str) -> Result<Response, Error> {
        self.request(Method::GET, path).await
    }

    pub async fn request(&self, method: Method, path: &str) -> Result<Response, Error> {
        self.connect(HttpVersion::Negotiate)
            .await?
            .request(method, path)
            .await
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
        let what = format!("{method} {path}");
        let req = self.build(method, path)?;
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
        let req = self.build(Method::GET, path)?;
        let what = format!("GET {path}");
        let res = within(self.timeout, &what, self.sender.send(req)).await??;
        MjpegStream::new(res, self.timeout, self)
    }

    fn build(&self, method: Method, path: &str) -> Result<Request<Full<Bytes>>, Error> {
        let mut req = Request::builder().method(method);
        req = match self.sender {
            // HTTP/1.1 sends origin-form plus Host; HTTP/2 takes :authority from the URI.
            Sender::H1(_) => req.uri(path).header(header::HOST, &self.authority),
            Sender::H2(_) => req
                .uri(format!("https://{}{path}", self.authority))
                .version(Version::HTTP_2),
        };
        req.body(Full::new(Bytes::new()))
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
