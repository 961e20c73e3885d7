//! Streaming verification: a push-based (sans-IO) state machine, and a blocking
//! `Read` front end built on it.
//!
//! The device feeds HTTP body chunks of any size as they arrive; the verifier keeps at
//! most the 16-byte header, the manifest (≤ 64 KiB) and the 72-byte signature block,
//! and passes payload bytes through as slices of the caller's chunk — no copies, and
//! memory does not grow with the bundle.
//!
//! Guarantees, in stream order:
//! 1. No event at all before the signature has been checked against a trusted key and
//!    the manifest parsed; the first event is always [`Event::ManifestVerified`].
//! 2. Each payload's bytes arrive as [`Event::PayloadData`] between its
//!    [`Event::PayloadStart`] and [`Event::PayloadEnd`]; `PayloadEnd` is only emitted
//!    once size and SHA-256 match the manifest.
//! 3. Payload bytes are released *before* their hash can be known (that is what
//!    streaming means): the device writes them to the inactive slot only and must not
//!    boot it unless [`BundleVerifier::finish`] returns `Ok`.
//! 4. The bundle is complete only when `finish` says so: trailing data and truncation
//!    can only be told apart from "more to come" at the end of the stream.
//!
//! After any error the verifier is poisoned and refuses further input.

use std::io::{self, Read};
use std::mem;

use ring::digest;

use crate::error::{OtaError, Section};
use crate::format::{HEADER_LEN, Header, SIGNATURE_BLOCK_LEN, SignatureBlock, signed_message};
use crate::keys::{KeyId, TrustedKeys};
use crate::manifest::{Manifest, PayloadKind, Sha256};

/// What the verifier found in the bytes pushed so far. `'a` is the pushed chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The header and manifest are signed by `key_id`, a trusted key, and the manifest
    /// is valid. Always the first event. Check the install policy here.
    ManifestVerified { manifest: Manifest, key_id: KeyId },
    /// Payload `index` (in `manifest.payloads`) begins.
    PayloadStart {
        index: usize,
        kind: PayloadKind,
        size: u64,
    },
    /// The next bytes of payload `index`, borrowed from the pushed chunk.
    PayloadData { index: usize, data: &'a [u8] },
    /// Payload `index` is complete and its size and SHA-256 match the manifest.
    PayloadEnd { index: usize, sha256: Sha256 },
}

/// The result of a complete, valid bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    pub key_id: KeyId,
    /// Bundle length in bytes.
    pub len: u64,
}

/// The push-based verifier. See the module documentation for its guarantees.
///
/// ```no_run
/// # fn chunks() -> Vec<Vec<u8>> { Vec::new() }
/// use mecam_ota::{BundleVerifier, Event, TrustedKeys};
/// let keys = TrustedKeys::load_dir("/etc/mecam/ota-keys".as_ref())?;
/// let mut verifier = BundleVerifier::new(keys);
/// for chunk in chunks() {
///     for event in verifier.push(&chunk)? {
///         match event {
///             Event::ManifestVerified { manifest, .. } => { /* check_install(...) */ }
///             Event::PayloadData { index, data } => { /* write `data` to the slot */ }
///             _ => {}
///         }
///     }
/// }
/// let bundle = verifier.finish()?; // only now is the slot trustworthy
/// # Ok::<(), mecam_ota::OtaError>(())
/// ```
#[derive(Debug)]
pub struct BundleVerifier {
    keys: TrustedKeys,
    state: State,
    /// Bytes consumed so far.
    offset: u64,
    /// Set once the signature and manifest have been verified.
    verified: Option<Verified>,
}

#[derive(Debug)]
struct Verified {
    manifest: Manifest,
    key_id: KeyId,
    /// Offset of the first payload byte.
    prelude_len: u64,
}

#[derive(Debug)]
enum State {
    Header {
        buf: [u8; HEADER_LEN],
        filled: usize,
    },
    Manifest {
        header: Header,
        buf: Vec<u8>,
    },
    Signature {
        header: Header,
        manifest_bytes: Vec<u8>,
        buf: [u8; SIGNATURE_BLOCK_LEN],
        filled: usize,
    },
    Payload {
        index: usize,
        remaining: u64,
        hasher: Hasher,
    },
    Done,
    Failed,
}

/// `ring`'s context is not `Debug`.
#[derive(Clone)]
struct Hasher(digest::Context);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(SHA-256)")
    }
}

