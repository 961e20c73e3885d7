//! The few primitives every part of the vault shares, each wrapped once so the rest of
//! the module cannot get a nonce size, a domain label or a zeroization wrong.
//!
//! Randomness comes from `ring::rand::SystemRandom` (getrandom on Linux). HKDF-SHA256
//! and SHA-256 come from ring. The AEAD is XChaCha20-Poly1305 from RustCrypto: its
//! 192-bit nonces can be drawn at random without a collision budget, and ChaCha20 is
//! fast on the Pi Zero 2 W's Cortex-A53, which has no AES instructions.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hkdf};
use zeroize::Zeroizing;

use super::error::VaultError;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// A 32-byte key wrapped by the AEAD: ciphertext then tag.
pub(crate) const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;

/// A 256-bit secret that is wiped when dropped.
pub(crate) type SecretKey = Zeroizing<[u8; KEY_LEN]>;

/// HKDF salt: fixes the application so that no other protocol's derivations collide
/// with ours even from the same input key material.
const HKDF_SALT: &[u8] = b"ME_CAM vault v1";

/// Fills `out` from the operating system's CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), VaultError> {
    // One `SystemRandom` per call is free: it holds no state of its own.
    SystemRandom::new()
        .fill(out)
        .map_err(|_| VaultError::Random)
}

/// A fresh random 256-bit secret.
pub(crate) fn random_key() -> Result<SecretKey, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut())?;
    Ok(key)
}

/// A random array of public bytes (nonces, salts).
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 of `ikm` with `info` given in parts (the parts are concatenated, as
/// ring does). Every caller passes a distinct label as the first part, so two uses of
/// one input key never yield the same output.
pub(crate) fn hkdf(ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(ikm);
    prk.expand(info, OutputLen(out.len()))
        .and_then(|okm| okm.fill(out))
        // Only fails for outputs over 255 * 32 bytes; ours are at most 56.
        .expect("HKDF output length within limit");
}

/// HKDF-SHA256 to a 256-bit key.
pub(crate) fn hkdf_key(ikm: &[u8], info: &[&[u8]]) -> SecretKey {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    hkdf(ikm, info, key.as_mut());
    key
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A 128-bit integrity checksum (truncated SHA-256) over `parts`. Not a MAC: it tells
/// damaged stored bytes apart from a wrong password, which the AEAD alone cannot.
pub(crate) fn checksum(parts: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&sha256(parts)[..16]);
    out
}

/// Equality that takes the same time wherever the first difference is, for values
/// derived from secrets (password check values).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    // The cipher keeps its own copy of the key and wipes it on drop.
    XChaCha20Poly1305::new(Key::from_slice(key))
}

/// Encrypts a 32-byte key under `kek`.
pub(crate) fn wrap_key(
    kek: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    key: &[u8; KEY_LEN],
) -> [u8; WRAPPED_KEY_LEN] {
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..KEY_LEN].copy_from_slice(key);
    let tag = cipher(kek)
        .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut out[..KEY_LEN])
        // Only fails for messages over 256 GiB.
        .expect("XChaCha20-Poly1305 encrypts 32 bytes");
    out[KEY_LEN..].copy_from_slice(&tag);
    out
}

/// Decrypts a key wrapped by [`wrap_key`]; `None` if the tag does not verify.
pub(crate) fn unwrap_key(
    kek: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    wrapped: &[u8; WRAPPED_KEY_LEN],
) -> Option<SecretKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&wrapped[..KEY_LEN]);
    cipher(kek)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            key.as_mut(),
            Tag::from_slice(&wrapped[KEY_LEN..]),
        )
        .ok()?;
    Some(key)
}

/// Encrypts `buf` in place and returns the tag (the content-encryption path, where the
/// buffer is a whole fragment and copying it again would cost real time on the Pi).
pub(crate) fn seal_in_place(
    key: &XChaCha20Poly1305,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let tag = key
        .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf)
        // Only fails for messages over 256 GiB; chunks are capped far below.
        .expect("chunk within the AEAD's length limit");
    tag.into()
}

/// Decrypts `buf` in place; `false` (and `buf` unchanged) if the tag does not verify.
pub(crate) fn open_in_place(
    key: &XChaCha20Poly1305,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> bool {
    key.decrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
        .is_ok()
}

/// A cipher instance for a content key.
pub(crate) fn content_cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    cipher(key)
}

/// Whether `needle` occurs in `haystack`: tests search outputs for keys and plaintext.
#[cfg(test)]
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_tamper() {
        let kek = [7u8; 32];
        let nonce = [9u8; 24];
        let key = [42u8; 32];
        let wrapped = wrap_key(&kek, &nonce, b"aad", &key);
        assert_ne!(&wrapped[..32], &key[..]);
        assert_eq!(*unwrap_key(&kek, &nonce, b"aad", &wrapped).unwrap(), key);
        assert!(unwrap_key(&kek, &nonce, b"other", &wrapped).is_none());
        let mut bad = wrapped;
        bad[40] ^= 1;
        assert!(unwrap_key(&kek, &nonce, b"aad", &bad).is_none());
    }

    #[test]
    fn hkdf_labels_separate_outputs() {
        let a = hkdf_key(b"ikm", &[b"label a"]);
        let b = hkdf_key(b"ikm", &[b"label b"]);
        assert_ne!(*a, *b);
        // RFC 5869 concatenates info parts.
        assert_eq!(*hkdf_key(b"ikm", &[b"lab", b"el a"]), *a);
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
