//! The bundle format end to end through the public API: building, streaming
//! verification under every chunking, and refusal of every kind of damage.

use mecam_ota::create::{resign, write_bundle};
use mecam_ota::format::{
    FORMAT_VERSION, HEADER_LEN, Header, MAX_MANIFEST_LEN, SIGNATURE_BLOCK_LEN, SignatureBlock,
    signed_message,
};
use mecam_ota::{
    BundleVerifier, Event, KeyId, Manifest, ManifestError, OtaError, PayloadKind, Prelude, Section,
    Sha256, SigningKey, TrustedKeys, VerifiedBundle, verify_reader,
};

mod common;

use common::{BOARD, BOOT, ROOTFS, bundle_of, manifest_for, new_key, trusting};

fn manifest() -> Manifest {
    manifest_for("1.4.0", BOARD)
}

/// A valid bundle built the way the host tool builds one.
fn bundle(key: Option<&SigningKey>) -> Vec<u8> {
    bundle_of(manifest(), key)
}

/// A bundle around arbitrary manifest bytes, signed by `key` — what an attacker holding
/// a trusted key (or a buggy build script) could produce, bypassing `Prelude::new`.
fn raw_bundle(manifest_bytes: &[u8], key: &SigningKey, payloads: &[&[u8]]) -> Vec<u8> {
    let header = Header {
        format: FORMAT_VERSION,
        manifest_len: manifest_bytes.len() as u32,
    };
    let block = SignatureBlock {
        key_id: key.key_id(),
        signature: key.sign(&signed_message(&header, manifest_bytes)),
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(manifest_bytes);
    out.extend_from_slice(&block.to_bytes());
    for p in payloads {
        out.extend_from_slice(p);
    }
    out
}

fn prelude_len(bundle: &[u8]) -> usize {
    let len = u32::from_be_bytes(bundle[12..16].try_into().unwrap()) as usize;
    HEADER_LEN + len + SIGNATURE_BLOCK_LEN
}

/// Events with data slices merged per payload, so that runs with different chunking
/// can be compared; `Finished` records what `finish` returned.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Manifest(Box<Manifest>, KeyId),
    Start(usize, PayloadKind, u64),
    Data(usize, Vec<u8>),
    End(usize, Sha256),
    Finished(Box<VerifiedBundle>),
}

fn record(seen: &mut Vec<Seen>, event: Event<'_>) {
    match event {
        Event::ManifestVerified { manifest, key_id } => {
            seen.push(Seen::Manifest(Box::new(manifest), key_id))
        }
        Event::PayloadStart { index, kind, size } => seen.push(Seen::Start(index, kind, size)),
        Event::PayloadData { index, data } => {
            assert!(!data.is_empty(), "empty data events are noise");
            match seen.last_mut() {
                Some(Seen::Data(i, buf)) if *i == index => buf.extend_from_slice(data),
                _ => seen.push(Seen::Data(index, data.to_vec())),
            }
        }
        Event::PayloadEnd { index, sha256 } => seen.push(Seen::End(index, sha256)),
    }
}

/// Feeds `chunks` in order; returns everything seen, or the first error.
fn run<'a>(
    keys: &TrustedKeys,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Seen>, OtaError> {
    let mut verifier = BundleVerifier::new(keys.clone());
    let mut seen = Vec::new();
    for chunk in chunks {
        for event in verifier.push(chunk)? {
            record(&mut seen, event);
        }
    }
    seen.push(Seen::Finished(Box::new(verifier.finish()?)));
    Ok(seen)
}

fn run_whole(keys: &TrustedKeys, bundle: &[u8]) -> Result<Vec<Seen>, OtaError> {
    run(keys, [bundle])
}

