//! Credentials as a client presents them: the session cookie with its CSRF token, an
//! API token, HTTP Basic; parsing `Set-Cookie`; and RFC 6238 codes, computed here
//! independently of the service so a TOTP test checks the device against the RFC.

use http::header::{self, HeaderName};

use crate::Error;
use crate::client::Response;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mecam_session";
/// The header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// The owner account a local device is set up with ([`crate::Device::admin`]).
pub const ADMIN_USER: &str = "owner";
/// Long, and strong by zxcvbn (score 4), so the password policy accepts it.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple 42";

/// How a client proves who it is.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// A browser login: the `mecam_session` cookie and the CSRF token that came with it.
    Session(Session),
    /// `Authorization: Bearer mct_...`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
}

impl Auth {
    /// The header that carries these credentials.
    pub fn header(&self) -> Option<(HeaderName, String)> {
        match self {
            Self::None => None,
            Self::Session(s) => Some((header::COOKIE, format!("{SESSION_COOKIE}={}", s.cookie))),
            Self::Bearer(token) => Some((header::AUTHORIZATION, format!("Bearer {token}"))),
            Self::Basic { user, password } => {
                Some((header::AUTHORIZATION, basic_authorization(user, password)))
            }
        }
    }
}

/// A logged-in browser session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The value of the `mecam_session` cookie (`mcs_...`).
    pub cookie: String,
    /// `csrf_token` from the login, setup or `GET /api/v1/session` body.
    pub csrf_token: String,
}

impl Session {
    /// The session a login or setup response set: its `Set-Cookie` and `csrf_token`.
    pub fn from_response(res: &Response) -> Result<Self, Error> {
        let cookie = res.session_set_cookie().ok_or_else(|| {
            Error::Protocol(format!(
                "{} response sets no `{SESSION_COOKIE}` cookie: {:?}",
                res.status, res.headers
            ))
        })?;
        let body = res.json()?;
        let csrf = body["csrf_token"]
            .as_str()
            .ok_or_else(|| Error::Protocol(format!("no `csrf_token` in {body}")))?;
        Ok(Self {
            cookie: cookie.value,
            csrf_token: csrf.to_owned(),
        })
    }
}

/// One `Set-Cookie` header, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes in order, names as sent (`Path`, `Max-Age`, `Secure`, ...).
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(line: &str) -> Option<Self> {
        let mut parts = line.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let attributes = parts
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (p.to_owned(), None),
            })
            .collect();
        Some(Self {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        })
    }

    /// Whether the attribute is present (names compare ignoring case).
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(attribute))
    }

    /// The attribute's value, if it has one.
    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
            .and_then(|(_, v)| v.as_deref())
    }
}

/// `Basic base64(user:password)` (RFC 7617, UTF-8).
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes RFC 4648 base32 (either case, padding and spaces ignored), as in an
/// `otpauth://` secret.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 4226 HOTP with HMAC-SHA-1.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// RFC 6238 TOTP, 30-second steps from the Unix epoch.
pub fn totp(secret: &[u8], unix_secs: u64, digits: u32) -> u32 {
    hotp(secret, unix_secs / TOTP_STEP_SECS, digits)
}

pub const TOTP_STEP_SECS: u64 = 30;

/// The six-digit code of a 30-second step, zero-padded as an app shows it.
pub fn totp_code(secret: &[u8], step: u64) -> String {
    format!("{:06}", hotp(secret, step, 6))
}

/// The current 30-second step.
pub fn current_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        / TOTP_STEP_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(totp(secret, 59, 8), 94287082);
        assert_eq!(totp(secret, 1111111109, 8), 7081804);
        assert_eq!(totp(secret, 1111111111, 8), 14050471);
        assert_eq!(totp(secret, 1234567890, 8), 89005924);
        assert_eq!(totp(secret, 2000000000, 8), 69279037);
        assert_eq!(totp(secret, 20000000000, 8), 65353130);
        // RFC 4226 appendix D, six digits.
        assert_eq!(hotp(secret, 0, 6), 755224);
        assert_eq!(hotp(secret, 9, 6), 520489);
    }

    #[test]
    fn base32_and_base64_follow_rfc_4648() {
        assert_eq!(
            base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").as_deref(),
            Some(&b"12345678901234567890"[..])
        );
        assert_eq!(base32_decode("mzxw6ytb").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(
            base32_decode("MZXW6YTBOI======").as_deref(),
            Some(&b"foobar"[..])
        );
        assert!(base32_decode("not base32!").is_none());
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn set_cookie_lines_are_split_into_attributes() {
        let c = SetCookie::parse(
            "mecam_session=mcs_abc; Path=/; Max-Age=1800; Secure; HttpOnly; SameSite=Strict",
        )
        .expect("parses");
        assert_eq!(
            (c.name.as_str(), c.value.as_str()),
            ("mecam_session", "mcs_abc")
        );
        assert_eq!(c.get("path"), Some("/"));
        assert_eq!(c.get("Max-Age"), Some("1800"));
        assert!(c.has("secure") && c.has("HttpOnly"));
        assert_eq!(c.get("samesite"), Some("Strict"));
        assert!(!c.has("Domain"));
    }
}
