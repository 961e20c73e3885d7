//! Small primitives shared by the auth modules: random bytes, SHA-256, a constant-time
//! comparison and the text encodings (base32, base64url, hex).
//!
//! They live here rather than as dependencies because each is a few lines, the crate
//! must stay buildable by Debian's rustc, and `ring::constant_time` is deprecated in
//! ring 0.17 (and `subtle` is not a direct dependency).

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random generator failed. On Linux this means `getrandom`
/// failed, which should never happen after boot; callers refuse the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// Fills `out` from the OS generator.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomError> {
    SystemRandom::new().fill(out).map_err(|_| RandomError)
}

/// SHA-256 of the concatenation of `parts` (domain labels first) and constant-time
/// equality: the vault's, so secrets are compared one way across the crate.
pub(crate) use crate::vault::crypto::{ct_eq, sha256};

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, without padding (what authenticator apps expect).
pub(crate) fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32_ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 without padding, case-insensitively. Returns `None` on any
/// character outside the alphabet or on non-zero trailing bits (a non-canonical form).
pub(crate) fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits must be padding zeros, and fewer than a whole character's worth.
    if bits >= 5 || buffer != 0 {
        return None;
    }
    Some(out)
}

const BASE64URL_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url without padding: safe in URLs, headers and cookies.
pub(crate) fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(BASE64URL_ALPHABET[((buffer >> bits) & 63) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(BASE64URL_ALPHABET[((buffer << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Decodes unpadded base64url; `None` on foreign characters or non-canonical input.
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits >= 6 || buffer != 0 {
        return None;
    }
    Some(out)
}

/// Lower-case hex.
pub(crate) fn hex_encode(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for &byte in data {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// Decodes hex (either case) into exactly `N` bytes.
pub(crate) fn hex_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, padding removed.
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (raw, text) in cases {
            assert_eq!(base32_encode(raw), text);
            assert_eq!(base32_decode(text).as_deref(), Some(raw));
            assert_eq!(base32_decode(&text.to_lowercase()).as_deref(), Some(raw));
        }
        assert_eq!(base32_decode("MZ"), None, "non-zero trailing bits");
        assert_eq!(base32_decode("MY=="), None, "padding is not accepted");
        assert_eq!(base32_decode("M1"), None, "foreign character");
    }

    #[test]
    fn base64url_matches_rfc4648_vectors_and_round_trips() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in cases {
            assert_eq!(base64url_encode(raw), text);
            assert_eq!(base64url_decode(text).as_deref(), Some(raw));
        }
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_decode("Zh"), None, "non-canonical trailing bits");
        assert_eq!(base64url_decode("Zm9v+"), None, "standard alphabet refused");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode::<3>("00ABff"), Some([0x00, 0xab, 0xff]));
        assert_eq!(hex_decode::<3>("00abf"), None);
        assert_eq!(hex_decode::<2>("zz00"), None);
    }
}