/// xorshift64*: deterministic chunk sizes without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[test]
fn round_trip_yields_manifest_then_each_payload_then_the_summary() {
    let key = new_key();
    let bytes = bundle(Some(&key));
    let seen = run_whole(&trusting(&key), &bytes).unwrap();
    let expected = vec![
        Seen::Manifest(Box::new(manifest()), key.key_id()),
        Seen::Start(0, PayloadKind::Rootfs, ROOTFS.len() as u64),
        Seen::Data(0, ROOTFS.to_vec()),
        Seen::End(0, Sha256::of(ROOTFS)),
        Seen::Start(1, PayloadKind::Boot, BOOT.len() as u64),
        Seen::Data(1, BOOT.to_vec()),
        Seen::End(1, Sha256::of(BOOT)),
        Seen::Finished(Box::new(VerifiedBundle {
            manifest: manifest(),
            key_id: key.key_id(),
            len: bytes.len() as u64,
        })),
    ];
    assert_eq!(seen, expected);
}

#[test]
fn every_chunking_gives_identical_events() {
    let key = new_key();
    let keys = trusting(&key);
    let bytes = bundle(Some(&key));
    let reference = run_whole(&keys, &bytes).unwrap();

    // Two chunks, split at every possible position (including empty halves).
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        assert_eq!(run(&keys, [a, b]).unwrap(), reference, "split at {split}");
    }
    // One byte at a time.
    assert_eq!(run(&keys, bytes.chunks(1)).unwrap(), reference);
    // Random sizes, with empty chunks mixed in.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rng
                .below(if round % 2 == 0 { 8 } else { 200 })
                .min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            chunks.push(chunk);
            rest = tail;
        }
        assert_eq!(run(&keys, chunks).unwrap(), reference, "round {round}");
    }
}

