//! The byte layout of an encrypted file (segment or thumbnail). The layout is described
//! in the module documentation of `vault`; this file is its single source of truth in
//! code: the header's fields and offsets, and how a chunk's nonce and associated data
//! are formed.

use super::crypto::{self, NONCE_LEN, TAG_LEN};
use super::error::VaultError;
use super::keys::RecordingPublicKey;
use super::recovery::{RECOVERY_WRAP_LEN, RecoveryWrap};
use super::seal::SEALED_KEY_LEN;

pub const MAGIC: [u8; 8] = *b"MECAMENC";
pub const FORMAT_VERSION: u8 = 1;

pub(crate) const NONCE_PREFIX_LEN: usize = NONCE_LEN - 4 - 1;
const DIGEST_LEN: usize = 32;

// Header field offsets.
const AT_VERSION: usize = MAGIC.len();
const AT_KIND: usize = AT_VERSION + 1;
const AT_PUBLIC_KEY: usize = AT_KIND + 1;
const AT_NONCE_PREFIX: usize = AT_PUBLIC_KEY + 32;
const AT_SEALED_KEY: usize = AT_NONCE_PREFIX + NONCE_PREFIX_LEN;
const AT_RECOVERY: usize = AT_SEALED_KEY + SEALED_KEY_LEN;
const AT_DIGEST: usize = AT_RECOVERY + RECOVERY_WRAP_LEN;
/// Bytes before the first chunk (277 in version 1).
pub const HEADER_LEN: usize = AT_DIGEST + DIGEST_LEN;

/// Bytes of a chunk's length prefix.
pub const CHUNK_PREFIX_LEN: usize = 4;
/// Largest plaintext in one chunk. A fragment is one GOP (a few MB at most); the limit
/// keeps a damaged length field from making a reader allocate gigabytes.
pub const MAX_CHUNK_PLAINTEXT: usize = 64 << 20;
/// Smallest framed data chunk: prefix, one byte, tag. Used to bound searches.
pub(crate) const MIN_DATA_CHUNK: usize = CHUNK_PREFIX_LEN + 1 + TAG_LEN;
/// The end marker as stored: a prefix saying "tag only", then the tag.
pub(crate) const END_MARKER_LEN: usize = CHUNK_PREFIX_LEN + TAG_LEN;

/// What an encrypted file holds, recorded in its header (and so authenticated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ContentKind {
    /// A recording segment: chunk 0 the fMP4 init segment, then one fragment per chunk.
    Segment = 1,
    /// An event thumbnail (one JPEG).
    Thumbnail = 2,
}

impl ContentKind {
    fn from_byte(byte: u8) -> Result<Self, VaultError> {
        match byte {
            1 => Ok(Self::Segment),
            2 => Ok(Self::Thumbnail),
            found => Err(VaultError::UnknownKind { found }),
        }
    }
}

/// The parsed header of an encrypted file.
pub(crate) struct Header {
    pub kind: ContentKind,
    pub public_key: RecordingPublicKey,
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub sealed_key: [u8; SEALED_KEY_LEN],
    pub recovery: RecoveryWrap,
    /// SHA-256 of every header byte before it. Checked on parse (damage), and bound
    /// into every chunk's associated data (tampering: only the data key holder could
    /// make chunks that verify against a different header).
    pub digest: [u8; DIGEST_LEN],
}

