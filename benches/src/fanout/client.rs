//! An HTTPS client for the service under test: TLS with rustls (ring), trusting exactly
//! one certificate — the server's self-signed one, pinned by the SHA-256 fingerprint it
//! logged — and HTTP/1.1 with hyper, as a browser on the LAN would use it.

use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use mecam_hil::tls::{Fingerprint, client_config};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

pub struct Client {
    addr: SocketAddr,
    connector: TlsConnector,
}

/// A response whose connection stays open while its body is read.
pub struct Response {
    pub status: StatusCode,
    pub content_type: String,
    /// The TLS cipher suite the server chose, e.g. `TLS13_CHACHA20_POLY1305_SHA256`.
    pub cipher_suite: String,
    pub body: Incoming,
    _connection: AbortOnDrop,
}

impl Client {
    /// `fingerprint` is colon-separated hex, as the server logs it.
    pub fn new(addr: SocketAddr, fingerprint: &str) -> Result<Self> {
        let pin: Fingerprint = fingerprint
            .parse()
            .with_context(|| format!("server fingerprint `{fingerprint}`"))?;
        let config = client_config(pin, &[b"http/1.1"]).context("TLS client configuration")?;
        Ok(Self {
            addr,
            connector: TlsConnector::from(config),
        })
    }

    /// Opens a new connection and sends `GET path`. Must run inside a Tokio runtime;
    /// dropping the response closes the connection.
    pub async fn get(&self, path: &str) -> Result<Response> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("mecam.local").expect("a valid DNS name");
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let cipher_suite = tls
            .get_ref()
            .1
            .negotiated_cipher_suite()
            .map_or_else(|| "none".into(), |s| format!("{:?}", s.suite()));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .context("HTTP/1.1 handshake")?;
        let connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let request = Request::get(path)
            .header(header::HOST, "mecam.local")
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("GET {path}"))?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Response {
            status: response.status(),
            content_type,
            cipher_suite,
            body: response.into_body(),
            _connection: connection,
        })
    }

    /// `GET path` and parse the body as JSON; anything but 200 is an error.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let response = self.get(path).await?;
        let status = response.status;
        let body = response
            .body
            .collect()
            .await
            .with_context(|| format!("reading the body of {path}"))?
            .to_bytes();
        ensure!(
            status == StatusCode::OK,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).with_context(|| format!("{path} is not JSON"))
    }
}

/// Ends the task driving a connection when the response that needs it is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
