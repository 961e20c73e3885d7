//! Encryption at rest (design decision 6): nobody can watch the footage without a
//! user's password or the owner's recovery key — not even someone holding the SD card.
//!
//! This module is a library with no I/O policy of its own: the store persists the
//! [`VaultRecord`], the recorder seals files with a [`SealingKey`], the API opens them
//! with a session's [`UnlockedVault`], and `mecam decrypt` with a [`RecoveryKey`].
//!
//! # Keys
//!
//! ```text
//! recording key pair (X25519)  ── public key ──► seals every file's data key (seal)
//!   private key, stored only wrapped:
//!     per user:  XChaCha20-Poly1305 under HKDF(Argon2id(password, salt, params))  (keys)
//!     once:      XChaCha20-Poly1305 under HKDF(recovery key)                      (recovery)
//! each file:   random 256-bit data key → XChaCha20-Poly1305 STREAM chunks        (stream)
//! ```
//!
//! The device records with nobody logged in (the public key suffices); only an
//! unlocked vault — a session — reads. Every secret type wipes itself on drop.
//!
//! # Encrypted file format, version 1
//!
//! Segments and thumbnails share one format. Integers are big-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MECAMENC"
//!      8     1  format version = 1
//!      9     1  content kind: 1 segment, 2 thumbnail
//!     10    32  recording public key (X25519) the data key is sealed to
//!     42    19  STREAM nonce prefix (random per file)
//!     61    80  sealed data key: ephemeral X25519 public key (32)
//!               ‖ XChaCha20-Poly1305(KEK, data key) (32 + 16 tag)
//!    141   104  recording private key wrapped under the recovery key:
//!               key id (16) ‖ nonce (24) ‖ wrapped key (32 + 16 tag) ‖ checksum (16)
//!    245    32  header digest: SHA-256 of bytes 0..245
//!    277        chunks, each: u32 length L ‖ L bytes of ciphertext ‖ 16-byte tag
//!               (L counts ciphertext and tag)
//! ```
//!
//! Chunk *i* is XChaCha20-Poly1305 under the data key with
//! - nonce = prefix (19) ‖ *i* as u32 (4) ‖ flag (1): 0 for data, 1 for the end marker;
//! - associated data = header digest (32) ‖ *i* as u32 (4).
//!
//! Data chunks are never empty; a segment's chunk 0 is the fMP4 init segment and each
//! later chunk one fragment, so the plaintext chunks concatenated are a playable MP4.
//! The file ends with an end marker: an empty chunk (`L` = 16) with flag 1. Nothing
//! may follow it.
//!
//! What this guarantees:
//! - **Header** damage is caught by its digest; tampering (with a recomputed digest)
//!   by every chunk's tag, since the digest is in every chunk's associated data.
//! - **Chunks** cannot be altered, reordered, dropped or moved between files: each
//!   tag covers its index and its file's header, and the data keys differ.
//! - **Truncation** is never silent: without the end marker a reader returns every
//!   complete chunk and then [`VaultError::Incomplete`] (a power cut while recording).
//! - **Random access**: chunk *i* decrypts alone, given its offset and length
//!   ([`ChunkLocation`], which the index stores) — for HTTP Range playback.
//! - **Offline**: the header carries the private key wrapped under the recovery key, so
//!   `mecam decrypt --recovery-key K IN OUT` needs nothing but the file and the key.
//!   Safe to keep next to the data: the recovery key is 256 random bits.
//!
//! The vault record (JSON, persisted by the store) holds the public key, the recovery
//! wrap and one password wrap per user; nothing in it is secret in the clear.

pub(crate) mod crypto;
mod error;
mod format;
mod hex;
mod keys;
mod recovery;
mod seal;
mod stream;

#[cfg(test)]
mod tests;

pub use error::{RecoveryKeyTypo, VaultError};
pub use format::{
    CHUNK_PREFIX_LEN, ContentKind, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_CHUNK_PLAINTEXT,
};
pub use keys::{Argon2Params, RecordingPublicKey, SealingKey, UnlockedVault, VaultRecord};
pub use recovery::{RECOVERY_KEY_CHARS, RecoveryKey};
pub use stream::{
    ChunkLocation, FileDecryptor, FileReader, FileSealer, FileWriter, SealedChunk, open_blob,
    seal_blob,
};