impl BundleVerifier {
    pub fn new(keys: TrustedKeys) -> Self {
        BundleVerifier {
            keys,
            state: State::Header {
                buf: [0; HEADER_LEN],
                filled: 0,
            },
            offset: 0,
            verified: None,
        }
    }

    /// Consumes `chunk` (any size, including empty) and returns what it completed.
    pub fn push<'a>(&mut self, chunk: &'a [u8]) -> Result<Vec<Event<'a>>, OtaError> {
        let mut events = Vec::new();
        match self.advance(chunk, &mut events) {
            Ok(()) => Ok(events),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Ends the stream: `Ok` only if the whole bundle arrived and nothing after it.
    pub fn finish(self) -> Result<VerifiedBundle, OtaError> {
        let (section, got, expected) = match self.state {
            State::Done => {
                let v = self.verified.ok_or(OtaError::Poisoned)?;
                return Ok(VerifiedBundle {
                    manifest: v.manifest,
                    key_id: v.key_id,
                    len: self.offset,
                });
            }
            State::Failed => return Err(OtaError::Poisoned),
            State::Header { filled, .. } => (Section::Header, filled as u64, HEADER_LEN as u64),
            State::Manifest { header, buf } => (
                Section::Manifest,
                buf.len() as u64,
                u64::from(header.manifest_len),
            ),
            State::Signature { filled, .. } => (
                Section::SignatureBlock,
                filled as u64,
                SIGNATURE_BLOCK_LEN as u64,
            ),
            State::Payload {
                index, remaining, ..
            } => {
                let (name, size) = self.payload(index).map(|p| (p.name.clone(), p.size))?;
                (Section::Payload(name), size - remaining, size)
            }
        };
        Err(OtaError::Truncated {
            section,
            got,
            expected,
        })
    }

    /// The verified manifest, once [`Event::ManifestVerified`] has been emitted.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.verified.as_ref().map(|v| &v.manifest)
    }

    /// Bytes consumed so far, for progress reports.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The whole bundle's length, once the manifest is verified.
    pub fn expected_len(&self) -> Option<u64> {
        let v = self.verified.as_ref()?;
        v.manifest.payload_bytes().ok()?.checked_add(v.prelude_len)
    }

    fn advance<'a>(
        &mut self,
        mut input: &'a [u8],
        events: &mut Vec<Event<'a>>,
    ) -> Result<(), OtaError> {
        loop {
            match &mut self.state {
                State::Failed => return Err(OtaError::Poisoned),
                State::Header { buf, filled } => {
                    self.offset += fill(buf, filled, &mut input);
                    if *filled < HEADER_LEN {
                        return Ok(());
                    }
                    // Refuses a hostile length before allocating for it.
                    let header = Header::parse(buf)?;
                    self.state = State::Manifest {
                        header,
                        buf: Vec::with_capacity(header.manifest_len as usize),
                    };
                }
                State::Manifest { header, buf } => {
                    let want = header.manifest_len as usize - buf.len();
                    let (taken, rest) = input.split_at(want.min(input.len()));
                    buf.extend_from_slice(taken);
                    input = rest;
                    self.offset += taken.len() as u64;
                    if buf.len() < header.manifest_len as usize {
                        return Ok(());
                    }
                    self.state = State::Signature {
                        header: *header,
                        manifest_bytes: mem::take(buf),
                        buf: [0; SIGNATURE_BLOCK_LEN],
                        filled: 0,
                    };
                }
                State::Signature {
                    header,
                    manifest_bytes,
                    buf,
                    filled,
                } => {
                    self.offset += fill(buf, filled, &mut input);
                    if *filled < SIGNATURE_BLOCK_LEN {
                        return Ok(());
                    }
                    let block = SignatureBlock::parse(buf);
                    // Signature first: the manifest is not even parsed until it is
                    // known to come from a trusted key.
                    let key_id = check_signature(&self.keys, header, manifest_bytes, &block)?;
                    let manifest = Manifest::from_bytes(manifest_bytes, header.format)?;
                    events.push(Event::ManifestVerified {
                        manifest: manifest.clone(),
                        key_id,
                    });
                    self.verified = Some(Verified {
                        manifest,
                        key_id,
                        prelude_len: self.offset,
                    });
                    self.state = self.start_payload(0, events);
                }
                State::Payload {
                    index,
                    remaining,
                    hasher,
                } => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                    let (data, rest) = input.split_at(n);
                    hasher.0.update(data);
                    events.push(Event::PayloadData {
                        index: *index,
                        data,
                    });
                    input = rest;
                    self.offset += n as u64;
                    *remaining -= n as u64;
                    if *remaining > 0 {
                        return Ok(());
                    }
                    let index = *index;
                    let actual = Sha256::from_digest(&hasher.clone().0.finish());
                    let expected = self.payload(index)?;
                    if actual != expected.sha256 {
                        return Err(OtaError::PayloadHash {
                            name: expected.name.clone(),
                            expected: expected.sha256,
                            actual,
                        });
                    }
                    events.push(Event::PayloadEnd {
                        index,
                        sha256: actual,
                    });
                    self.state = self.start_payload(index + 1, events);
                }
                State::Done => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    return Err(OtaError::TrailingData {
                        offset: self.offset,
                    });
                }
            }
        }
    }

    /// The state for payload `index`, or `Done` after the last one.
    fn start_payload(&self, index: usize, events: &mut Vec<Event<'_>>) -> State {
        match self.payload(index) {
            Ok(p) => {
                events.push(Event::PayloadStart {
                    index,
                    kind: p.kind,
                    size: p.size,
                });
                State::Payload {
                    index,
                    // Never zero: the manifest refuses empty payloads.
                    remaining: p.size,
                    hasher: Hasher(digest::Context::new(&digest::SHA256)),
                }
            }
            Err(_) => State::Done,
        }
    }

    fn payload(&self, index: usize) -> Result<&crate::manifest::PayloadInfo, OtaError> {
        self.manifest()
            .and_then(|m| m.payloads.get(index))
            .ok_or(OtaError::Poisoned)
    }
}

