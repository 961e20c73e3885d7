//! The bytes before the payloads: header, manifest, signature block.
//!
//! ```text
//! offset          size  field
//! 0               8     magic "MECAMOTA"
//! 8               2     format version, u16 big-endian (1)
//! 10              2     flags, u16 big-endian, must be 0
//! 12              4     manifest length M, u32 big-endian, 1..=65536
//! 16              M     manifest: canonical compact JSON (see `manifest`)
//! 16+M            8     key id: first 8 bytes of SHA-256(Ed25519 public key); zero if unsigned
//! 24+M            64    Ed25519 signature over bytes 0..16+M; zero if unsigned
//! 88+M            ...   payloads, concatenated in manifest order, sizes from the manifest
//! ```
//!
//! The signature covers the header too, so the format version and flags cannot be
//! changed under it; the payloads are covered through their SHA-256 in the manifest.
//! Putting the manifest first lets a verifier decide everything before it sees a single
//! payload byte, and bounding its length lets it do so in 64 KiB of memory.

use std::io::{self, Read};

use crate::error::{OtaError, Section};
use crate::keys::{KeyId, SigningKey, TrustedKeys};
use crate::manifest::Manifest;
use crate::verify::check_signature;

pub const MAGIC: [u8; 8] = *b"MECAMOTA";
/// The only format version this code reads or writes.
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 16;
/// Ample for 16 payloads, small enough to buffer on the device before trusting it.
pub const MAX_MANIFEST_LEN: u32 = 64 * 1024;
pub const SIGNATURE_LEN: usize = 64;
pub const SIGNATURE_BLOCK_LEN: usize = KeyId::LEN + SIGNATURE_LEN;

/// The fixed-size start of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: u16,
    pub manifest_len: u32,
}

impl Header {
    /// Checks everything that can be checked in the first 16 bytes, so that a hostile
    /// length is refused before anything is allocated for it.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, OtaError> {
        let (magic, rest) = bytes.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(OtaError::BadMagic);
        }
        let format = u16::from_be_bytes([rest[0], rest[1]]);
        let flags = u16::from_be_bytes([rest[2], rest[3]]);
        let manifest_len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if format != FORMAT_VERSION {
            return Err(OtaError::UnsupportedFormat { found: format });
        }
        if flags != 0 {
            return Err(OtaError::UnknownFlags { flags });
        }
        if manifest_len == 0 || manifest_len > MAX_MANIFEST_LEN {
            return Err(OtaError::ManifestLength { len: manifest_len });
        }
        Ok(Header {
            format,
            manifest_len,
        })
    }

    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&self.format.to_be_bytes());
        // 10..12: flags, zero.
        out[12..16].copy_from_slice(&self.manifest_len.to_be_bytes());
        out
    }
}

/// Who signed, and the signature. All zero for an unsigned bundle (`create` without a
/// key), which `sign` fills in place without changing any other byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureBlock {
    pub key_id: KeyId,
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignatureBlock {
    pub const UNSIGNED: SignatureBlock = SignatureBlock {
        key_id: KeyId([0; KeyId::LEN]),
        signature: [0; SIGNATURE_LEN],
    };

    pub fn parse(bytes: &[u8; SIGNATURE_BLOCK_LEN]) -> Self {
        let mut key_id = [0u8; KeyId::LEN];
        let mut signature = [0u8; SIGNATURE_LEN];
        key_id.copy_from_slice(&bytes[..KeyId::LEN]);
        signature.copy_from_slice(&bytes[KeyId::LEN..]);
        SignatureBlock {
            key_id: KeyId(key_id),
            signature,
        }
    }

    pub fn to_bytes(&self) -> [u8; SIGNATURE_BLOCK_LEN] {
        let mut out = [0u8; SIGNATURE_BLOCK_LEN];
        out[..KeyId::LEN].copy_from_slice(&self.key_id.0);
        out[KeyId::LEN..].copy_from_slice(&self.signature);
        out
    }

    pub fn is_unsigned(&self) -> bool {
        *self == Self::UNSIGNED
    }
}

/// The message the signature is over: header followed by manifest bytes.
pub fn signed_message(header: &Header, manifest_bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + manifest_bytes.len());
    msg.extend_from_slice(&header.to_bytes());
    msg.extend_from_slice(manifest_bytes);
    msg
}

/// Everything before the payloads, as parsed from or written to a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prelude {
    pub header: Header,
    /// Exactly the bytes in the bundle (canonical, so equal to `manifest.to_bytes()`).
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub signature: SignatureBlock,
}