#[test]
fn nothing_is_released_before_the_signature_checks_out() {
    let key = new_key();
    let bytes = bundle(Some(&key));
    let sig_end = prelude_len(&bytes);

    // Trusted: the first event comes with the last byte of the signature block.
    let mut verifier = BundleVerifier::new(trusting(&key));
    for (i, byte) in bytes.iter().enumerate() {
        let events = verifier.push(std::slice::from_ref(byte)).unwrap();
        if i + 1 < sig_end {
            assert!(events.is_empty(), "event before the signature at byte {i}");
            assert!(verifier.manifest().is_none());
        } else if i + 1 == sig_end {
            assert!(matches!(events[0], Event::ManifestVerified { .. }));
            assert!(matches!(events[1], Event::PayloadStart { index: 0, .. }));
            assert_eq!(events.len(), 2);
            assert_eq!(verifier.expected_len(), Some(bytes.len() as u64));
        }
        assert_eq!(verifier.position(), i as u64 + 1);
    }
    verifier.finish().unwrap();

    // Untrusted: the whole bundle in one push yields an error and no event at all,
    // and byte by byte nothing comes out before the error.
    let other = trusting(&new_key());
    assert!(matches!(
        BundleVerifier::new(other.clone()).push(&bytes),
        Err(OtaError::UntrustedKey { .. })
    ));
    let mut verifier = BundleVerifier::new(other);
    for (i, byte) in bytes.iter().enumerate() {
        match verifier.push(std::slice::from_ref(byte)) {
            Ok(events) => assert!(events.is_empty()),
            Err(OtaError::UntrustedKey { .. }) => {
                assert_eq!(i + 1, sig_end);
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[test]
fn wrong_key_and_unsigned_bundles_are_refused_by_name() {
    let key = new_key();
    let other = new_key();
    let err = run_whole(&trusting(&other), &bundle(Some(&key))).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, OtaError::UntrustedKey { key_id, .. } if key_id == key.key_id()),
        "{msg}"
    );
    assert!(
        msg.contains(&key.key_id().to_string()) && msg.contains("not trusted"),
        "{msg}"
    );
    assert!(
        msg.contains(&other.key_id().to_string()),
        "lists trusted keys: {msg}"
    );

    let err = run_whole(&trusting(&key), &bundle(None)).unwrap_err();
    assert!(matches!(err, OtaError::Unsigned), "{err}");

    // Several trusted keys: the key id picks the right one.
    let keys = TrustedKeys::new([other.public_key(), key.public_key()]).unwrap();
    run_whole(&keys, &bundle(Some(&key))).unwrap();
}

#[test]
fn a_flipped_byte_anywhere_is_refused_with_the_right_reason() {
    let key = new_key();
    let keys = trusting(&key);
    let bytes = bundle(Some(&key));
    let manifest_end = prelude_len(&bytes) - SIGNATURE_BLOCK_LEN;
    let key_id_end = manifest_end + KeyId::LEN;
    let sig_end = prelude_len(&bytes);
    let rootfs_end = sig_end + ROOTFS.len();

    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x01;
        let err = run_whole(&keys, &damaged).unwrap_err();
        let msg = err.to_string();
        match i {
            0..8 => assert!(matches!(err, OtaError::BadMagic), "byte {i}: {msg}"),
            8..10 => assert!(
                matches!(err, OtaError::UnsupportedFormat { .. }),
                "byte {i}: {msg}"
            ),
            10..12 => assert!(
                matches!(err, OtaError::UnknownFlags { .. }),
                "byte {i}: {msg}"
            ),
            // A different manifest length shifts everything after it; whatever the
            // verifier trips over first, it must not accept the bundle.
            12..16 => {}
            _ if i < manifest_end => {
                assert!(
                    matches!(err, OtaError::BadSignature { .. }),
                    "byte {i}: {msg}"
                )
            }
            _ if i < key_id_end => {
                assert!(
                    matches!(err, OtaError::UntrustedKey { .. }),
                    "byte {i}: {msg}"
                )
            }
            _ if i < sig_end => {
                assert!(
                    matches!(err, OtaError::BadSignature { .. }),
                    "byte {i}: {msg}"
                )
            }
            _ => {
                let name = if i < rootfs_end { "rootfs" } else { "boot" };
                assert!(
                    matches!(&err, OtaError::PayloadHash { name: n, .. } if n == name),
                    "byte {i}: {msg}"
                );
                assert!(msg.contains(&format!("{name:?}")), "{msg}");
            }
        }
    }
}

#[test]
fn payload_hash_mismatch_names_both_hashes() {
    let key = new_key();
    let mut bytes = bundle(Some(&key));
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let mut damaged_boot = BOOT.to_vec();
    damaged_boot[BOOT.len() - 1] ^= 0xff;
    let msg = run_whole(&trusting(&key), &bytes).unwrap_err().to_string();
    assert!(msg.contains("\"boot\""), "{msg}");
    assert!(msg.contains(&Sha256::of(BOOT).to_string()), "{msg}");
    assert!(
        msg.contains(&Sha256::of(&damaged_boot).to_string()),
        "{msg}"
    );
}

#[test]
fn truncation_at_every_length_is_refused_and_located() {
    let key = new_key();
    let keys = trusting(&key);
    let bytes = bundle(Some(&key));
    let manifest_end = prelude_len(&bytes) - SIGNATURE_BLOCK_LEN;
    let sig_end = prelude_len(&bytes);
    let rootfs_end = sig_end + ROOTFS.len();
    for len in 0..bytes.len() {
        let err = run_whole(&keys, &bytes[..len]).unwrap_err();
        let OtaError::Truncated {
            section,
            got,
            expected,
        } = &err
        else {
            panic!("length {len}: expected truncation, got {err}");
        };
        let (want_section, want_got, want_expected) = match len {
            _ if len < HEADER_LEN => (Section::Header, len, HEADER_LEN),
            _ if len < manifest_end => (
                Section::Manifest,
                len - HEADER_LEN,
                manifest_end - HEADER_LEN,
            ),
            _ if len < sig_end => (
                Section::SignatureBlock,
                len - manifest_end,
                SIGNATURE_BLOCK_LEN,
            ),
            _ if len < rootfs_end => (
                Section::Payload("rootfs".into()),
                len - sig_end,
                ROOTFS.len(),
            ),
            _ => (
                Section::Payload("boot".into()),
                len - rootfs_end,
                BOOT.len(),
            ),
        };
        assert_eq!(
            (section.clone(), *got, *expected),
            (want_section, want_got as u64, want_expected as u64),
            "length {len}"
        );
    }
    let msg = run_whole(&keys, &bytes[..sig_end + 10])
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "bundle is truncated: payload \"rootfs\" ends after 10 of 300 bytes"
    );
}

