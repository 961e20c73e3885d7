//! The recovery key: 256 random bits shown once, at setup, for the owner to write down,
//! and the copy of the recording private key wrapped under it.
//!
//! # How it is written
//!
//! The 32 key bytes are followed by a 3-byte CRC-24 (the OpenPGP polynomial) of them;
//! the 35 bytes are written in Crockford base32 — 56 characters, digits and capital
//! letters without I, L, O and U — in 14 groups of 4 joined by `-`:
//!
//! ```text
//! 7KQ2-M9XA-...-H3ZD   (14 groups)
//! ```
//!
//! Reading is forgiving where it cannot be wrong: case, spaces and dashes are ignored,
//! and `O` reads as `0`, `I` and `L` as `1`, as Crockford specifies. The CRC catches
//! what is left: a CRC of degree 24 detects every error burst up to 24 bits long, and a
//! mistyped character (5 bits) or two swapped neighbours (10 bits) are such bursts, so
//! those typos are *always* reported as typos — never as "wrong recovery key", which
//! would send the owner looking for another piece of paper.
//!
//! # Why no Argon2 here
//!
//! Passwords are stretched because people choose them; this key is 256 bits from the
//! CSPRNG, so a plain HKDF is as strong as the X25519 key it protects. That is also why
//! the wrap may sit in every encrypted file's header (see `format`) for offline
//! decryption with nothing but the key.

use std::fmt;
use std::str::FromStr;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::{self, KEY_LEN, NONCE_LEN, SecretKey, WRAPPED_KEY_LEN};
use super::error::{RecoveryKeyTypo, VaultError};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CRC_LEN: usize = 3;
const PAYLOAD_LEN: usize = KEY_LEN + CRC_LEN;
/// Characters in a recovery key (35 bytes × 8 / 5 bits, exactly: no padding bits).
pub const RECOVERY_KEY_CHARS: usize = PAYLOAD_LEN * 8 / 5;
const GROUP: usize = 4;

const LABEL_KEY_ID: &[u8] = b"ME_CAM recovery key id";
const LABEL_WRAP_KEY: &[u8] = b"ME_CAM recovery wrap key";
const LABEL_WRAP_AAD: &[u8] = b"ME_CAM recording key wrapped by recovery key";
const LABEL_CHECKSUM: &[u8] = b"ME_CAM recovery wrap checksum";

/// The owner's recovery key. Wiped on drop; `Debug` does not show it. The only way to
/// see it is [`RecoveryKey::to_display_string`], for the one time it is shown.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryKey([u8; KEY_LEN]);

impl RecoveryKey {
    pub(crate) fn generate() -> Result<Self, VaultError> {
        let mut key = Self([0u8; KEY_LEN]);
        crypto::fill_random(&mut key.0)?;
        Ok(key)
    }