impl Prelude {
    /// Builds the prelude for `manifest`, signed with `key` or unsigned.
    pub fn new(manifest: Manifest, key: Option<&SigningKey>) -> Result<Self, OtaError> {
        let manifest_bytes = manifest.to_bytes()?;
        // Cannot happen for a valid manifest (16 payloads with 64-character names fit in
        // a few KiB), but the header must never promise what a device would refuse.
        let manifest_len = u32::try_from(manifest_bytes.len()).unwrap_or(u32::MAX);
        if manifest_len > MAX_MANIFEST_LEN {
            return Err(OtaError::ManifestLength { len: manifest_len });
        }
        let header = Header {
            format: FORMAT_VERSION,
            manifest_len,
        };
        let mut prelude = Prelude {
            header,
            manifest_bytes,
            manifest,
            signature: SignatureBlock::UNSIGNED,
        };
        if let Some(key) = key {
            prelude.sign(key);
        }
        Ok(prelude)
    }

    /// Replaces the signature block with one by `key`.
    pub fn sign(&mut self, key: &SigningKey) {
        let msg = signed_message(&self.header, &self.manifest_bytes);
        self.signature = SignatureBlock {
            key_id: key.key_id(),
            signature: key.sign(&msg),
        };
    }

    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.header, &self.manifest_bytes)
    }

    /// Reads the prelude from a blocking reader, leaving it at the first payload byte.
    ///
    /// The manifest is parsed and validated but the signature is **not** checked: this
    /// is for tools that look at unsigned or foreign bundles (`sign`, `inspect`). Call
    /// [`Prelude::verify_signature`] before trusting anything in it.
    pub fn read<R: Read>(reader: &mut R) -> Result<Self, OtaError> {
        let mut header = [0u8; HEADER_LEN];
        read_section(reader, &mut header, Section::Header)?;
        let header = Header::parse(&header)?;
        // Bounded by `Header::parse`.
        let mut manifest_bytes = vec![0u8; header.manifest_len as usize];
        read_section(reader, &mut manifest_bytes, Section::Manifest)?;
        let mut block = [0u8; SIGNATURE_BLOCK_LEN];
        read_section(reader, &mut block, Section::SignatureBlock)?;
        let manifest = Manifest::from_bytes(&manifest_bytes, header.format)?;
        Ok(Prelude {
            header,
            manifest_bytes,
            manifest,
            signature: SignatureBlock::parse(&block),
        })
    }

    /// Checks the signature against `keys`; returns the signer's id.
    pub fn verify_signature(&self, keys: &TrustedKeys) -> Result<KeyId, OtaError> {
        check_signature(keys, &self.header, &self.manifest_bytes, &self.signature)
    }

    /// Offset of the first payload byte.
    pub fn payload_offset(&self) -> u64 {
        (HEADER_LEN + self.manifest_bytes.len() + SIGNATURE_BLOCK_LEN) as u64
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.manifest_bytes.len() + SIGNATURE_BLOCK_LEN);
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.manifest_bytes);
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }
}

/// Fills `buf` from `reader`; a short read is reported as truncation of `section`.
pub(crate) fn read_section<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    section: Section,
) -> Result<(), OtaError> {
    let got = read_full(reader, buf)?;
    if got < buf.len() {
        return Err(OtaError::Truncated {
            section,
            got: got as u64,
            expected: buf.len() as u64,
        });
    }
    Ok(())
}

/// Reads until `buf` is full or the reader ends; returns the byte count.
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: u16, flags: u16, len: u32) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&format.to_be_bytes());
        b[10..12].copy_from_slice(&flags.to_be_bytes());
        b[12..].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            format: 1,
            manifest_len: 0x0102,
        };
        let bytes = h.to_bytes();
        assert_eq!(&bytes, b"MECAMOTA\x00\x01\x00\x00\x00\x00\x01\x02");
        assert_eq!(Header::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn header_refusals() {
        let mut bad_magic = header(1, 0, 10);
        bad_magic[0] = b'X';
        assert!(matches!(Header::parse(&bad_magic), Err(OtaError::BadMagic)));
        assert!(matches!(
            Header::parse(&header(2, 0, 10)),
            Err(OtaError::UnsupportedFormat { found: 2 })
        ));
        assert!(matches!(
            Header::parse(&header(1, 1, 10)),
            Err(OtaError::UnknownFlags { flags: 1 })
        ));
        for len in [0, MAX_MANIFEST_LEN + 1, u32::MAX] {
            assert!(matches!(
                Header::parse(&header(1, 0, len)),
                Err(OtaError::ManifestLength { .. })
            ));
        }
        assert!(Header::parse(&header(1, 0, MAX_MANIFEST_LEN)).is_ok());
    }

    #[test]
    fn signature_block_round_trip() {
        let block = SignatureBlock {
            key_id: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            signature: [9; SIGNATURE_LEN],
        };
        assert_eq!(SignatureBlock::parse(&block.to_bytes()), block);
        assert!(!block.is_unsigned());
        assert!(SignatureBlock::parse(&[0; SIGNATURE_BLOCK_LEN]).is_unsigned());
    }
}