#[test]
fn trailing_data_is_refused_even_in_a_later_chunk() {
    let key = new_key();
    let keys = trusting(&key);
    let bytes = bundle(Some(&key));
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"garbage");
    let err = run_whole(&keys, &longer).unwrap_err();
    assert!(
        matches!(err, OtaError::TrailingData { offset } if offset == bytes.len() as u64),
        "{err}"
    );
    let err = run(&keys, [&bytes[..], b"", b"x"]).unwrap_err();
    assert!(matches!(err, OtaError::TrailingData { .. }), "{err}");

    // After a refusal the verifier stays refused.
    let mut verifier = BundleVerifier::new(keys);
    assert!(verifier.push(&longer).is_err());
    assert!(matches!(verifier.push(b""), Err(OtaError::Poisoned)));
    assert!(matches!(verifier.finish(), Err(OtaError::Poisoned)));
}

#[test]
fn an_oversized_manifest_length_is_refused_from_the_header_alone() {
    let key = new_key();
    for len in [MAX_MANIFEST_LEN + 1, u32::MAX, 0] {
        let mut bytes = bundle(Some(&key));
        bytes[12..16].copy_from_slice(&len.to_be_bytes());
        let mut verifier = BundleVerifier::new(trusting(&key));
        // Only the 16 header bytes: refused without waiting for (or allocating) more.
        let err = verifier.push(&bytes[..HEADER_LEN]).unwrap_err();
        assert!(
            matches!(err, OtaError::ManifestLength { len: l } if l == len),
            "{err}"
        );
        assert!(err.to_string().contains(&len.to_string()), "{err}");
    }
}

#[test]
fn a_signed_manifest_is_still_checked() {
    let key = new_key();
    let keys = trusting(&key);
    let to_bytes = |m: &Manifest| serde_json::to_vec(m).unwrap();

    let mut dup = manifest();
    dup.payloads[1].name = "rootfs".into();
    let err = run_whole(&keys, &raw_bundle(&to_bytes(&dup), &key, &[ROOTFS, BOOT])).unwrap_err();
    assert!(
        matches!(&err, OtaError::Manifest(ManifestError::DuplicateName(n)) if n == "rootfs"),
        "{err}"
    );

    let mut overflow = manifest();
    overflow.payloads[0].size = u64::MAX;
    let err = run_whole(&keys, &raw_bundle(&to_bytes(&overflow), &key, &[])).unwrap_err();
    assert!(
        matches!(err, OtaError::Manifest(ManifestError::SizeOverflow)),
        "{err}"
    );

    let mut future = manifest();
    future.format = 2;
    let err = run_whole(
        &keys,
        &raw_bundle(&to_bytes(&future), &key, &[ROOTFS, BOOT]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            OtaError::Manifest(ManifestError::FormatMismatch { .. })
        ),
        "{err}"
    );

    let mut pretty = serde_json::to_vec_pretty(&manifest()).unwrap();
    let err = run_whole(&keys, &raw_bundle(&pretty, &key, &[ROOTFS, BOOT])).unwrap_err();
    assert!(
        matches!(err, OtaError::Manifest(ManifestError::NotCanonical)),
        "{err}"
    );
    pretty.truncate(10);
    let err = run_whole(&keys, &raw_bundle(&pretty, &key, &[ROOTFS, BOOT])).unwrap_err();
    assert!(
        matches!(err, OtaError::Manifest(ManifestError::Json(_))),
        "{err}"
    );
}

