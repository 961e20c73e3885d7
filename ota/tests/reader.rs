//! `BundleReader`, the pull-based verifier: every refusal a device relies on, through
//! the public API, and agreement with the push-based verifier.

use std::io::{self, Read};

use mecam_ota::format::{
    FORMAT_VERSION, HEADER_LEN, Header, MAX_MANIFEST_LEN, SIGNATURE_BLOCK_LEN, SignatureBlock,
    signed_message,
};
use mecam_ota::{
    BundleReader, InstallTarget, Manifest, OtaError, Prelude, Refusal, Section, SigningKey,
    TrustedKeys, verify_reader,
};

mod common;

use common::{BOARD, BOOT, ROOTFS, manifest_for as manifest, new_key, trusting};

fn bundle_of(manifest: Manifest, key: &SigningKey) -> Vec<u8> {
    common::bundle_of(manifest, Some(key))
}

fn bundle(key: &SigningKey) -> Vec<u8> {
    bundle_of(manifest("1.4.0", BOARD), key)
}

fn target(current: &str, force: bool) -> InstallTarget {
    InstallTarget {
        board: BOARD.into(),
        current: current.parse().unwrap(),
        force,
    }
}

fn prelude_len(bundle: &[u8]) -> usize {
    let len = u32::from_be_bytes(bundle[12..16].try_into().unwrap()) as usize;
    HEADER_LEN + len + SIGNATURE_BLOCK_LEN
}

/// Opens, copies every payload out and finishes: what an installer does.
fn install(bytes: &[u8], keys: &TrustedKeys, t: &InstallTarget) -> Result<Vec<Vec<u8>>, OtaError> {
    let mut reader = BundleReader::open(bytes, keys, Some(t))?;
    let mut out = Vec::new();
    while let Some(mut p) = reader.next_payload()? {
        let mut data = Vec::new();
        io::copy(&mut p, &mut data)?;
        out.push(data);
    }
    let verified = reader.finish()?;
    assert_eq!(verified.len, bytes.len() as u64);
    Ok(out)
}

/// A reader that yields at most `n` bytes per call, like a socket.
struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_valid_bundle_yields_its_payloads_and_agrees_with_the_push_api() {
    let key = new_key();
    let bytes = bundle(&key);
    let keys = trusting(&key);
    assert_eq!(
        install(&bytes, &keys, &target("1.3.9", false)).unwrap(),
        [ROOTFS, BOOT]
    );

    for step in [1, 7, 4096] {
        let mut reader =
            BundleReader::open(Dribble(&bytes, step), &keys, Some(&target("1.0.0", false)))
                .unwrap();
        assert_eq!(
            reader.position(),
            prelude_len(&bytes) as u64,
            "no payload byte read"
        );
        assert_eq!(reader.key_id(), key.key_id());
        let p = reader.next_payload().unwrap().unwrap();
        assert_eq!((p.info().name.as_str(), p.remaining()), ("rootfs", 300));
        let pulled = reader.finish().unwrap();
        let pushed = verify_reader(&bytes[..], keys.clone(), |_| Ok(())).unwrap();
        assert_eq!(pulled, pushed);
    }
}

#[test]
fn an_unknown_key_and_an_unsigned_bundle_are_refused() {
    let bytes = bundle(&new_key());
    let other = trusting(&new_key());
    let err = BundleReader::open(&bytes[..], &other, None).unwrap_err();
    assert!(matches!(err, OtaError::UntrustedKey { .. }), "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");

    let unsigned = Prelude::new(manifest("1.4.0", BOARD), None).unwrap();
    let err = BundleReader::open(&unsigned.to_bytes()[..], &other, None).unwrap_err();
    assert!(matches!(err, OtaError::Unsigned), "{err}");
}

#[test]
fn a_flipped_manifest_byte_is_a_bad_signature() {
    let key = new_key();
    let good = bundle(&key);
    for at in [
        HEADER_LEN,
        HEADER_LEN + 40,
        prelude_len(&good) - SIGNATURE_BLOCK_LEN - 1,
    ] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        let err = BundleReader::open(&bytes[..], &trusting(&key), None).unwrap_err();
        assert!(
            matches!(err, OtaError::BadSignature { .. }),
            "byte {at}: {err}"
        );
    }
}