/// Copies from `input` into `buf[*filled..]`; returns the byte count.
fn fill<const N: usize>(buf: &mut [u8; N], filled: &mut usize, input: &mut &[u8]) -> u64 {
    let n = (N - *filled).min(input.len());
    buf[*filled..*filled + n].copy_from_slice(&input[..n]);
    *filled += n;
    *input = &input[n..];
    n as u64
}

/// Checks `block` against `keys`; returns the signer's id.
pub fn check_signature(
    keys: &TrustedKeys,
    header: &Header,
    manifest_bytes: &[u8],
    block: &SignatureBlock,
) -> Result<KeyId, OtaError> {
    if block.is_unsigned() {
        return Err(OtaError::Unsigned);
    }
    let key = keys
        .get(block.key_id)
        .ok_or_else(|| OtaError::UntrustedKey {
            key_id: block.key_id,
            trusted: keys.ids(),
        })?;
    if key.verify(&signed_message(header, manifest_bytes), &block.signature) {
        Ok(block.key_id)
    } else {
        Err(OtaError::BadSignature {
            key_id: block.key_id,
        })
    }
}

/// Verifies a whole bundle from a blocking reader, passing each event to `on_event`
/// (which may write payloads somewhere). Reads 64 KiB at a time.
pub fn verify_reader<R: Read>(
    mut reader: R,
    keys: TrustedKeys,
    mut on_event: impl FnMut(Event<'_>) -> io::Result<()>,
) -> Result<VerifiedBundle, OtaError> {
    let mut verifier = BundleVerifier::new(keys);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return verifier.finish(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        for event in verifier.push(&buf[..n])? {
            on_event(event)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_takes_only_what_fits() {
        let mut buf = [0u8; 4];
        let mut filled = 0;
        let mut input: &[u8] = b"ab";
        assert_eq!(fill(&mut buf, &mut filled, &mut input), 2);
        assert!(input.is_empty());
        let mut input: &[u8] = b"cdef";
        assert_eq!(fill(&mut buf, &mut filled, &mut input), 2);
        assert_eq!((&buf, filled, input), (b"abcd", 4, &b"ef"[..]));
    }

    #[test]
    fn an_empty_stream_is_a_truncated_header() {
        let err = BundleVerifier::new(TrustedKeys::default())
            .finish()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bundle is truncated: the header ends after 0 of 16 bytes"
        );
    }

    #[test]
    fn no_trusted_keys_means_nothing_verifies() {
        let key =
            crate::SigningKey::from_pkcs8(&crate::SigningKey::generate_pkcs8().unwrap()).unwrap();
        let prelude = crate::Prelude::new(crate::manifest::tests::sample(), Some(&key)).unwrap();
        let err = BundleVerifier::new(TrustedKeys::default())
            .push(&prelude.to_bytes())
            .unwrap_err();
        assert!(err.to_string().ends_with("(trusted: none)"), "{err}");
    }
}
