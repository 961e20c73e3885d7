//! End-to-end tests of the encrypted file format: what the recorder writes, what the
//! API and `mecam decrypt` read, and what an attacker or a power cut can do to it.

use std::io::{self, Cursor, Write};

use super::crypto::contains;
use super::keys::tests::secret_bytes;
use super::*;

struct Fixture {
    record: VaultRecord,
    recovery: RecoveryKey,
    vault: UnlockedVault,
    key: SealingKey,
}

fn fixture() -> Fixture {
    let (record, recovery, vault) = VaultRecord::create(
        "owner",
        "a long enough passphrase",
        Argon2Params::INSECURE_FAST,
    )
    .unwrap();
    let key = record.sealing_key().unwrap();
    Fixture {
        record,
        recovery,
        vault,
        key,
    }
}

/// An fMP4-like segment: an init segment and fragments, each distinctive.
fn fragments(count: usize, len: usize, seed: u8) -> Vec<Vec<u8>> {
    let mut out = vec![b"\0\0\0\x18ftypisom\0\0\x02\0isomiso6mp41\0\0\0\x10moov".to_vec()];
    for i in 0..count {
        let mut fragment = b"\0\0\0\x10moof\0\0\0\x08mdat".to_vec();
        fragment.extend((0..len).map(|j| seed ^ (i * 31 + j * 7) as u8));
        out.push(fragment);
    }
    out
}

struct SealedFile {
    bytes: Vec<u8>,
    locations: Vec<ChunkLocation>,
    end: ChunkLocation,
    data_key: [u8; 32],
}

fn seal_file(key: &SealingKey, fragments: &[Vec<u8>]) -> SealedFile {
    let mut sealer = FileSealer::new(key, ContentKind::Segment).unwrap();
    let mut bytes = sealer.header().to_vec();
    let mut locations = Vec::new();
    for fragment in fragments {
        let chunk = sealer.seal_chunk(fragment).unwrap();
        assert_eq!(chunk.location.offset, bytes.len() as u64);
        bytes.extend_from_slice(&chunk.bytes);
        locations.push(chunk.location);
    }
    let data_key = sealer.test_data_key;
    let end = sealer.finish();
    assert_eq!(end.location.offset, bytes.len() as u64);
    bytes.extend_from_slice(&end.bytes);
    SealedFile {
        bytes,
        locations,
        end: end.location,
        data_key,
    }
}