#[test]
fn a_flipped_payload_byte_fails_that_payload_and_poisons_the_reader() {
    let key = new_key();
    let keys = trusting(&key);
    let good = bundle(&key);
    let start = prelude_len(&good);
    for (at, name) in [
        (start, "rootfs"),
        (start + ROOTFS.len() - 1, "rootfs"),
        (good.len() - 1, "boot"),
    ] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x80;
        let err = install(&bytes, &keys, &target("1.0.0", false)).unwrap_err();
        match &err {
            OtaError::PayloadHash { name: n, .. } => assert_eq!(n, name),
            other => panic!("byte {at}: {other}"),
        }

        // Skipping the payloads does not skip their check, and nothing continues past
        // the refusal.
        let mut reader = BundleReader::open(&bytes[..], &keys, None).unwrap();
        let mut result = Ok(());
        while result.is_ok() {
            match reader.next_payload() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => result = Err(e),
            }
        }
        let result = result.and_then(|()| reader.finish().map(drop));
        assert!(
            matches!(result, Err(OtaError::PayloadHash { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn the_read_that_completes_a_bad_payload_fails_and_later_calls_stay_refused() {
    let key = new_key();
    let mut bytes = bundle(&key);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut reader = BundleReader::open(&bytes[..], &trusting(&key), None).unwrap();
    io::copy(
        &mut reader.next_payload().unwrap().unwrap(),
        &mut io::sink(),
    )
    .unwrap();
    let err = io::copy(
        &mut reader.next_payload().unwrap().unwrap(),
        &mut io::sink(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(matches!(OtaError::from(err), OtaError::PayloadHash { .. }));
    assert!(matches!(reader.next_payload(), Err(OtaError::Poisoned)));
    assert!(matches!(reader.finish(), Err(OtaError::Poisoned)));
}

#[test]
fn another_board_is_refused_even_when_forced() {
    let key = new_key();
    let bytes = bundle_of(manifest("9.0.0", "rpi-4"), &key);
    for force in [false, true] {
        let err = BundleReader::open(&bytes[..], &trusting(&key), Some(&target("1.0.0", force)))
            .unwrap_err();
        assert!(
            matches!(err, OtaError::Refused(Refusal::WrongBoard { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("rpi-4"), "{err}");
    }
}

#[test]
fn an_older_version_is_refused_unless_forced() {
    let key = new_key();
    let bytes = bundle_of(manifest("1.2.0", BOARD), &key);
    let keys = trusting(&key);
    let err = BundleReader::open(&bytes[..], &keys, Some(&target("1.3.0", false))).unwrap_err();
    assert!(
        matches!(err, OtaError::Refused(Refusal::Downgrade { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("force"), "{err}");
    let err = BundleReader::open(&bytes[..], &keys, Some(&target("1.2.0", false))).unwrap_err();
    assert!(matches!(err, OtaError::Refused(Refusal::SameVersion(_))));
    assert_eq!(
        install(&bytes, &keys, &target("1.3.0", true)).unwrap(),
        [ROOTFS, BOOT]
    );
}

#[test]
fn truncation_anywhere_is_refused_and_located() {
    let key = new_key();
    let keys = trusting(&key);
    let good = bundle(&key);
    let start = prelude_len(&good);
    let cases = [
        (0, Section::Header),
        (HEADER_LEN - 1, Section::Header),
        (HEADER_LEN, Section::Manifest),
        (start - SIGNATURE_BLOCK_LEN - 1, Section::Manifest),
        (start - SIGNATURE_BLOCK_LEN, Section::SignatureBlock),
        (start - 1, Section::SignatureBlock),
        (start, Section::Payload("rootfs".into())),
        (start + 100, Section::Payload("rootfs".into())),
        (start + ROOTFS.len(), Section::Payload("boot".into())),
        (good.len() - 1, Section::Payload("boot".into())),
    ];
    for (len, section) in cases {
        let err = install(&good[..len], &keys, &target("1.0.0", false)).unwrap_err();
        match err {
            OtaError::Truncated { section: s, .. } => assert_eq!(s, section, "cut at {len}"),
            other => panic!("cut at {len}: {other}"),
        }
    }
    // A truncated payload is an UnexpectedEof to `Read` users.
    let mut reader = BundleReader::open(&good[..start + 10], &keys, None).unwrap();
    let err = io::copy(
        &mut reader.next_payload().unwrap().unwrap(),
        &mut io::sink(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("10 of 300"), "{err}");
}

#[test]
fn trailing_data_is_refused() {
    let key = new_key();
    let mut bytes = bundle(&key);
    let end = bytes.len() as u64;
    bytes.push(0);
    let err = BundleReader::open(&bytes[..], &trusting(&key), None)
        .unwrap()
        .finish()
        .unwrap_err();
    assert!(
        matches!(err, OtaError::TrailingData { offset } if offset == end),
        "{err}"
    );
}

#[test]
fn an_oversized_manifest_length_is_refused_from_the_header_alone() {
    let key = new_key();
    for len in [0, MAX_MANIFEST_LEN + 1, u32::MAX] {
        let mut bytes = bundle(&key);
        bytes[12..16].copy_from_slice(&len.to_be_bytes());
        // Only the header is there: were the length trusted, this would wait for (and
        // allocate) up to 4 GiB first, or report truncation instead.
        let err = BundleReader::open(&bytes[..HEADER_LEN], &trusting(&key), None).unwrap_err();
        assert!(
            matches!(err, OtaError::ManifestLength { len: l } if l == len),
            "{err}"
        );
    }
}

#[test]
fn a_hostile_payload_size_allocates_nothing_and_ends_as_truncation() {
    // A trusted key signed a manifest claiming an 18 EB payload: the reader streams in
    // fixed buffers, so the lie costs nothing until the stream runs out.
    let key = new_key();
    let mut m = manifest("1.4.0", BOARD);
    m.payloads[0].size = u64::MAX - 1000;
    let manifest_bytes = m.to_bytes().unwrap();
    let header = Header {
        format: FORMAT_VERSION,
        manifest_len: manifest_bytes.len() as u32,
    };
    let block = SignatureBlock {
        key_id: key.key_id(),
        signature: key.sign(&signed_message(&header, &manifest_bytes)),
    };
    let mut bytes = header.to_bytes().to_vec();
    bytes.extend_from_slice(&manifest_bytes);
    bytes.extend_from_slice(&block.to_bytes());
    bytes.extend_from_slice(ROOTFS);

    let mut reader = BundleReader::open(&bytes[..], &trusting(&key), None).unwrap();
    let mut p = reader.next_payload().unwrap().unwrap();
    assert_eq!(p.remaining(), u64::MAX - 1000);
    let err = OtaError::from(io::copy(&mut p, &mut io::sink()).unwrap_err());
    assert!(matches!(err, OtaError::Truncated { got: 300, .. }), "{err}");
}

#[test]
fn io_errors_pass_through_unchanged() {
    #[derive(Debug)]
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer went away",
            ))
        }
    }
    let err = BundleReader::open(Failing, &TrustedKeys::default(), None).unwrap_err();
    match err {
        OtaError::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("{other}"),
    }
}
