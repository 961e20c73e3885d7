//! The fixture both bundle test files build on: a key, a two-payload manifest, and a
//! bundle written the way the host tool writes one.

use mecam_ota::create::write_bundle;
use mecam_ota::format::FORMAT_VERSION;
use mecam_ota::{Manifest, PayloadInfo, PayloadKind, Prelude, Sha256, SigningKey, TrustedKeys};

pub const ROOTFS: &[u8] = &[0x5a; 300];
pub const BOOT: &[u8] = b"boot files archive, pretend it is a tar";
pub const BOARD: &str = "rpi-zero2w";

pub fn new_key() -> SigningKey {
    SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap()
}

pub fn trusting(key: &SigningKey) -> TrustedKeys {
    TrustedKeys::new([key.public_key()]).unwrap()
}

pub fn payload(kind: PayloadKind, data: &[u8]) -> PayloadInfo {
    PayloadInfo {
        name: kind.as_str().into(),
        kind,
        size: data.len() as u64,
        sha256: Sha256::of(data),
    }
}

/// The root filesystem and the boot files of `version` for `board`.
pub fn manifest_for(version: &str, board: &str) -> Manifest {
    Manifest {
        format: FORMAT_VERSION,
        product: "mecam".into(),
        version: version.parse().unwrap(),
        board: board.into(),
        created: "2026-05-01T12:00:00Z".parse().unwrap(),
        payloads: vec![
            payload(PayloadKind::Rootfs, ROOTFS),
            payload(PayloadKind::Boot, BOOT),
        ],
    }
}

/// A bundle of `manifest` with [`ROOTFS`] and [`BOOT`], signed by `key` if given.
pub fn bundle_of(manifest: Manifest, key: Option<&SigningKey>) -> Vec<u8> {
    let prelude = Prelude::new(manifest, key).unwrap();
    let sources = [ROOTFS, BOOT];
    let mut out = Vec::new();
    let len = write_bundle(&mut out, &prelude, |i, _| Ok(sources[i])).unwrap();
    assert_eq!(len, out.len() as u64);
    out
}