/// Reads a whole file: the chunks yielded, then how it ended.
fn read_all(bytes: &[u8], vault: &UnlockedVault) -> (Vec<Vec<u8>>, Result<(), VaultError>) {
    let mut reader = match FileReader::open(bytes, vault) {
        Ok(reader) => reader,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut chunks = Vec::new();
    loop {
        match reader.next_chunk() {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => return (chunks, Ok(())),
            Err(e) => return (chunks, Err(e)),
        }
    }
}

#[test]
fn round_trip_with_a_session_and_with_the_recovery_key() {
    let f = fixture();
    let fragments = fragments(3, 200, 1);
    let file = seal_file(&f.key, &fragments);

    let (chunks, end) = read_all(&file.bytes, &f.vault);
    end.unwrap();
    assert_eq!(chunks, fragments);

    // Offline: the recovery key as typed, and nothing else.
    let typed = RecoveryKey::parse(&f.recovery.to_display_string().to_lowercase()).unwrap();
    let reader = FileReader::open_with_recovery_key(&file.bytes[..], &typed).unwrap();
    assert_eq!(reader.decryptor().kind(), ContentKind::Segment);
    let mut plain = Vec::new();
    assert_eq!(reader.copy_to(&mut plain).unwrap(), 4);
    assert_eq!(plain, fragments.concat());

    // A session opened later from the stored record reads it too.
    let session = f
        .record
        .unlock("owner", "a long enough passphrase")
        .unwrap();
    assert_eq!(read_all(&file.bytes, &session).0, fragments);
}

#[test]
fn locations_tile_the_file() {
    let f = fixture();
    let fragments = fragments(4, 100, 2);
    let file = seal_file(&f.key, &fragments);
    assert_eq!(file.locations[0].offset, HEADER_LEN as u64);
    for (i, pair) in file.locations.windows(2).enumerate() {
        assert_eq!(pair[0].end(), pair[1].offset);
        assert_eq!(pair[0].index as usize, i);
    }
    for (location, fragment) in file.locations.iter().zip(&fragments) {
        assert_eq!(location.plaintext_len() as usize, fragment.len());
    }
    assert_eq!(file.end.offset, file.locations.last().unwrap().end());
    assert_eq!(file.end.index, 5);
    assert_eq!(file.end.end(), file.bytes.len() as u64);
}

#[test]
fn writer_and_reader_agree_with_the_sans_io_layer() {
    let f = fixture();
    let fragments = fragments(2, 50, 3);
    let mut writer = FileWriter::new(Vec::new(), &f.key, ContentKind::Segment).unwrap();
    let locations: Vec<_> = fragments
        .iter()
        .map(|fr| writer.append(fr).unwrap())
        .collect();
    let digest = *writer.header_digest();
    let (bytes, end) = writer.finish().unwrap();
    assert_eq!(end.end(), bytes.len() as u64);
    assert_eq!(locations[0].offset, HEADER_LEN as u64);

    let reader = FileReader::open(&bytes[..], &f.vault).unwrap();
    assert_eq!(reader.decryptor().header_digest(), &digest);
    assert_eq!(reader.collect::<Result<Vec<_>, _>>().unwrap(), fragments);
}

#[test]
fn any_chunk_decrypts_on_its_own() {
    let f = fixture();
    let fragments = fragments(5, 80, 4);
    let file = seal_file(&f.key, &fragments);
    let decryptor = FileDecryptor::open(&file.bytes[..HEADER_LEN], &f.vault).unwrap();

    // Out of order, from exactly the stored bytes (what an HTTP Range handler reads).
    for location in file.locations.iter().rev() {
        let stored = &file.bytes[location.offset as usize..location.end() as usize];
        assert_eq!(
            decryptor.decrypt_chunk(location.index, stored).unwrap(),
            fragments[location.index as usize]
        );
    }
    // Through `Read + Seek`, given only index and offset.
    let mut cursor = Cursor::new(&file.bytes);
    let third = file.locations[3];
    assert_eq!(
        decryptor
            .read_chunk_at(&mut cursor, third.index, third.offset)
            .unwrap(),
        fragments[3]
    );
    // Claiming another index for a chunk fails, naming the claimed index.
    let stored = &file.bytes[third.offset as usize..third.end() as usize];
    assert!(matches!(
        decryptor.decrypt_chunk(2, stored),
        Err(VaultError::Authentication { chunk: 2 })
    ));
    // A length that does not match what the index says is damage, not a short read.
    assert!(matches!(
        decryptor.decrypt_chunk(3, &stored[..stored.len() - 1]),
        Err(VaultError::BadChunkLength { chunk: 3, .. })
    ));
    // The end marker is not a data chunk.
    let end = &file.bytes[file.end.offset as usize..];
    assert!(matches!(
        decryptor.decrypt_chunk(file.end.index, end),
        Err(VaultError::Authentication { chunk: 6 })
    ));
    // Reading past the end of a cut-off file is "incomplete".
    let cut = &file.bytes[..third.end() as usize - 1];
    assert!(matches!(
        decryptor.read_chunk_at(&mut Cursor::new(cut), 3, third.offset),
        Err(VaultError::Incomplete { complete_chunks: 3 })
    ));
}

#[test]
fn wrong_vault_and_wrong_recovery_key_are_refused_clearly() {
    let f = fixture();
    let other = fixture();
    let file = seal_file(&f.key, &fragments(1, 10, 5));

    let err = FileReader::open(&file.bytes[..], &other.vault)
        .err()
        .unwrap();
    assert!(matches!(err, VaultError::WrongVault { .. }), "{err}");
    let err = FileReader::open_with_recovery_key(&file.bytes[..], &other.recovery)
        .err()
        .unwrap();
    assert!(matches!(err, VaultError::WrongRecoveryKey), "{err}");
    // A typo is caught before any key is tried.
    let mut typed = f.recovery.to_display_string().to_string();
    let last = typed.pop().unwrap();
    typed.push(if last == 'A' { 'B' } else { 'A' });
    let err = RecoveryKey::parse(&typed).unwrap_err();
    assert!(
        matches!(err, VaultError::RecoveryKeyTypo(RecoveryKeyTypo::Checksum)),
        "{err}"
    );
    // Not our format at all.
    let err = FileReader::open(&b"\0\0\0\x18ftypisom"[..], &f.vault)
        .err()
        .unwrap();
    assert!(matches!(err, VaultError::NotVaultFile), "{err}");
}

/// The chunk (or the header, `None`) that holds byte `pos`.
fn chunk_at(file: &SealedFile, pos: usize) -> Option<u32> {
    let pos = pos as u64;
    file.locations
        .iter()
        .chain([&file.end])
        .find(|l| l.offset <= pos && pos < l.end())
        .map(|l| l.index)
}

#[test]
fn every_flipped_byte_is_detected_and_located() {
    let f = fixture();
    let fragments = fragments(3, 24, 6);
    let file = seal_file(&f.key, &fragments);
    for pos in 0..file.bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = file.bytes.clone();
            bad[pos] ^= mask;
            let (chunks, end) = read_all(&bad, &f.vault);
            let Err(err) = end else {
                panic!("flip {mask:#x} at {pos} undetected");
            };
            // Whatever was returned before the error is genuine.
            assert_eq!(chunks[..], fragments[..chunks.len()], "flip at {pos}");
            match chunk_at(&file, pos) {
                None => assert!(
                    matches!(
                        err,
                        VaultError::Corrupted { .. }
                            | VaultError::NotVaultFile
                            | VaultError::UnsupportedFormat { .. }
                    ),
                    "header flip at {pos}: {err}"
                ),
                Some(chunk) => assert!(
                    matches!(
                        err,
                        VaultError::Authentication { chunk: c }
                            | VaultError::BadChunkLength { chunk: c, .. } if c == chunk
                    ),
                    "flip {mask:#x} at {pos} (chunk {chunk}): {err}"
                ),
            }
            // The offline path detects it too.
            let offline = FileReader::open_with_recovery_key(&bad[..], &f.recovery)
                .and_then(|r| r.copy_to(&mut io::sink()));
            assert!(offline.is_err(), "offline: flip at {pos}");
        }
    }
}

