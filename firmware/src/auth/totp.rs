//! Second factor: RFC 6238 TOTP and one-time recovery codes.
//!
//! TOTP uses what every authenticator app supports: HMAC-SHA-1, 6 digits, 30-second
//! steps, a 160-bit secret (RFC 4226 §4 recommends 160 bits for SHA-1). A code is
//! accepted for the current step and one step either side (clock drift of a phone),
//! and never for a step at or before the last accepted one, so a code seen over a
//! shoulder or replayed from a captured request is worthless once used.
//!
//! SHA-1 is fine here: HOTP needs only HMAC's PRF property, which SHA-1's collision
//! weakness does not affect; ring exposes it as `HMAC_SHA1_FOR_LEGACY_USE_ONLY`.
//!
//! Recovery codes are 80-bit random values shown once; only their SHA-256 hashes are
//! kept. A salted slow hash would add nothing: 2^80 guesses are out of reach anyway.

use std::fmt;

use ring::hmac;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::encoding::{
    RandomError, base32_decode, base32_encode, ct_eq, fill_random, hex_decode, hex_encode, sha256,
};

/// Secret length in bytes (160 bits).
pub const SECRET_LEN: usize = 20;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW_STEPS: u64 = 1;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "ME_CAM";

/// Recovery codes made per user.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Bytes of randomness per recovery code (80 bits → 16 base32 characters).
const RECOVERY_CODE_BYTES: usize = 10;
const RECOVERY_HASH_LABEL: &[u8] = b"ME_CAM recovery code v1\0";

/// A TOTP shared secret. Wiped on drop; stored (by the store, inside the user record)
/// as unpadded base32 — the device must know it to check codes, so it cannot be hashed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A fresh secret from the OS generator.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = vec![0u8; SECRET_LEN];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// A secret from raw bytes (tests, imports).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The raw secret, for a store that keeps bytes (e.g. hex) rather than base32.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unpadded RFC 4648 base32, what authenticator apps take for manual entry.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    pub fn from_base32(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(base32_decode(text)?);
        // Shorter than 128 bits is not a secret we would have made.
        (bytes.len() >= 16).then(|| Self(bytes.to_vec()))
    }

    /// The `otpauth://` URI for a QR code: label `ME_CAM:<user>`, issuer `ME_CAM`.
    pub fn provisioning_uri(&self, username: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}",
            percent_encode(username),
            self.to_base32().as_str()
        ))
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl Serialize for TotpSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base32())
    }
}

impl<'de> Deserialize<'de> for TotpSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        Self::from_base32(&text)
            .ok_or_else(|| serde::de::Error::custom("TOTP secret is not base32 of ≥ 16 bytes"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a label in a URI).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 4226 HOTP: the `digits`-digit code for `counter` (HMAC-SHA-1, dynamic truncation).
pub fn hotp(secret: &TotpSecret, counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// RFC 6238 TOTP: the code for Unix time `unix_secs` with 30-second steps.
pub fn totp_at(secret: &TotpSecret, unix_secs: u64, digits: u32) -> u32 {
    hotp(secret, unix_secs / STEP_SECS, digits)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not six digits, or not the code for any step in the window.
    #[error("the authentication code is wrong")]
    Wrong,
    /// Right code, but its step was already used.
    #[error("this authentication code was already used; wait for the next one")]
    Replayed,
}

/// A user's TOTP enrolment, persisted by the store with the user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Totp {
    pub secret: TotpSecret,
    /// The step of the last accepted code; codes for it or earlier steps are refused.
    pub last_step: Option<u64>,
}

impl Totp {
    pub fn new(secret: TotpSecret) -> Self {
        Self {
            secret,
            last_step: None,
        }
    }

    /// Checks `code` at Unix time `unix_secs` and, if accepted, records its step so it
    /// cannot be used again. Spaces in the code are ignored ("123 456").
    ///
    /// Every step in the window is computed and compared, without stopping at a match,
    /// so timing reveals neither which step matched nor how much of the code did.
    pub fn verify(&mut self, code: &str, unix_secs: u64) -> Result<(), TotpError> {
        let mut digits = Zeroizing::new([0u8; DIGITS as usize]);
        let mut len = 0usize;
        for c in code.bytes().filter(|c| *c != b' ') {
            if !c.is_ascii_digit() || len == digits.len() {
                return Err(TotpError::Wrong);
            }
            digits[len] = c;
            len += 1;
        }
        if len != digits.len() {
            return Err(TotpError::Wrong);
        }

        let now_step = unix_secs / STEP_SECS;
        let mut matched: Option<u64> = None;
        for step in now_step.saturating_sub(WINDOW_STEPS)..=now_step.saturating_add(WINDOW_STEPS) {
            let expected = Zeroizing::new(format!(
                "{:0width$}",
                hotp(&self.secret, step, DIGITS),
                width = DIGITS as usize
            ));
            if ct_eq(expected.as_bytes(), &digits[..]) {
                // The latest matching step wins, so it is the one barred from reuse.
                matched = Some(step);
            }
        }
        let step = matched.ok_or(TotpError::Wrong)?;
        if self.last_step.is_some_and(|last| step <= last) {
            return Err(TotpError::Replayed);
        }
        self.last_step = Some(step);
        Ok(())
    }
}

/// One recovery code as shown to the user once: `xxxx-xxxx-xxxx-xxxx`. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// Hashes a normalised recovery code's raw bytes; `None` if `code` is not one.
fn recovery_hash(code: &str) -> Option<[u8; 32]> {
    // Forgiving about how people copy codes: case, dashes and spaces do not matter.
    let compact = Zeroizing::new(
        code.chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .collect::<String>(),
    );
    let raw = Zeroizing::new(base32_decode(&compact)?);
    (raw.len() == RECOVERY_CODE_BYTES).then(|| sha256(&[RECOVERY_HASH_LABEL, &raw]))
}

/// A user's unused recovery codes, as hashes. Persisted by the store with the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    hashes: Vec<[u8; 32]>,
}

