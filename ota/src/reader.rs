//! Pull-based verification: a [`BundleReader`] over any blocking `Read`.
//!
//! The same guarantees as the push-based [`BundleVerifier`](crate::BundleVerifier), in
//! the shape an installer with a blocking source wants (a file, a pipe, a body reader
//! on its own thread): `io::copy` each payload straight into a partition.
//!
//! 1. [`BundleReader::open`] reads the header, the manifest and the signature block
//!    (at most 16 + 65536 + 72 bytes, the length refused before anything is allocated
//!    for it), checks the signature against the trusted keys *before* parsing the
//!    manifest, then applies the install policy (product, board, downgrade). No payload
//!    byte has been read when it returns.
//! 2. [`BundleReader::next_payload`] hands out each payload as a [`PayloadReader`] that
//!    hashes what passes through it and fails the read that reaches the payload's end
//!    if the SHA-256 differs, or any read that finds the stream ended early.
//! 3. [`BundleReader::finish`] drains and checks whatever payloads were not read and
//!    refuses data after the last one. As with the push API, payload bytes are handed
//!    out before their hash is known: nothing may boot them unless `finish` is `Ok`.
//!
//! Errors from a `PayloadReader` are `io::Error`s (it is a `Read`); converting one into
//! [`OtaError`] with `?` or `From` recovers the precise reason.

use std::io::{self, Read};

use ring::digest;

use crate::error::{OtaError, Section};
use crate::format::{
    HEADER_LEN, Header, SIGNATURE_BLOCK_LEN, SignatureBlock, read_full, read_section,
};
use crate::keys::{KeyId, TrustedKeys};
use crate::manifest::{Manifest, PayloadInfo, Sha256};
use crate::policy::check_install;
use crate::verify::{VerifiedBundle, check_signature};
use crate::version::Version;

/// What the bundle must fit: the device it is about to be installed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// This device's board, e.g. `rpi-zero2w`.
    pub board: String,
    /// The version running now.
    pub current: Version,
    /// Allow a downgrade or a reinstall of the running version (never another board).
    pub force: bool,
}

/// A bundle whose signature, manifest and install policy have been checked, read one
/// payload after another. See the module documentation.
#[derive(Debug)]
pub struct BundleReader<R> {
    inner: R,
    manifest: Manifest,
    key_id: KeyId,
    /// Offset of the next byte `inner` yields.
    offset: u64,
    /// Index of the next payload to hand out.
    next: usize,
    current: Option<Current>,
    /// Set by the first error: a refused bundle stays refused.
    failed: bool,
}

/// The payload being read.
#[derive(Debug)]
struct Current {
    index: usize,
    remaining: u64,
    hasher: Hasher,
}

/// `ring`'s context is not `Debug`.
struct Hasher(digest::Context);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(SHA-256)")
    }
}

impl<R: Read> BundleReader<R> {
    /// Reads and verifies everything before the first payload; see the module docs.
    /// `target: None` skips the install policy (host tools that only check signatures).
    pub fn open(
        mut inner: R,
        keys: &TrustedKeys,
        target: Option<&InstallTarget>,
    ) -> Result<Self, OtaError> {
        let mut header = [0u8; HEADER_LEN];
        read_section(&mut inner, &mut header, Section::Header)?;
        // Refuses a hostile length before allocating for it.
        let header = Header::parse(&header)?;
        let mut manifest_bytes = vec![0u8; header.manifest_len as usize];
        read_section(&mut inner, &mut manifest_bytes, Section::Manifest)?;
        let mut block = [0u8; SIGNATURE_BLOCK_LEN];
        read_section(&mut inner, &mut block, Section::SignatureBlock)?;
        // The manifest is not even parsed until it is known to come from a trusted key.
        let key_id = check_signature(
            keys,
            &header,
            &manifest_bytes,
            &SignatureBlock::parse(&block),
        )?;
        let manifest = Manifest::from_bytes(&manifest_bytes, header.format)?;
        if let Some(t) = target {
            check_install(&manifest, &t.current, &t.board, t.force)?;
        }
        Ok(BundleReader {
            inner,
            manifest,
            key_id,
            offset: (HEADER_LEN + manifest_bytes.len() + SIGNATURE_BLOCK_LEN) as u64,
            next: 0,
            current: None,
            failed: false,
        })
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The trusted key that signed the bundle.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Bytes of the bundle consumed so far, for progress reports.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The next payload, or `None` after the last. Whatever was left unread of the
    /// previous payload is read and checked first, so skipping one cannot skip its
    /// verification.
    pub fn next_payload(&mut self) -> Result<Option<PayloadReader<'_, R>>, OtaError> {
        if self.failed {
            return Err(OtaError::Poisoned);
        }
        self.drain_current()?;
        let Some(info) = self.manifest.payloads.get(self.next) else {
            return Ok(None);
        };
        self.current = Some(Current {
            index: self.next,
            // Never zero: the manifest refuses empty payloads.
            remaining: info.size,
            hasher: Hasher(digest::Context::new(&digest::SHA256)),
        });
        self.next += 1;
        Ok(Some(PayloadReader { bundle: self }))
    }