#[test]
fn truncation_at_every_offset_yields_complete_chunks_then_incomplete() {
    let f = fixture();
    let fragments = fragments(3, 20, 7);
    let file = seal_file(&f.key, &fragments);
    for cut in 0..file.bytes.len() {
        let (chunks, end) = read_all(&file.bytes[..cut], &f.vault);
        let complete = file
            .locations
            .iter()
            .filter(|l| l.end() <= cut as u64)
            .count();
        assert_eq!(chunks, fragments[..complete], "cut at {cut}");
        match end {
            Err(VaultError::Incomplete { complete_chunks }) => {
                assert_eq!(complete_chunks as usize, complete, "cut at {cut}")
            }
            other => panic!("cut at {cut}: expected incomplete, got {other:?}"),
        }
    }
    let (chunks, end) = read_all(&file.bytes, &f.vault);
    end.unwrap();
    assert_eq!(chunks, fragments);
    let message = VaultError::Incomplete { complete_chunks: 2 }.to_string();
    assert!(message.contains("incomplete"), "{message}");
}

#[test]
fn chunks_cannot_be_reordered_dropped_or_moved_between_files() {
    let f = fixture();
    // Equal-length fragments, so swaps keep the framing intact and only the
    // cryptography can notice.
    let a = seal_file(&f.key, &fragments(3, 40, 8));
    let b = seal_file(&f.key, &fragments(3, 40, 9));
    let span = |file: &SealedFile, i: usize| {
        let l = file.locations[i];
        l.offset as usize..l.end() as usize
    };

    // Swap chunks 1 and 2 within a file.
    let mut swapped = a.bytes.clone();
    let (one, two) = (span(&a, 1), span(&a, 2));
    swapped[one.clone()].copy_from_slice(&a.bytes[two.clone()]);
    swapped[two].copy_from_slice(&a.bytes[one.clone()]);
    let (chunks, end) = read_all(&swapped, &f.vault);
    assert_eq!(chunks.len(), 1);
    assert!(matches!(end, Err(VaultError::Authentication { chunk: 1 })));

    // Chunk 1 of another file (same vault, same place, same length).
    let mut mixed = a.bytes.clone();
    mixed[one.clone()].copy_from_slice(&b.bytes[span(&b, 1)]);
    assert!(matches!(
        read_all(&mixed, &f.vault).1,
        Err(VaultError::Authentication { chunk: 1 })
    ));

    // Another file's header on this file's chunks.
    let mut rehead = a.bytes.clone();
    rehead[..HEADER_LEN].copy_from_slice(&b.bytes[..HEADER_LEN]);
    assert!(matches!(
        read_all(&rehead, &f.vault).1,
        Err(VaultError::Authentication { chunk: 0 })
    ));

    // Drop a middle chunk.
    let mut dropped = a.bytes.clone();
    dropped.drain(one);
    assert!(matches!(
        read_all(&dropped, &f.vault).1,
        Err(VaultError::Authentication { chunk: 1 })
    ));

    // Drop the end marker: incomplete, not "fine".
    let unended = &a.bytes[..a.end.offset as usize];
    assert!(matches!(
        read_all(unended, &f.vault),
        (chunks, Err(VaultError::Incomplete { complete_chunks: 4 })) if chunks.len() == 4
    ));

    // Move the end marker earlier: it cannot pass at another index.
    let mut early = a.bytes[..a.locations[2].offset as usize].to_vec();
    early.extend_from_slice(&a.bytes[a.end.offset as usize..]);
    assert!(matches!(
        read_all(&early, &f.vault).1,
        Err(VaultError::Authentication { chunk: 2 })
    ));

    // Anything after the end marker.
    let mut extended = a.bytes.clone();
    extended.extend_from_slice(&b.bytes[span(&b, 3)]);
    assert!(matches!(
        read_all(&extended, &f.vault).1,
        Err(VaultError::TrailingData { after_chunk: 4 })
    ));
}

