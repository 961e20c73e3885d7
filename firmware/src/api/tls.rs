//! The HTTPS identity: a self-signed certificate made on first start and reused.
//!
//! Browsers will warn about it; the SHA-256 fingerprint is logged (and shown by the
//! UI later) so a careful owner can check they are talking to their own camera.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::runtime;

pub const CERT_FILE: &str = "tls/cert.pem";
pub const KEY_FILE: &str = "tls/key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write the TLS certificate {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the TLS certificate or key is unusable: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct TlsIdentity {
    pub config: Arc<ServerConfig>,
    /// Colon-separated upper-case hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
}

/// Loads the certificate from `data_dir`, or creates one if there is none.
///
/// A certificate that exists but cannot be read is moved aside (`*.corrupt`) and
/// replaced, so a damaged file never keeps the camera from starting; nothing is deleted.
pub async fn load_or_create(data_dir: &Path, listen: SocketAddr) -> Result<TlsIdentity, TlsError> {
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    if cert_path.exists() || key_path.exists() {
        // Unreadable PEM, damaged DER and a key that does not match the certificate
        // all end the same way: the pair is kept aside and replaced.
        let loaded = read_pair(&cert_path, &key_path)
            .and_then(|(cert, key)| identity(cert, key).map_err(|e| e.to_string()));
        match loaded {
            Ok(identity) => return Ok(identity),
            Err(problem) => {
                tracing::warn!(
                    "TLS certificate in {} is unreadable ({problem}); keeping it as *.corrupt and making a new one",
                    cert_path.parent().unwrap_or(data_dir).display()
                );
                for p in [&cert_path, &key_path] {
                    let _ = std::fs::rename(p, p.with_extension("pem.corrupt"));
                }
            }
        }
    }
    let (cert_pem, key_pem) = generate(listen)?;
    let dir = cert_path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    // Key first: a crash between the two writes leaves a key without a certificate,
    // which the next start treats as unreadable and replaces.
    for (path, pem, mode) in [(&key_path, &key_pem, 0o600), (&cert_path, &cert_pem, 0o644)] {
        runtime::write_file_atomic(path, pem.clone().into_bytes(), mode)
            .await
            .map_err(|source| TlsError::Write {
                path: path.clone(),
                source,
            })?;
    }
    tracing::info!("created a self-signed TLS certificate in {}", dir.display());
    let (cert, key) = read_pair(&cert_path, &key_path).map_err(|e| {
        TlsError::Rustls(rustls::Error::General(format!(
            "freshly written certificate cannot be read back: {e}"
        )))
    })?;
    identity(cert, key)
}

fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
    let cert = CertificateDer::pem_file_iter(cert)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no certificate in file")?
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
    Ok((cert, key))
}

/// Names the certificate covers: the appliance's mDNS name, loopback, and the listen
/// address (or every interface address when listening on all of them).
fn subject_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["mecam.local".to_owned(), "mecam".into(), "localhost".into()];
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    if listen.ip().is_unspecified() {
        ips.extend(interface_addresses());
    } else {
        ips.push(listen.ip());
    }
    ips.sort();
    ips.dedup();
    names.extend(ips.into_iter().map(|ip| ip.to_string()));
    names
}

fn generate(listen: SocketAddr) -> Result<(String, String), TlsError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(subject_names(listen))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mecam.local");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "ME_CAM appliance");
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn identity(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsIdentity, TlsError> {
    let fingerprint = fingerprint(&cert);
    let config = server_config(cert, key)?;
    Ok(TlsIdentity {
        config: Arc::new(config),
        fingerprint,
    })
}

/// rustls with the ring provider, ChaCha20-Poly1305 first and the server's order
/// winning: the Pi's Cortex-A53 has no AES instructions, so AES-GCM would cost it
/// several times more CPU per streamed byte than ChaCha20.
fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut provider: CryptoProvider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        let name = format!("{:?}", s.suite());
        !name.contains("CHACHA20")
    });
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Addresses of this host's interfaces (up or not), without link-local IPv6 scopes.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        if sin6.sin6_scope_id == 0 {
                            out.push(ip.into());
                        }
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_mdns_loopback_and_the_listen_address() {
        let names = subject_names("192.168.1.20:443".parse().unwrap());
        for n in ["mecam.local", "localhost", "127.0.0.1", "192.168.1.20"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let all = subject_names("0.0.0.0:443".parse().unwrap());
        assert!(all.iter().any(|x| x == "127.0.0.1"));
        assert!(!all.iter().any(|x| x == "0.0.0.0"));
    }

    #[test]
    fn chacha20_is_preferred() {
        let (cert, key) = generate("127.0.0.1:0".parse().unwrap()).unwrap();
        let cert = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = server_config(cert, key).unwrap();
        let first = format!("{:?}", config.crypto_provider().cipher_suites[0].suite());
        assert!(first.contains("CHACHA20"), "{first}");
        assert!(config.ignore_client_order);
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        let fp = fingerprint(&CertificateDer::from(b"abc".to_vec()));
        assert_eq!(
            fp,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