impl RecoveryCodes {
    /// Makes [`RECOVERY_CODE_COUNT`] fresh codes: the hashes to keep and the codes to
    /// show once. Replaces any earlier set when stored.
    pub fn generate() -> Result<(Self, Vec<RecoveryCode>), RandomError> {
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        for _ in 0..RECOVERY_CODE_COUNT {
            let mut raw = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
            fill_random(&mut raw[..])?;
            hashes.push(sha256(&[RECOVERY_HASH_LABEL, &raw[..]]));
            let text = Zeroizing::new(base32_encode(&raw[..]).to_ascii_lowercase());
            let grouped = text
                .as_bytes()
                .chunks(4)
                .map(|group| std::str::from_utf8(group).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("-");
            codes.push(RecoveryCode(grouped));
        }
        Ok((Self { hashes }, codes))
    }

    /// The stored hashes as hex strings, for a store that keeps strings.
    pub fn to_hex_hashes(&self) -> Vec<String> {
        self.hashes.iter().map(|h| hex_encode(h)).collect()
    }

    /// Reads hashes written by [`Self::to_hex_hashes`]; `None` if any is malformed.
    pub fn from_hex_hashes<S: AsRef<str>>(hashes: &[S]) -> Option<Self> {
        let hashes = hashes
            .iter()
            .map(|h| hex_decode::<32>(h.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { hashes })
    }

    /// How many codes are left.
    pub fn remaining(&self) -> usize {
        self.hashes.len()
    }

    /// Uses up `code` if it is one of the remaining codes. Compares against every
    /// stored hash in constant time, without stopping at a match.
    pub fn consume(&mut self, code: &str) -> bool {
        let Some(presented) = recovery_hash(code) else {
            return false;
        };
        let mut found = None;
        for (i, hash) in self.hashes.iter().enumerate() {
            if ct_eq(hash, &presented) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => {
                self.hashes.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let vectors: [(u64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (time, code) in vectors {
            assert_eq!(totp_at(&secret, time, 8), code, "T = {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let expected = [755_224, 287_082, 359_152, 969_429, 338_314];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(&secret, counter as u64, 6), code);
        }
    }

    fn code(secret: &TotpSecret, unix: u64) -> String {
        format!("{:06}", totp_at(secret, unix, DIGITS))
    }

    #[test]
    fn accepts_current_and_adjacent_steps_only() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let now: u64 = 1_234_567_890;
        for offset in [-30i64, 0, 30] {
            let mut totp = Totp::new(secret.clone());
            let at = now.checked_add_signed(offset).unwrap();
            assert_eq!(
                totp.verify(&code(&secret, at), now),
                Ok(()),
                "offset {offset}"
            );
        }
        for offset in [-60i64, 60, 3600] {
            let mut totp = Totp::new(secret.clone());
            let at = now.checked_add_signed(offset).unwrap();
            assert_eq!(
                totp.verify(&code(&secret, at), now),
                Err(TotpError::Wrong),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn replayed_code_is_refused() {
        let secret = TotpSecret::generate().unwrap();
        let mut totp = Totp::new(secret.clone());
        let now = 1_700_000_000;
        let current = code(&secret, now);
        assert_eq!(totp.verify(&current, now), Ok(()));
        assert_eq!(totp.verify(&current, now), Err(TotpError::Replayed));
        assert_eq!(totp.verify(&current, now + 20), Err(TotpError::Replayed));
        // An older code still inside the window is refused too: its step is earlier.
        assert_eq!(
            totp.verify(&code(&secret, now - 30), now),
            Err(TotpError::Replayed)
        );
        // The next step's code works.
        assert_eq!(totp.verify(&code(&secret, now + 30), now + 30), Ok(()));
    }

    #[test]
    fn malformed_codes_are_wrong() {
        let secret = TotpSecret::from_bytes(RFC_SECRET);
        let mut totp = Totp::new(secret.clone());
        let now = 59;
        let good = code(&secret, now);
        for bad in ["", "12345", "1234567", "abcdef", "12345a", "１２３４５６"] {
            assert_eq!(totp.verify(bad, now), Err(TotpError::Wrong), "{bad:?}");
        }
        let spaced = format!("{} {}", &good[..3], &good[3..]);
        assert_eq!(totp.verify(&spaced, now), Ok(()));
    }

    #[test]
    fn secret_is_random_base32_and_uri_is_well_formed() {
        let a = TotpSecret::generate().unwrap();
        let b = TotpSecret::generate().unwrap();
        assert_ne!(a, b);
        let text = a.to_base32();
        assert_eq!(text.len(), 32, "160 bits in unpadded base32");
        assert!(!text.contains('='));
        assert_eq!(TotpSecret::from_base32(&text), Some(a.clone()));
        let uri = a.provisioning_uri("alice smith");
        assert_eq!(
            uri.as_str(),
            format!(
                "otpauth://totp/ME_CAM:alice%20smith?secret={}&issuer=ME_CAM",
                text.as_str()
            )
        );
        assert_eq!(format!("{a:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn enrolment_round_trips_through_serde() {
        let mut totp = Totp::new(TotpSecret::generate().unwrap());
        totp.last_step = Some(42);
        let json = serde_json::to_string(&totp).unwrap();
        let back: Totp = serde_json::from_str(&json).unwrap();
        assert_eq!(back.secret, totp.secret);
        assert_eq!(back.last_step, Some(42));
        assert!(
            serde_json::from_str::<TotpSecret>("\"MZXW6\"").is_err(),
            "too short"
        );
    }

    #[test]
    fn recovery_code_works_once() {
        let (mut stored, codes) = RecoveryCodes::generate().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        assert_eq!(stored.remaining(), RECOVERY_CODE_COUNT);
        let first = codes[0].expose().to_owned();
        assert_eq!(first.len(), 19, "xxxx-xxxx-xxxx-xxxx: {first}");
        assert!(stored.consume(&first));
        assert_eq!(stored.remaining(), RECOVERY_CODE_COUNT - 1);
        assert!(!stored.consume(&first), "a used code is gone");
        // Typed differently: upper case, no dashes.
        let second = codes[1].expose().replace('-', "").to_uppercase();
        assert!(stored.consume(&second));
        assert!(!stored.consume("aaaa-aaaa-aaaa-aaaa"));
        assert!(!stored.consume("not a code"));
        assert_eq!(stored.remaining(), RECOVERY_CODE_COUNT - 2);
    }

    #[test]
    fn recovery_codes_are_stored_only_as_hashes() {
        let (stored, codes) = RecoveryCodes::generate().unwrap();
        let json = serde_json::to_string(&stored).unwrap();
        for code in &codes {
            let compact = code.expose().replace('-', "");
            assert!(!json.to_lowercase().contains(&compact));
        }
        let back: RecoveryCodes = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stored);
        let hex = stored.to_hex_hashes();
        assert_eq!(RecoveryCodes::from_hex_hashes(&hex), Some(stored.clone()));
        assert_eq!(RecoveryCodes::from_hex_hashes(&["zz"]), None);
        let distinct: std::collections::HashSet<_> =
            codes.iter().map(|c| c.expose().to_owned()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
    }
}