#[test]
fn the_file_holds_no_plaintext_and_no_key() {
    let f = fixture();
    let fragments = fragments(3, 300, 10);
    let file = seal_file(&f.key, &fragments);
    let sk = secret_bytes(&f.vault);
    assert!(!contains(&file.bytes, &file.data_key), "data key");
    assert!(!contains(&file.bytes, &sk), "private key");
    assert!(!contains(
        &file.bytes,
        f.recovery.to_display_string().as_bytes()
    ));
    for fragment in &fragments {
        for window in fragment.windows(8) {
            assert!(!contains(&file.bytes, window), "plaintext {window:?}");
        }
    }
    for signature in [&b"ftyp"[..], b"moov", b"moof", b"mdat"] {
        assert!(!contains(&file.bytes, signature));
    }
    // The data key is really the one in use: it decrypts chunk 0.
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
    let header = &file.bytes[..HEADER_LEN];
    let l = file.locations[0];
    let body = &file.bytes[l.offset as usize + CHUNK_PREFIX_LEN..l.end() as usize];
    let nonce = [&header[42..61], &[0, 0, 0, 0, 0][..]].concat();
    let aad = [&header[245..277], &[0, 0, 0, 0][..]].concat();
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&file.data_key));
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(plain, fragments[0]);
    // And the end marker is an empty chunk with the last-chunk flag, as documented.
    let end = &file.bytes[file.end.offset as usize..];
    assert_eq!(end[..4], [0, 0, 0, 16]);
    let index = file.end.index.to_be_bytes();
    let nonce = [&header[42..61], &index[..], &[1][..]].concat();
    let aad = [&header[245..277], &index[..]].concat();
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &end[4..],
                aad: &aad,
            },
        )
        .unwrap();
    assert!(plain.is_empty());
}

