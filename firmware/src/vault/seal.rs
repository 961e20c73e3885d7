//! Sealing a file's data key to the recording public key, so the device can record with
//! nobody logged in and only the private key can read what it recorded.
//!
//! The construction is ECIES/HPKE-style, on X25519:
//!
//! ```text
//! e       = 32 random bytes (ephemeral X25519 secret), E = X25519(e, base)
//! shared  = X25519(e, R)                              R = recording public key
//! kek‖n   = HKDF-SHA256(ikm = shared, info = label ‖ E ‖ R, 56 bytes)
//! sealed  = E ‖ XChaCha20-Poly1305(kek, n, aad = label, data key)   (80 bytes)
//! ```
//!
//! Both public keys go into the HKDF info so the key-encryption key is bound to this
//! exchange and this recipient. The key-encryption key is used once, so deriving the
//! nonce along with it (as HPKE does) is safe. A recipient key of low order (the only
//! way `shared` can be all zeros) is refused rather than sealing under a known key.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::{self, KEY_LEN, NONCE_LEN, WRAPPED_KEY_LEN};
use super::error::VaultError;
use super::keys::{RecordingPublicKey, UnlockedVault};

pub(crate) const SEALED_KEY_LEN: usize = KEY_LEN + WRAPPED_KEY_LEN;

const LABEL_SEAL_KDF: &[u8] = b"ME_CAM data key seal";
const LABEL_SEAL_AAD: &[u8] = b"ME_CAM sealed data key";

/// The random 256-bit key that encrypts one file. Wiped on drop; no `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct DataKey([u8; KEY_LEN]);

impl DataKey {
    pub(crate) fn generate() -> Result<Self, VaultError> {
        let mut key = Self([0u8; KEY_LEN]);
        crypto::fill_random(&mut key.0)?;
        Ok(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The key-encryption key and nonce for one exchange.
fn derive(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 56]> {
    let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN]);
    crypto::hkdf(
        shared,
        &[LABEL_SEAL_KDF, ephemeral, recipient],
        okm.as_mut(),
    );
    okm
}

fn split(okm: &[u8; 56]) -> (Zeroizing<[u8; KEY_LEN]>, [u8; NONCE_LEN]) {
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    kek.copy_from_slice(&okm[..KEY_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&okm[KEY_LEN..]);
    (kek, nonce)
}

/// Seals `key` so that only the holder of `recipient`'s private key can open it.
pub(crate) fn seal(
    recipient: &RecordingPublicKey,
    key: &DataKey,
) -> Result<[u8; SEALED_KEY_LEN], VaultError> {
    let ephemeral = StaticSecret::from(*crypto::random_key()?);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient.as_bytes()));
    if !shared.was_contributory() {
        return Err(VaultError::corrupted(
            "the vault's public key",
            "it is not a usable X25519 key",
        ));
    }
    let (kek, nonce) = split(&derive(
        shared.as_bytes(),
        &ephemeral_public,
        recipient.as_bytes(),
    ));
    let mut sealed = [0u8; SEALED_KEY_LEN];
    sealed[..KEY_LEN].copy_from_slice(&ephemeral_public);
    sealed[KEY_LEN..].copy_from_slice(&crypto::wrap_key(&kek, &nonce, LABEL_SEAL_AAD, &key.0));
    Ok(sealed)
}

/// Opens a sealed data key with the private key. Fails (as damage) if the bytes were
/// changed or were sealed to another key; callers that can tell the latter apart
/// (the file header names its public key) do so first.
pub(crate) fn open(
    vault: &UnlockedVault,
    sealed: &[u8; SEALED_KEY_LEN],
) -> Result<DataKey, VaultError> {
    const WHAT: &str = "the sealed data key";
    let mut ephemeral_public = [0u8; KEY_LEN];
    ephemeral_public.copy_from_slice(&sealed[..KEY_LEN]);
    let shared = vault
        .secret()
        .diffie_hellman(&PublicKey::from(ephemeral_public));
    if !shared.was_contributory() {
        return Err(VaultError::corrupted(WHAT, "its ephemeral key is invalid"));
    }
    let (kek, nonce) = split(&derive(
        shared.as_bytes(),
        &ephemeral_public,
        vault.public_key().as_bytes(),
    ));
    let mut wrapped = [0u8; WRAPPED_KEY_LEN];
    wrapped.copy_from_slice(&sealed[KEY_LEN..]);
    let key = crypto::unwrap_key(&kek, &nonce, LABEL_SEAL_AAD, &wrapped)
        .ok_or(VaultError::corrupted(WHAT, "it failed authentication"))?;
    Ok(DataKey(*key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::crypto::contains;
    use crate::vault::keys::tests::secret_bytes;
    use crate::vault::keys::{Argon2Params, VaultRecord};

    fn vault() -> UnlockedVault {
        VaultRecord::create("o", "p", Argon2Params::INSECURE_FAST)
            .unwrap()
            .2
    }

    #[test]
    fn sealed_key_opens_only_with_its_private_key() {
        let vault = vault();
        let key = DataKey::generate().unwrap();
        let sealed = seal(vault.public_key(), &key).unwrap();
        assert_eq!(open(&vault, &sealed).unwrap().0, key.0);

        let other = self::vault();
        assert!(matches!(
            open(&other, &sealed),
            Err(VaultError::Corrupted { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let vault = vault();
        let key = DataKey::generate().unwrap();
        let sealed = seal(vault.public_key(), &key).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed;
            bad[i] ^= 0x01;
            assert!(open(&vault, &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn sealed_bytes_hold_no_key_and_differ_each_time() {
        let vault = vault();
        let key = DataKey::generate().unwrap();
        let a = seal(vault.public_key(), &key).unwrap();
        let b = seal(vault.public_key(), &key).unwrap();
        assert_ne!(a, b, "a fresh ephemeral key per seal");
        for sealed in [a, b] {
            assert!(!contains(&sealed, &key.0));
            assert!(!contains(&sealed, &secret_bytes(&vault)));
        }
    }

    #[test]
    fn low_order_recipient_is_refused() {
        let key = DataKey::generate().unwrap();
        let zero = RecordingPublicKey([0u8; 32]);
        assert!(matches!(
            seal(&zero, &key),
            Err(VaultError::Corrupted { .. })
        ));
    }
}
