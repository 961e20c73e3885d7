//! OTA update bundles (crate `mecam-ota`): the streaming `BundleVerifier` the device
//! runs on an upload as it arrives, the manifest parser behind it, and the install
//! policy.
//!
//! Input: a control byte, then the bundle's bytes.
//! - Bit 0 set: before streaming, the harness re-signs the bundle with the key the
//!   verifier trusts (when the header parses and the signature block is present). A
//!   signature cannot be forged by mutation, so this is what lets the fuzzer reach the
//!   manifest parser and the payload states; corpus files are real bundles, signed or
//!   not. Bit 0 clear: the bytes are streamed as they are (header, length limit,
//!   unsigned, untrusted key and bad signature paths).
//! - Bits 1-7: chunk size for `push`, 1 to 127 bytes, or 0 for all at once, so the
//!   state machine sees every way a body can be cut into HTTP chunks.
//!
//! Properties: nothing panics; events come in the documented order and payload data
//! adds up to the manifest's sizes; an error poisons the verifier; chunking does not
//! change the verdict (compared with `verify_reader` and the pull-based
//! `BundleReader`); a manifest that parses is canonical.

#![no_main]

use std::io;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mecam_ota::format::{HEADER_LEN, Header, SIGNATURE_BLOCK_LEN, signed_message};
use mecam_ota::{
    BundleReader, BundleVerifier, Event, Manifest, OtaError, SigningKey, TrustedKeys, Version,
    check_install, verify_reader,
};

/// A fixed key, so that a crashing input reproduces byte for byte: an Ed25519 PKCS#8
/// v1 document (the fixed DER prefix, then the 32-byte seed).
static KEY: LazyLock<SigningKey> = LazyLock::new(|| {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&[0x5e; 32]);
    SigningKey::from_pkcs8(&der).expect("a valid Ed25519 PKCS#8 v1 key")
});

fn trusted() -> TrustedKeys {
    TrustedKeys::new([KEY.public_key()]).expect("one key")
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, bundle)) = data.split_first() else {
        return;
    };
    let mut bundle = bundle.to_vec();
    if control & 1 == 1 {
        resign(&mut bundle);
    }
    let chunk = match usize::from(control >> 1) {
        0 => bundle.len().max(1),
        n => n,
    };

    let streamed = stream(&bundle, chunk);
    let read = verify_reader(&bundle[..], trusted(), |_| Ok(()));
    match (&streamed, &read) {
        (Ok(manifest), Ok(bundle)) => assert_eq!(manifest, &bundle.manifest),
        (Err(_), Err(_)) => {}
        _ => panic!("chunks of {chunk} bytes: {streamed:?}, verify_reader: {read:?}"),
    }
    let pulled = pull(&bundle);
    match (&streamed, &pulled) {
        (Ok(pushed), Ok(pulled)) => assert_eq!(pushed, pulled),
        (Err(_), Err(_)) => {}
        _ => panic!("chunks of {chunk} bytes: {streamed:?}, BundleReader: {pulled:?}"),
    }
    if let Ok(manifest) = streamed {
        let current: Version = "1.0.0".parse().expect("a valid version");
        let _ = check_install(&manifest, &current, "rpi-zero2w", false);
        let _ = check_install(&manifest, &current, "rpi-zero2w", true);
    }

    // The manifest parser on its own, on whatever the header says is the manifest.
    if let Some(manifest) = manifest_bytes(&bundle) {
        if let Ok(parsed) = Manifest::from_bytes(manifest, 1) {
            assert_eq!(parsed.to_bytes().expect("valid"), manifest, "not canonical");
        }
    }
});

/// Verifies `bundle` with the pull-based `BundleReader`, reading every payload.
fn pull(bundle: &[u8]) -> Result<Manifest, String> {
    let keys = trusted();
    let mut reader = BundleReader::open(bundle, &keys, None).map_err(|e| e.to_string())?;
    while let Some(mut payload) = reader.next_payload().map_err(|e| e.to_string())? {
        io::copy(&mut payload, &mut io::sink()).map_err(|e| OtaError::from(e).to_string())?;
    }
    reader
        .finish()
        .map(|bundle| bundle.manifest)
        .map_err(|e| e.to_string())
}

/// Replaces the signature block with a valid one by [`KEY`], if there is one.
fn resign(bundle: &mut [u8]) {
    let Some(header) = header(bundle) else {
        return;
    };
    let end = HEADER_LEN + header.manifest_len as usize;
    if bundle.len() < end + SIGNATURE_BLOCK_LEN {
        return;
    }
    let signature = KEY.sign(&signed_message(&header, &bundle[HEADER_LEN..end]));
    bundle[end..end + 8].copy_from_slice(&KEY.key_id().0);
    bundle[end + 8..end + SIGNATURE_BLOCK_LEN].copy_from_slice(&signature);
}

fn header(bundle: &[u8]) -> Option<Header> {
    Header::parse(bundle.get(..HEADER_LEN)?.try_into().ok()?).ok()
}

fn manifest_bytes(bundle: &[u8]) -> Option<&[u8]> {
    let header = header(bundle)?;
    bundle.get(HEADER_LEN..HEADER_LEN + header.manifest_len as usize)
}

/// Streams `bundle` through a verifier in `chunk`-byte pieces, checking the event
/// order. Returns the verified manifest, or the first error.
fn stream(bundle: &[u8], chunk: usize) -> Result<Manifest, String> {
    let mut verifier = BundleVerifier::new(trusted());
    let mut manifest: Option<Manifest> = None;
    // (payload index, bytes seen) of the payload being streamed.
    let mut current: Option<(usize, u64)> = None;
    let mut ended = 0;
    for piece in bundle.chunks(chunk) {
        let events = match verifier.push(piece) {
            Ok(events) => events,
            Err(e) => {
                assert!(verifier.push(&[]).is_err(), "an error poisons the verifier");
                return Err(e.to_string());
            }
        };
        for event in events {
            match event {
                Event::ManifestVerified { manifest: m, .. } => {
                    assert!(manifest.is_none(), "one ManifestVerified");
                    manifest = Some(m);
                }
                Event::PayloadStart { index, size, .. } => {
                    let m = manifest.as_ref().expect("ManifestVerified comes first");
                    assert!(current.is_none() && index == ended, "PayloadStart {index}");
                    assert_eq!(size, m.payloads[index].size);
                    current = Some((index, 0));
                }
                Event::PayloadData { index, data } => {
                    let (at, seen) = current.as_mut().expect("PayloadData after PayloadStart");
                    assert_eq!(*at, index);
                    *seen += data.len() as u64;
                }
                Event::PayloadEnd { index, sha256 } => {
                    let m = manifest.as_ref().expect("ManifestVerified comes first");
                    let (at, seen) = current.take().expect("PayloadEnd after PayloadStart");
                    assert_eq!((at, seen), (index, m.payloads[index].size));
                    assert_eq!(sha256, m.payloads[index].sha256);
                    ended += 1;
                }
            }
        }
    }
    let expected_len = verifier.expected_len();
    match verifier.finish() {
        Ok(bundle_ok) => {
            let m = manifest.expect("a verified bundle had a ManifestVerified event");
            assert_eq!(ended, m.payloads.len(), "every payload ended");
            assert_eq!(Some(bundle_ok.len), expected_len);
            assert_eq!(bundle_ok.len, bundle.len() as u64);
            assert_eq!(bundle_ok.manifest, m);
            Ok(m)
        }
        Err(e) => Err(e.to_string()),
    }
}