/// Someone who rewrites a header field and recomputes the digest gets past the damage
/// check, but not past the chunks: each one authenticates the digest.
#[test]
fn a_rewritten_header_with_a_valid_digest_fails_at_the_first_chunk() {
    let f = fixture();
    let file = seal_file(&f.key, &fragments(2, 30, 12));
    // Kind (offset 9) and one nonce-prefix byte (offset 42), the sealed key untouched.
    for (at, value) in [
        (9usize, ContentKind::Thumbnail as u8),
        (42, file.bytes[42] ^ 1),
    ] {
        let mut forged = file.bytes.clone();
        forged[at] = value;
        let digest = crate::vault::crypto::sha256(&[&forged[..245]]);
        forged[245..HEADER_LEN].copy_from_slice(&digest);
        let (chunks, end) = read_all(&forged, &f.vault);
        assert!(chunks.is_empty());
        assert!(
            matches!(end, Err(VaultError::Authentication { chunk: 0 })),
            "field at {at}: {end:?}"
        );
    }
}

#[test]
fn thumbnails_as_blobs() {
    let f = fixture();
    let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0 a small picture \xff\xd9".to_vec();
    let sealed = seal_blob(&f.key, ContentKind::Thumbnail, &jpeg).unwrap();
    assert!(!contains(&sealed, b"JFIF"));
    assert_eq!(open_blob(&f.vault, &sealed).unwrap(), jpeg);
    let reader = FileReader::open(&sealed[..], &f.vault).unwrap();
    assert_eq!(reader.decryptor().kind(), ContentKind::Thumbnail);
    assert_eq!(
        open_blob(
            &f.vault,
            &seal_blob(&f.key, ContentKind::Thumbnail, b"").unwrap()
        )
        .unwrap(),
        b""
    );
    let other = fixture();
    assert!(matches!(
        open_blob(&other.vault, &sealed),
        Err(VaultError::WrongVault { .. })
    ));
}

#[test]
fn the_writer_refuses_empty_and_oversized_fragments() {
    let f = fixture();
    let mut sealer = FileSealer::new(&f.key, ContentKind::Segment).unwrap();
    assert!(matches!(
        sealer.seal_chunk(b""),
        Err(VaultError::EmptyChunk)
    ));
    let huge = vec![0u8; MAX_CHUNK_PLAINTEXT + 1];
    assert!(matches!(
        sealer.seal_chunk(&huge),
        Err(VaultError::ChunkTooLarge { .. })
    ));
    assert_eq!(sealer.chunks(), 0);
}

/// Accepts `budget` bytes, then fails like a full disk.
struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_stops_the_file() {
    let f = fixture();
    let mut writer = FileWriter::new(
        FailingWriter {
            budget: HEADER_LEN + 10,
        },
        &f.key,
        ContentKind::Segment,
    )
    .unwrap();
    assert!(matches!(writer.append(&[1; 100]), Err(VaultError::Io(_))));
    assert!(matches!(writer.append(&[1; 5]), Err(VaultError::Poisoned)));
    assert!(matches!(writer.finish(), Err(VaultError::Poisoned)));
}

#[test]
fn each_file_gets_its_own_data_key_and_nonce_prefix() {
    let f = fixture();
    let fragments = fragments(1, 10, 11);
    let a = seal_file(&f.key, &fragments);
    let b = seal_file(&f.key, &fragments);
    assert_ne!(a.data_key, b.data_key);
    assert_ne!(a.bytes[42..61], b.bytes[42..61]);
    assert_ne!(a.bytes[HEADER_LEN..], b.bytes[HEADER_LEN..]);
}

/// Unlocking runs on the password-hashing thread and the result moves to the I/O loop.
#[test]
fn keys_and_files_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<VaultRecord>();
    send_sync::<UnlockedVault>();
    send_sync::<RecoveryKey>();
    send_sync::<SealingKey>();
    send_sync::<FileSealer>();
    send_sync::<FileDecryptor>();
}