    /// Reads and checks any payloads not yet read, then requires the stream to end.
    /// `Ok` is the only proof that the whole bundle is intact.
    pub fn finish(mut self) -> Result<VerifiedBundle, OtaError> {
        // `next_payload` refuses after any earlier error, so reaching `None` means
        // every payload arrived whole and matched.
        while self.next_payload()?.is_some() {}
        if read_full(&mut self.inner, &mut [0u8; 1])? != 0 {
            return Err(OtaError::TrailingData {
                offset: self.offset,
            });
        }
        Ok(VerifiedBundle {
            manifest: self.manifest,
            key_id: self.key_id,
            len: self.offset,
        })
    }

    fn drain_current(&mut self) -> Result<(), OtaError> {
        let mut buf = [0u8; 8 * 1024];
        while self.current.is_some() {
            self.read_payload(&mut buf)?;
        }
        Ok(())
    }

    /// One read of the current payload; after an error, every later call fails too.
    fn read_payload(&mut self, buf: &mut [u8]) -> Result<usize, OtaError> {
        if self.failed {
            return Err(OtaError::Poisoned);
        }
        let result = self.read_payload_once(buf);
        self.failed = result.is_err();
        result
    }

    /// Clears `current` once the payload is complete and its hash matches.
    fn read_payload_once(&mut self, buf: &mut [u8]) -> Result<usize, OtaError> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(0);
        };
        let want = usize::try_from(cur.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        let info = &self.manifest.payloads[cur.index];
        if n == 0 {
            return Err(OtaError::Truncated {
                section: Section::Payload(info.name.clone()),
                got: info.size - cur.remaining,
                expected: info.size,
            });
        }
        cur.hasher.0.update(&buf[..n]);
        cur.remaining -= n as u64;
        self.offset += n as u64;
        if cur.remaining == 0 {
            let actual = Sha256::from_digest(&cur.hasher.0.clone().finish());
            self.current = None;
            if actual != info.sha256 {
                return Err(OtaError::PayloadHash {
                    name: info.name.clone(),
                    expected: info.sha256,
                    actual,
                });
            }
        }
        Ok(n)
    }
}

/// One payload of a [`BundleReader`], as a `Read` that yields exactly the payload's
/// bytes, hashing them on the way. The read that completes the payload fails if its
/// SHA-256 differs from the manifest's; a stream that ends early fails with
/// `UnexpectedEof`. Both carry an [`OtaError`] (`OtaError::from` recovers it).
#[derive(Debug)]
pub struct PayloadReader<'a, R> {
    bundle: &'a mut BundleReader<R>,
}

impl<R: Read> PayloadReader<'_, R> {
    /// What the manifest says about this payload.
    pub fn info(&self) -> &PayloadInfo {
        // `next` was advanced past this payload when the reader was made.
        &self.bundle.manifest.payloads[self.bundle.next - 1]
    }

    /// Bytes of this payload not yet read.
    pub fn remaining(&self) -> u64 {
        self.bundle.current.as_ref().map_or(0, |c| c.remaining)
    }
}

impl<R: Read> Read for PayloadReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bundle.read_payload(buf).map_err(|e| {
            let kind = match e {
                OtaError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
                OtaError::Io(e) => return e,
                _ => io::ErrorKind::InvalidData,
            };
            io::Error::new(kind, e)
        })
    }
}
