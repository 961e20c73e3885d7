//! The device's HTTPS identity: made once, kept across restarts (so phones that
//! accepted it keep trusting it), and never a reason not to start.

use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use mecam_hil::{Client, Device, Error, Fingerprint, skip_if_remote};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const ARGS: &[&str] = &["--size", "160x120", "--fps", "5"];

fn cert_file(data: &Path) -> std::path::PathBuf {
    data.join("tls/cert.pem")
}

async fn assert_serves(device: &Device) {
    let res = device
        .client()
        .unwrap()
        .get("/api/v1/health")
        .await
        .unwrap();
    assert_eq!(res.status, StatusCode::OK);
}

/// Only stop a device that has answered: the service installs its signal handlers just
/// after logging its address, and a SIGTERM in that instant kills it outright.
fn stop(mut device: Device) {
    let (status, _) = device.stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_reused_across_restarts() {
    if skip_if_remote(
        "the_certificate_is_reused_across_restarts",
        "it restarts the service",
    ) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let first = Device::launch_in(data.path(), ARGS).expect("first start");
    assert_serves(&first).await;
    let fingerprint = first.fingerprint().to_owned();

    // The logged fingerprint is that of the certificate on disk.
    let pem = std::fs::read(cert_file(data.path())).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).expect("tls/cert.pem holds a certificate");
    assert_eq!(
        Fingerprint::of(der.as_ref()),
        fingerprint.parse::<Fingerprint>().unwrap()
    );
    stop(first);

    let second = Device::launch_in(data.path(), ARGS).expect("second start");
    assert_eq!(
        second.fingerprint(),
        fingerprint,
        "a restart must keep the certificate"
    );
    assert_serves(&second).await;
    assert_eq!(std::fs::read(cert_file(data.path())).unwrap(), pem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_certificate_is_replaced_and_kept_aside() {
    replaces_a_damaged_certificate(
        "a_corrupted_certificate_is_replaced_and_kept_aside",
        b"\x00\x17 this is not a certificate \xff\xfe",
    )
    .await;
}

/// The likelier damage on an SD card: the PEM armour survives, its contents do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_damaged_contents_is_replaced_and_kept_aside() {
    replaces_a_damaged_certificate(
        "a_certificate_with_damaged_contents_is_replaced_and_kept_aside",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .await;
}

async fn replaces_a_damaged_certificate(test: &str, damaged: &[u8]) {
    if skip_if_remote(test, "it damages the service's data directory") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let first = Device::launch_in(data.path(), ARGS).expect("first start");
    let old = first.fingerprint().to_owned();
    assert_serves(&first).await;
    stop(first);

    std::fs::write(cert_file(data.path()), damaged).unwrap();

    let second = Device::launch_in(data.path(), ARGS).expect("starts despite the damaged file");
    assert_ne!(
        second.fingerprint(),
        old,
        "a new certificate should be made"
    );
    assert_serves(&second).await;

    let kept = std::fs::read(data.path().join("tls/cert.pem.corrupt"))
        .expect("the damaged file is kept as tls/cert.pem.corrupt");
    assert_eq!(kept, damaged);
    let replaced = std::fs::read(cert_file(data.path())).unwrap();
    let der =
        CertificateDer::from_pem_slice(&replaced).expect("tls/cert.pem holds the new certificate");
    assert_eq!(
        Fingerprint::of(der.as_ref()),
        second.fingerprint().parse::<Fingerprint>().unwrap()
    );

    // Clients pinned to the old certificate are refused, not silently accepted.
    let host = second.addr().ip().to_string();
    let stale = Client::new(second.addr(), &host, &old)
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    match stale.get("/api/v1/health").await {
        Err(Error::Tls(_)) => {}
        other => panic!("a client pinned to the old certificate got {other:?}"),
    }
}