    /// The key as the owner writes it down: 14 dash-separated groups of 4 characters.
    pub fn to_display_string(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN]);
        payload[..KEY_LEN].copy_from_slice(&self.0);
        payload[KEY_LEN..].copy_from_slice(&crc24(&self.0).to_be_bytes()[1..]);

        let mut out = Zeroizing::new(String::with_capacity(
            RECOVERY_KEY_CHARS + RECOVERY_KEY_CHARS / GROUP,
        ));
        let mut acc: u32 = 0;
        let mut bits = 0;
        let mut written = 0;
        for &byte in payload.iter() {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                if written > 0 && written % GROUP == 0 {
                    out.push('-');
                }
                out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
                written += 1;
            }
        }
        acc.zeroize();
        debug_assert_eq!(bits, 0);
        out
    }

    /// Reads a typed recovery key. A malformed key is a [`VaultError::RecoveryKeyTypo`];
    /// whether it is the *right* key is only known when it unlocks something.
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let typo = |t| Err(VaultError::RecoveryKeyTypo(t));
        let mut symbols = Zeroizing::new(Vec::with_capacity(RECOVERY_KEY_CHARS));
        for (i, c) in text.chars().enumerate() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            match symbol(c) {
                Some(v) => symbols.push(v),
                None => {
                    return typo(RecoveryKeyTypo::InvalidCharacter {
                        position: i + 1,
                        character: c,
                    });
                }
            }
        }
        if symbols.len() != RECOVERY_KEY_CHARS {
            return typo(RecoveryKeyTypo::WrongLength {
                expected: RECOVERY_KEY_CHARS,
                found: symbols.len(),
            });
        }

        let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN]);
        let mut acc: u32 = 0;
        let mut bits = 0;
        let mut n = 0;
        for &v in symbols.iter() {
            acc = (acc << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                payload[n] = (acc >> bits) as u8;
                n += 1;
            }
        }
        acc.zeroize();

        let mut key = Self([0u8; KEY_LEN]);
        key.0.copy_from_slice(&payload[..KEY_LEN]);
        if crc24(&key.0).to_be_bytes()[1..] != payload[KEY_LEN..] {
            return typo(RecoveryKeyTypo::Checksum);
        }
        Ok(key)
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Identifies this key to a wrap without revealing it: lets an unwrap tell "wrong
    /// key" from "damaged wrap". Safe to store — the key has 256 bits of entropy.
    fn key_id(&self, public_key: &[u8; 32]) -> [u8; 16] {
        let mut id = [0u8; 16];
        crypto::hkdf(&self.0, &[LABEL_KEY_ID, public_key], &mut id);
        id
    }

    fn wrap_key(&self, public_key: &[u8; 32]) -> SecretKey {
        crypto::hkdf_key(&self.0, &[LABEL_WRAP_KEY, public_key])
    }
}

impl FromStr for RecoveryKey {
    type Err = VaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

/// Crockford base32 value of a typed character, with its reading aids.
fn symbol(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    if !c.is_ascii() {
        return None;
    }
    ALPHABET.iter().position(|&a| a == c as u8).map(|v| v as u8)
}

/// CRC-24 as in OpenPGP (RFC 4880 §6.1).
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// Length of a [`RecoveryWrap`] in binary form (inside every encrypted file's header).
pub(crate) const RECOVERY_WRAP_LEN: usize = 16 + NONCE_LEN + WRAPPED_KEY_LEN + 16;

/// The recording private key encrypted under a key derived from the recovery key.
/// Public data: stored in the vault record and copied into every file header.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RecoveryWrap {
    #[serde(with = "super::hex::array")]
    key_id: [u8; 16],
    #[serde(with = "super::hex::array")]
    nonce: [u8; NONCE_LEN],
    #[serde(with = "super::hex::array")]
    wrapped_key: [u8; WRAPPED_KEY_LEN],
    /// Over the fields above *and the public key*, so a damaged public key in the
    /// record is caught before anything is sealed to it.
    #[serde(with = "super::hex::array")]
    checksum: [u8; 16],
}

impl RecoveryWrap {
    pub(crate) fn new(
        recovery: &RecoveryKey,
        public_key: &[u8; 32],
        private_key: &[u8; KEY_LEN],
    ) -> Result<Self, VaultError> {
        let nonce = crypto::random_array()?;
        let wrapped_key = crypto::wrap_key(
            &recovery.wrap_key(public_key),
            &nonce,
            &aad(public_key),
            private_key,
        );
        let key_id = recovery.key_id(public_key);
        let checksum = checksum(public_key, &key_id, &nonce, &wrapped_key);
        Ok(Self {
            key_id,
            nonce,
            wrapped_key,
            checksum,
        })
    }

    /// Checks that neither this wrap nor `public_key` was damaged in storage.
    pub(crate) fn verify(&self, public_key: &[u8; 32]) -> Result<(), VaultError> {
        let expected = checksum(public_key, &self.key_id, &self.nonce, &self.wrapped_key);
        if expected != self.checksum {
            return Err(VaultError::corrupted(
                "the vault's recovery key wrap or public key",
                "checksum mismatch",
            ));
        }
        Ok(())
    }

