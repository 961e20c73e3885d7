//! TLS pinned to one certificate: the client trusts exactly the certificate whose
//! SHA-256 fingerprint the device logged, and nothing else, not even a valid CA chain.
//! That is how an owner is told to check their camera's self-signed certificate.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Error;

/// A SHA-256 certificate fingerprint, written as colon-separated hex (`2F:1A:…`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts either case, with or without colons, since people paste these.
    fn from_str(s: &str) -> Result<Self, Error> {
        let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
        let bad = || {
            Error::Protocol(format!(
                "`{s}` is not a SHA-256 fingerprint (64 hex digits)"
            ))
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Accepts the one certificate with the pinned fingerprint. Handshake signatures are
/// still checked (with the ring provider's algorithms), so a peer must hold the
/// certificate's private key, not merely replay the certificate.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity.as_ref());
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    expected: self.pin,
                    seen,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate a server presented is not the pinned one.
#[derive(Debug)]
pub struct PinMismatch {
    pub expected: Fingerprint,
    pub seen: Fingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server certificate {} is not the pinned {}",
            self.seen, self.expected
        )
    }
}

impl std::error::Error for PinMismatch {}

/// A client configuration that trusts only `pin` and offers `alpn`.
pub fn client_config(pin: Fingerprint, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        pin,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Opens TCP and completes a TLS handshake. `recv_buffer` shrinks the socket's
/// receive buffer (before connecting, so the advertised window is small too): a
/// client that stops reading then backs up onto the server within one frame.
pub async fn connect(
    addr: SocketAddr,
    server_name: &ServerName<'static>,
    config: Arc<ClientConfig>,
    recv_buffer: Option<u32>,
) -> Result<TlsStream<TcpStream>, Error> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(config)
        .connect(server_name.clone(), tcp)
        .await?;
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_print_as_colon_hex() {
        let fp = Fingerprint::of(b"abc");
        let text = fp.to_string();
        assert!(text.starts_with("BA:78:16:BF:"), "{text}");
        assert_eq!(text.parse::<Fingerprint>().ok(), Some(fp));
        assert_eq!(
            text.replace(':', "")
                .to_lowercase()
                .parse::<Fingerprint>()
                .ok(),
            Some(fp)
        );
        assert!("BA:78".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn only_the_pinned_certificate_is_accepted() {
        let verifier = PinnedCertificate {
            pin: Fingerprint::of(b"the device"),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        let check = |der: &'static [u8]| {
            verifier.verify_server_cert(
                &CertificateDer::from(der),
                &[],
                &ServerName::try_from("mecam.local").expect("valid name"),
                &[],
                UnixTime::now(),
            )
        };
        assert!(check(b"the device").is_ok());
        let err = check(b"an impostor").expect_err("a different certificate must be refused");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::Other(_))
            ),
            "{err}"
        );
    }
}