#[test]
fn a_payload_whose_size_field_lies_is_refused() {
    let key = new_key();
    let keys = trusting(&key);
    let signed = |rootfs_size: u64, boot_size: u64| {
        let mut m = manifest();
        m.payloads[0].size = rootfs_size;
        m.payloads[1].size = boot_size;
        raw_bundle(&serde_json::to_vec(&m).unwrap(), &key, &[ROOTFS, BOOT])
    };
    let n_root = ROOTFS.len() as u64;
    let n_boot = BOOT.len() as u64;

    // Too long: rootfs swallows the start of boot, so its hash no longer matches.
    let err = run_whole(&keys, &signed(n_root + 5, n_boot)).unwrap_err();
    assert!(
        matches!(&err, OtaError::PayloadHash { name, .. } if name == "rootfs"),
        "{err}"
    );
    // Too short: the hash covers fewer bytes than were hashed at creation.
    let err = run_whole(&keys, &signed(n_root - 5, n_boot)).unwrap_err();
    assert!(
        matches!(&err, OtaError::PayloadHash { name, .. } if name == "rootfs"),
        "{err}"
    );
    // The last payload too long: the bundle ends early.
    let err = run_whole(&keys, &signed(n_root, n_boot + 5)).unwrap_err();
    assert!(
        matches!(&err, OtaError::Truncated { section: Section::Payload(name), .. } if name == "boot"),
        "{err}"
    );
    // Far beyond the data: still just a truncation, nothing allocated for it.
    let err = run_whole(&keys, &signed(n_root, 1 << 40)).unwrap_err();
    assert!(
        matches!(err, OtaError::Truncated { expected, .. } if expected == 1 << 40),
        "{err}"
    );
}

#[test]
fn the_blocking_reader_agrees_with_the_push_api() {
    let key = new_key();
    let keys = trusting(&key);
    let bytes = bundle(Some(&key));
    let mut seen = Vec::new();
    let verified = verify_reader(&bytes[..], keys.clone(), |e| {
        record(&mut seen, e);
        Ok(())
    })
    .unwrap();
    seen.push(Seen::Finished(Box::new(verified)));
    assert_eq!(seen, run_whole(&keys, &bytes).unwrap());

    let err = verify_reader(&bytes[..bytes.len() - 1], keys, |_| Ok(())).unwrap_err();
    assert!(matches!(err, OtaError::Truncated { .. }), "{err}");
}

#[test]
fn resigning_streams_and_checks_what_it_signs() {
    let key = new_key();
    let unsigned = bundle(None);
    let mut signed = Vec::new();
    let prelude = resign(&mut &unsigned[..], &mut signed, &key).unwrap();
    assert_eq!(prelude.signature.key_id, key.key_id());
    // Signing changes the signature block and nothing else.
    assert_eq!(signed, bundle(Some(&key)));
    run_whole(&trusting(&key), &signed).unwrap();

    // Re-signing with another key replaces the signature.
    let second = new_key();
    let mut again = Vec::new();
    resign(&mut &signed[..], &mut again, &second).unwrap();
    run_whole(&trusting(&second), &again).unwrap();
    assert!(run_whole(&trusting(&key), &again).is_err());

    let mut corrupt = unsigned.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let err = resign(&mut &corrupt[..], &mut Vec::new(), &key).unwrap_err();
    assert!(
        matches!(&err, OtaError::PayloadHash { name, .. } if name == "boot"),
        "{err}"
    );

    let mut trailing = unsigned.clone();
    trailing.push(0);
    let err = resign(&mut &trailing[..], &mut Vec::new(), &key).unwrap_err();
    assert!(
        matches!(err, OtaError::TrailingData { offset } if offset == unsigned.len() as u64),
        "{err}"
    );

    let err = resign(&mut &unsigned[..100], &mut Vec::new(), &key).unwrap_err();
    assert!(matches!(err, OtaError::Truncated { .. }), "{err}");
}

#[test]
fn a_source_that_changes_while_writing_is_caught() {
    let prelude = Prelude::new(manifest(), None).unwrap();
    let changed: &[u8] = &[0x5b; 300];
    let err = write_bundle(&mut Vec::new(), &prelude, |i, _| {
        Ok(if i == 0 { changed } else { BOOT })
    })
    .unwrap_err();
    assert!(
        matches!(&err, OtaError::SourceChanged { name } if name == "rootfs"),
        "{err}"
    );

    let mut grown = BOOT.to_vec();
    grown.push(b'!');
    let err = write_bundle(&mut Vec::new(), &prelude, |i, _| {
        Ok(if i == 0 { ROOTFS } else { &grown[..] })
    })
    .unwrap_err();
    assert!(
        matches!(&err, OtaError::SourceChanged { name } if name == "boot"),
        "{err}"
    );
}