    /// The private key, if `recovery` is the key this wrap was made with. The caller
    /// checks that it matches `public_key`.
    pub(crate) fn unwrap(
        &self,
        recovery: &RecoveryKey,
        public_key: &[u8; 32],
    ) -> Result<SecretKey, VaultError> {
        self.verify(public_key)?;
        if !crypto::ct_eq(&recovery.key_id(public_key), &self.key_id) {
            return Err(VaultError::WrongRecoveryKey);
        }
        crypto::unwrap_key(
            &recovery.wrap_key(public_key),
            &self.nonce,
            &aad(public_key),
            &self.wrapped_key,
        )
        .ok_or(VaultError::corrupted(
            "the recovery key wrap",
            "it failed authentication",
        ))
    }

    pub(crate) fn to_bytes(&self) -> [u8; RECOVERY_WRAP_LEN] {
        let mut out = [0u8; RECOVERY_WRAP_LEN];
        let mut at = 0;
        for part in [
            &self.key_id[..],
            &self.nonce,
            &self.wrapped_key,
            &self.checksum,
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8; RECOVERY_WRAP_LEN]) -> Self {
        let mut wrap = Self {
            key_id: [0; 16],
            nonce: [0; NONCE_LEN],
            wrapped_key: [0; WRAPPED_KEY_LEN],
            checksum: [0; 16],
        };
        let mut at = 0;
        for part in [
            &mut wrap.key_id[..],
            &mut wrap.nonce,
            &mut wrap.wrapped_key,
            &mut wrap.checksum,
        ] {
            let len = part.len();
            part.copy_from_slice(&bytes[at..at + len]);
            at += len;
        }
        wrap
    }
}

fn aad(public_key: &[u8; 32]) -> Vec<u8> {
    [LABEL_WRAP_AAD, public_key].concat()
}

