//! One POST to the webhook's URL over a fresh connection (plain TCP or TLS).
//!
//! hyper's connection-level client rather than a pooled one: a camera sends a few
//! notifications a minute, so keeping connections open buys nothing, and a fresh
//! connection per attempt means a receiver that restarted is simply reached again.
//! The connection is driven inside the request's own future (no spawned task), so a
//! timeout or a dropped notifier ends it at once and nothing here needs `Send`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::retry::parse_retry_after;

/// Where Debian (and Buildroot's `ca-certificates` package) keep the trusted CAs.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL `{url}` cannot be used: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "an https:// webhook needs the trusted CA certificates in {path}: {reason}; install the \
         `ca-certificates` package, or use an http:// URL for a receiver on the LAN"
    )]
    CaBundle { path: String, reason: String },
    #[error("cannot set up TLS for webhooks: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why one attempt did not get an answer (or got one that is not a success).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "cannot connect to {origin}: {source} (is the receiver running and reachable from the camera?)"
    )]
    Connect { origin: String, source: io::Error },
    #[error(
        "TLS with {origin} failed: {source} (an https:// receiver needs a certificate that the \
         system's CA bundle trusts, for the host name in the URL)"
    )]
    Tls { origin: String, source: io::Error },
    #[error("HTTP exchange with {origin} failed: {source}")]
    Http {
        origin: String,
        source: hyper::Error,
    },
    #[error("{origin} did not answer within {after:?} (`timeout_secs`)")]
    Timeout { origin: String, after: Duration },
    #[error("{origin} answered HTTP {status}")]
    Status { origin: String, status: u16 },
}

/// The status of an answer, and how long the receiver asked us to wait if it did.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
}

/// A parsed webhook URL, ready to connect to.
pub struct Target {
    /// `scheme://authority` without path or query: those often carry the receiver's
    /// secret (Home Assistant's webhook id is one), so logs show only this.
    pub origin: String,
    host: String,
    port: u16,
    host_header: HeaderValue,
    path: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// `roots` are the CAs an https:// receiver's certificate must chain to; `None`
    /// reads the system bundle (only for https:// URLs).
    pub fn parse(url: &str, roots: Option<RootCertStore>) -> Result<Self, WebhookError> {
        let bad = |reason: &str| WebhookError::Url {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("only http:// and https:// URLs are supported")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("it has no host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(bad(
                "user names and passwords in the URL are not supported; receivers check the \
                 X-MeCam-Signature header instead",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|e| bad(&e.to_string()))?;
        let scheme = if https { "https" } else { "http" };
        let tls = if https {
            let roots = match roots {
                Some(roots) => roots,
                None => system_roots(Path::new(SYSTEM_CA_BUNDLE))?,
            };
            let name = ServerName::try_from(host.clone())
                .map_err(|_| bad("its host is not a valid name for a TLS certificate"))?;
            Some((TlsConnector::from(tls_config(roots)?), name))
        } else {
            None
        };
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            host,
            port,
            host_header,
            path,
            tls,
        })
    }

    /// Connects, sends `body` with `headers` (plus `Host`), and reads the status line
    /// and headers of the answer. The answer's body is not read: nothing in it matters.
    /// No timeout here: the caller bounds the whole attempt.
    pub async fn post(&self, mut headers: HeaderMap, body: Bytes) -> Result<Reply, DeliveryError> {
        headers.insert(HOST, self.host_header.clone());
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = headers;

        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| DeliveryError::Connect {
                origin: self.origin.clone(),
                source,
            })?;
        // One small request: send it now rather than wait for more data (Nagle).
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(TokioIo::new(tcp), request).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| DeliveryError::Tls {
                        origin: self.origin.clone(),
                        source,
                    })?;
                self.exchange(TokioIo::new(tls), request).await
            }
        }
    }

    async fn exchange<IO>(
        &self,
        io: IO,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, DeliveryError>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin,
    {
        let http = |source| DeliveryError::Http {
            origin: self.origin.clone(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(http)?;
        let mut conn = std::pin::pin!(conn);
        let mut response = std::pin::pin!(sender.send_request(request));
        let response = tokio::select! {
            biased;
            r = &mut response => r.map_err(http)?,
            // The connection ended first: if it ended cleanly the answer is already
            // queued for `response`; if not, that is the error to report.
            c = &mut conn => {
                c.map_err(http)?;
                response.await.map_err(http)?
            }
        };
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        Ok(Reply {
            status: response.status(),
            retry_after,
        })
    }
}

/// rustls with the ring provider, ChaCha20-Poly1305 offered first (the Pi has no AES
/// instructions), HTTP/1.1 by ALPN.
fn tls_config(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| !format!("{:?}", s.suite()).contains("CHACHA20"));
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CAs in a PEM bundle. Read once at start: nothing is read per notification.
pub fn system_roots(path: &Path) -> Result<RootCertStore, WebhookError> {
    let fail = |reason: String| WebhookError::CaBundle {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail("it holds no usable certificate".into()));
    }
    Ok(roots)
}

/// The URL as logs and errors may show it: scheme and authority only.
pub fn redact(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                let host = authority.as_str().rsplit('@').next().unwrap_or("");
                format!("{scheme}://{host}/…")
            }
            _ => "<not a URL>".into(),
        },
        Err(_) => "<not a URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match Target::parse(url, Some(RootCertStore::empty())) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn urls_are_parsed_into_host_port_and_path() {
        let t = Target::parse("http://example.lan:8123/api/webhook/secret-id?x=1", None).unwrap();
        assert_eq!(t.origin, "http://example.lan:8123");
        assert_eq!((t.host.as_str(), t.port), ("example.lan", 8123));
        assert_eq!(t.path, "/api/webhook/secret-id?x=1");
        assert_eq!(t.host_header, "example.lan:8123");
        let t = Target::parse("HTTP://[::1]", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.path, "/");
        let t = Target::parse("https://10.0.0.2/hook", Some(RootCertStore::empty())).unwrap();
        assert_eq!(t.port, 443);
        assert!(t.tls.is_some());
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason_and_without_their_secret_path() {
        assert!(refused("ftp://example.lan/x").contains("only http:// and https://"));
        assert!(refused("/just/a/path").contains("only http:// and https://"));
        let e = refused("http://user:pw@example.lan/secret-id");
        assert!(e.contains("passwords in the URL are not supported"), "{e}");
        assert!(!e.contains("pw") && !e.contains("secret-id"), "{e}");
    }

    #[test]
    fn a_missing_ca_bundle_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let e = system_roots(&dir.path().join("none.crt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca-certificates"), "{e}");
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = system_roots(&empty).unwrap_err().to_string();
        assert!(e.contains("no usable certificate"), "{e}");
    }

    #[test]
    fn the_system_bundle_loads_where_it_exists() {
        let path = Path::new(SYSTEM_CA_BUNDLE);
        if !path.exists() {
            eprintln!("skipped: no {SYSTEM_CA_BUNDLE} on this machine");
            return;
        }
        assert!(!system_roots(path).unwrap().is_empty());
    }
}