impl Header {
    pub fn encode(
        kind: ContentKind,
        public_key: &RecordingPublicKey,
        nonce_prefix: &[u8; NONCE_PREFIX_LEN],
        sealed_key: &[u8; SEALED_KEY_LEN],
        recovery: &RecoveryWrap,
    ) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..AT_VERSION].copy_from_slice(&MAGIC);
        out[AT_VERSION] = FORMAT_VERSION;
        out[AT_KIND] = kind as u8;
        out[AT_PUBLIC_KEY..AT_NONCE_PREFIX].copy_from_slice(public_key.as_bytes());
        out[AT_NONCE_PREFIX..AT_SEALED_KEY].copy_from_slice(nonce_prefix);
        out[AT_SEALED_KEY..AT_RECOVERY].copy_from_slice(sealed_key);
        out[AT_RECOVERY..AT_DIGEST].copy_from_slice(&recovery.to_bytes());
        let digest = crypto::sha256(&[&out[..AT_DIGEST]]);
        out[AT_DIGEST..].copy_from_slice(&digest);
        out
    }

    /// Parses the start of a file. `bytes` may be shorter than a header (a file cut off
    /// while its header was being written reads as incomplete) or longer (the rest is
    /// ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self, VaultError> {
        const INCOMPLETE: VaultError = VaultError::Incomplete { complete_chunks: 0 };
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(VaultError::NotVaultFile);
        }
        // The version decides the header's length, so it is read before that is known.
        match bytes.get(AT_VERSION) {
            None => return Err(INCOMPLETE),
            Some(&FORMAT_VERSION) => {}
            Some(&found) => return Err(VaultError::UnsupportedFormat { found }),
        }
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            return Err(INCOMPLETE);
        };
        if crypto::sha256(&[&bytes[..AT_DIGEST]])[..] != bytes[AT_DIGEST..] {
            return Err(VaultError::corrupted(
                "the file header",
                "checksum mismatch",
            ));
        }
        let field = |from: usize, to: usize| &bytes[from..to];
        Ok(Self {
            kind: ContentKind::from_byte(bytes[AT_KIND])?,
            public_key: RecordingPublicKey(array(field(AT_PUBLIC_KEY, AT_NONCE_PREFIX))),
            nonce_prefix: array(field(AT_NONCE_PREFIX, AT_SEALED_KEY)),
            sealed_key: array(field(AT_SEALED_KEY, AT_RECOVERY)),
            recovery: RecoveryWrap::from_bytes(&array(field(AT_RECOVERY, AT_DIGEST))),
            digest: array(field(AT_DIGEST, HEADER_LEN)),
        })
    }
}

fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

/// STREAM nonce of chunk `index`: the file's random prefix, the big-endian counter, and
/// a flag byte that is 1 only for the end marker (so no data chunk can pass for the
/// end, and dropping the end is seen).
pub(crate) fn chunk_nonce(
    prefix: &[u8; NONCE_PREFIX_LEN],
    index: u32,
    last: bool,
) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&index.to_be_bytes());
    nonce[NONCE_LEN - 1] = u8::from(last);
    nonce
}

/// Associated data of chunk `index`: the header digest (ties the chunk to this file's
/// header) and the index (already in the nonce; repeated so the binding does not rest
/// on the nonce layout alone).
pub(crate) fn chunk_aad(digest: &[u8; DIGEST_LEN], index: u32) -> [u8; DIGEST_LEN + 4] {
    let mut aad = [0u8; DIGEST_LEN + 4];
    aad[..DIGEST_LEN].copy_from_slice(digest);
    aad[DIGEST_LEN..].copy_from_slice(&index.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_as_documented() {
        assert_eq!(NONCE_PREFIX_LEN, 19);
        assert_eq!(SEALED_KEY_LEN, 80);
        assert_eq!(RECOVERY_WRAP_LEN, 104);
        assert_eq!(HEADER_LEN, 277);
    }

    #[test]
    fn nonce_layout() {
        let nonce = chunk_nonce(&[0xaa; NONCE_PREFIX_LEN], 0x0102_0304, true);
        assert_eq!(&nonce[..19], &[0xaa; 19]);
        assert_eq!(&nonce[19..], &[1, 2, 3, 4, 1]);
        assert_eq!(chunk_nonce(&[0; 19], 7, false)[23], 0);
    }

    #[test]
    fn short_or_foreign_starts() {
        assert!(matches!(
            Header::parse(b""),
            Err(VaultError::Incomplete { complete_chunks: 0 })
        ));
        assert!(matches!(
            Header::parse(b"MECAM"),
            Err(VaultError::Incomplete { .. })
        ));
        assert!(matches!(
            Header::parse(b"\0\0\0\x18ftypisom"),
            Err(VaultError::NotVaultFile)
        ));
        assert!(matches!(
            Header::parse(b"MECAMENC\x02rest"),
            Err(VaultError::UnsupportedFormat { found: 2 })
        ));
    }
}