fn checksum(
    public_key: &[u8; 32],
    key_id: &[u8; 16],
    nonce: &[u8; NONCE_LEN],
    wrapped_key: &[u8; WRAPPED_KEY_LEN],
) -> [u8; 16] {
    crypto::checksum(&[LABEL_CHECKSUM, public_key, key_id, nonce, wrapped_key])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::crypto::contains;

    fn typo_of(text: &str) -> RecoveryKeyTypo {
        match RecoveryKey::parse(text) {
            Err(VaultError::RecoveryKeyTypo(t)) => t,
            Err(e) => panic!("expected a typo, got {e}"),
            Ok(_) => panic!("expected a typo, the key parsed"),
        }
    }

    #[test]
    fn crc24_matches_the_openpgp_check_value() {
        assert_eq!(crc24(b"123456789"), 0x21CF02);
    }

    #[test]
    fn display_round_trips_and_is_grouped() {
        let key = RecoveryKey::generate().unwrap();
        let text = key.to_display_string();
        assert_eq!(text.len(), 56 + 13);
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(groups.len(), 14);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert!(
            text.chars()
                .all(|c| c == '-' || ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(RecoveryKey::parse(&text).unwrap().0, key.0);
    }

    #[test]
    fn parsing_forgives_case_spacing_and_look_alikes() {
        let key = RecoveryKey([0u8; 32]);
        let text = key.to_display_string();
        assert!(text.starts_with("0000-"), "{}", text.as_str());
        let sloppy = text.to_lowercase().replace('-', " ").replacen('0', "o", 3);
        assert_eq!(RecoveryKey::parse(&sloppy).unwrap().0, key.0);

        let key = RecoveryKey([0x08; 32]); // 00001 000... → the first symbol is '1'
        let text = key.to_display_string();
        assert!(text.starts_with('1'), "{}", text.as_str());
        assert_eq!(
            RecoveryKey::parse(&text.replacen('1', "l", 1)).unwrap().0,
            key.0
        );
        assert_eq!(
            RecoveryKey::parse(&text.replacen('1', "I", 1)).unwrap().0,
            key.0
        );
    }

    #[test]
    fn every_single_character_typo_is_reported_as_a_typo() {
        for seed in [0u8, 0x5a, 0xff] {
            let mut key = RecoveryKey([seed; 32]);
            for (i, b) in key.0.iter_mut().enumerate() {
                *b = b.wrapping_mul(31).wrapping_add(i as u8 * 7);
            }
            let text: Vec<u8> = key.to_display_string().as_bytes().to_vec();
            for pos in (0..text.len()).filter(|&p| text[p] != b'-') {
                for &replacement in ALPHABET {
                    if replacement == text[pos] {
                        continue;
                    }
                    let mut typed = text.clone();
                    typed[pos] = replacement;
                    let typed = String::from_utf8(typed).unwrap();
                    assert_eq!(typo_of(&typed), RecoveryKeyTypo::Checksum, "{typed}");
                }
            }
        }
    }

    #[test]
    fn every_swap_of_neighbouring_characters_is_reported_as_a_typo() {
        let key = RecoveryKey::generate().unwrap();
        let symbols: Vec<u8> = key
            .to_display_string()
            .bytes()
            .filter(|&c| c != b'-')
            .collect();
        for i in 0..symbols.len() - 1 {
            if symbols[i] == symbols[i + 1] {
                continue;
            }
            let mut typed = symbols.clone();
            typed.swap(i, i + 1);
            let typed = String::from_utf8(typed).unwrap();
            assert_eq!(typo_of(&typed), RecoveryKeyTypo::Checksum, "{typed}");
        }
    }

    #[test]
    fn bad_characters_and_lengths_are_named() {
        let key = RecoveryKey::generate().unwrap();
        let text = key.to_display_string();
        let with_u = format!("U{}", &text[1..]);
        assert_eq!(
            typo_of(&with_u),
            RecoveryKeyTypo::InvalidCharacter {
                position: 1,
                character: 'U'
            }
        );
        let with_symbol = format!("{}*{}", &text[..6], &text[7..]);
        assert_eq!(
            typo_of(&with_symbol),
            RecoveryKeyTypo::InvalidCharacter {
                position: 7,
                character: '*'
            }
        );
        assert_eq!(
            typo_of(&text[..text.len() - 1]),
            RecoveryKeyTypo::WrongLength {
                expected: 56,
                found: 55
            }
        );
        assert_eq!(
            typo_of(&format!("{}0", text.as_str())),
            RecoveryKeyTypo::WrongLength {
                expected: 56,
                found: 57
            }
        );
        let message = VaultError::RecoveryKeyTypo(RecoveryKeyTypo::Checksum).to_string();
        assert!(message.contains("mistyped"), "{message}");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let key = RecoveryKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.to_display_string()[..4]));
        assert_eq!(shown, "RecoveryKey(<redacted>)");
    }

    #[test]
    fn wrap_unwraps_only_with_its_key_and_reports_damage_separately() {
        let recovery = RecoveryKey::generate().unwrap();
        let other = RecoveryKey::generate().unwrap();
        let pk = [3u8; 32];
        let sk = [4u8; 32];
        let wrap = RecoveryWrap::new(&recovery, &pk, &sk).unwrap();
        assert_eq!(*wrap.unwrap(&recovery, &pk).unwrap(), sk);
        assert!(matches!(
            wrap.unwrap(&other, &pk),
            Err(VaultError::WrongRecoveryKey)
        ));
        assert_eq!(RecoveryWrap::from_bytes(&wrap.to_bytes()), wrap);

        // Any damaged byte of the binary form, or of the public key, is "damaged".
        let bytes = wrap.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            let bad = RecoveryWrap::from_bytes(&bad);
            assert!(
                matches!(
                    bad.unwrap(&recovery, &pk),
                    Err(VaultError::Corrupted { .. })
                ),
                "byte {i}"
            );
        }
        let mut bad_pk = pk;
        bad_pk[0] ^= 1;
        assert!(matches!(
            wrap.unwrap(&recovery, &bad_pk),
            Err(VaultError::Corrupted { .. })
        ));

        // The wrap holds neither key in the clear.
        let bytes = wrap.to_bytes();
        assert!(!contains(&bytes, &sk));
        assert!(!contains(&bytes, recovery.bytes()));
    }
}
