//! Session and API tokens, roles, and the CSRF defences for cookie sessions.
//!
//! # Tokens
//!
//! A token is 256 random bits, base64url-encoded behind a prefix that says what it is:
//! `mcs_` for a browser session (the cookie), `mct_` for an API token (a bearer token
//! for scripts). The prefix lets secret scanners and people recognise a leaked token,
//! and stops one kind being used as the other (the prefix is part of what is hashed).
//!
//! The device keeps only SHA-256 of a token. A stolen database then holds nothing that
//! logs in, and a lookup by hash leaks nothing through timing: an attacker cannot steer
//! the hash of a guess towards a stored one. A slow hash is unnecessary for 256-bit
//! random values.
//!
//! # CSRF
//!
//! Cookie-authenticated state changes need two things: an `Origin` that is exactly
//! `https://<Host>` ([`check_origin`]), and an `X-CSRF-Token` header carrying
//! HMAC-SHA-256(per-boot key, session hash) ([`CsrfKey`]). The token is bound to one
//! session, so a token from another session (an attacker's own login) is refused, and
//! it needs no storage. A reboot changes the key: the UI fetches a fresh token with
//! its session after a reboot. Bearer-token requests need neither.

use std::fmt;

use ring::hmac;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::encoding::{
    RandomError, base64url_decode, base64url_encode, ct_eq, fill_random, hex_decode, hex_encode,
    sha256,
};

/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Length of the base64url body of a token.
const TOKEN_BODY_CHARS: usize = 43;
const TOKEN_HASH_LABEL: &[u8] = b"ME_CAM token v1\0";
const CSRF_LABEL: &[u8] = b"ME_CAM csrf v1\0";

/// What a token is for; the prefix in its text says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A browser session (`mcs_`), carried in a cookie.
    Session,
    /// A named API token (`mct_`), carried as a bearer token or Basic password.
    Api,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Session => "mcs_",
            Self::Api => "mct_",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a ME_CAM token")]
    Malformed,
    #[error("a {found:?} token where a {expected:?} token is needed")]
    WrongKind {
        expected: TokenKind,
        found: TokenKind,
    },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A token in the clear: only ever in a response (once) or a request. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Token {
    #[zeroize(skip)]
    kind: TokenKind,
    text: String,
}

impl Token {
    /// A fresh random token of `kind`.
    pub fn generate(kind: TokenKind) -> Result<Self, TokenError> {
        let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
        fill_random(&mut raw[..])?;
        let body = Zeroizing::new(base64url_encode(&raw[..]));
        Ok(Self {
            kind,
            text: format!("{}{}", kind.prefix(), body.as_str()),
        })
    }

    /// Parses a token from a cookie, header or Basic password, checking its prefix and
    /// that its body is exactly 256 bits of canonical base64url.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let (kind, body) = [TokenKind::Session, TokenKind::Api]
            .into_iter()
            .find_map(|kind| text.strip_prefix(kind.prefix()).map(|body| (kind, body)))
            .ok_or(TokenError::Malformed)?;
        if body.len() != TOKEN_BODY_CHARS {
            return Err(TokenError::Malformed);
        }
        let raw = Zeroizing::new(base64url_decode(body).ok_or(TokenError::Malformed)?);
        if raw.len() != TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }

    /// Parses and requires `kind` (a session cookie must not hold an API token).
    pub fn parse_kind(text: &str, kind: TokenKind) -> Result<Self, TokenError> {
        let token = Self::parse(text)?;
        if token.kind != kind {
            return Err(TokenError::WrongKind {
                expected: kind,
                found: token.kind,
            });
        }
        Ok(token)
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The text to hand to the client (cookie value, API answer).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What the store keeps and looks the token up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash(sha256(&[TOKEN_HASH_LABEL, self.text.as_bytes()]))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:?}, <redacted>)", self.kind)
    }
}

/// SHA-256 of a token: the session or token id in storage. Not secret (it cannot be
/// turned back into the token) but compared in constant time anyway. Serialized as hex.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Hex of the hash, for storage keys.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        hex_decode::<32>(text).map(Self)
    }

    /// A short id for logs and the token list: the first 8 hex digits.
    pub fn short_id(&self) -> String {
        hex_encode(&self.0[..4])
    }

    /// Whether `token` is the one this hash was made from, in constant time.
    pub fn matches(&self, token: &Token) -> bool {
        ct_eq(&self.0, &token.hash().0)
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

/// Consistent with the (constant-time) equality: both look at all 32 bytes.
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.short_id())
    }
}

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("token hash is not 64 hex digits"))
    }
}

/// What an account (or API token) may do: the store's row type, with the rules here.
pub use crate::store::Role;

/// Things a request does, for [`Role::permits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewLive,
    ViewEvents,
    ViewRecordings,
    /// Change one's own password or TOTP enrolment, log out.
    ManageOwnAccount,
    ChangeSettings,
    ManageUsers,
    ManageTokens,
    InstallUpdate,
    ReadAudit,
}

impl Role {
    pub fn permits(self, action: Action) -> bool {
        match self {
            Self::Admin => true,
            Self::Viewer => matches!(
                action,
                Action::ViewLive
                    | Action::ViewEvents
                    | Action::ViewRecordings
                    | Action::ManageOwnAccount
            ),
        }
    }
}

/// The per-boot key CSRF tokens are made with. Lives only in memory; wiped on drop.
pub struct CsrfKey(hmac::Key);

impl CsrfKey {
    /// A fresh random key (once per boot).
    pub fn generate() -> Result<Self, RandomError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        fill_random(&mut raw[..])?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &raw[..])))
    }

    /// The CSRF token for a session: sent in the login answer's `csrf_token`.
    pub fn token_for(&self, session: &TokenHash) -> String {
        let tag = hmac::sign(
            &self.0,
            &[CSRF_LABEL, session.as_bytes().as_slice()].concat(),
        );
        base64url_encode(tag.as_ref())
    }

    /// Whether `presented` (the `X-CSRF-Token` header) is this session's token.
    /// Constant-time (ring's HMAC verify).
    pub fn verify(&self, session: &TokenHash, presented: &str) -> bool {
        let Some(tag) = base64url_decode(presented) else {
            return false;
        };
        hmac::verify(
            &self.0,
            &[CSRF_LABEL, session.as_bytes().as_slice()].concat(),
            &tag,
        )
        .is_ok()
    }
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

/// Why a cookie-authenticated state change was refused by the Origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("missing Origin header")]
    Missing,
    #[error("opaque (null) Origin")]
    Null,
    #[error("missing or malformed Host header")]
    BadHost,
    #[error("Origin is not this device over HTTPS")]
    CrossOrigin,
}

/// Splits `host[:port]`, lower-cases the host, and drops an explicit default port 443,
/// which browsers leave out of `Origin` and `Host` alike. `None` if malformed.
fn normalise_authority(authority: &str) -> Option<String> {
    if authority.is_empty()
        || !authority.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
    {
        return None;
    }
    let lower = authority.to_ascii_lowercase();
    let (host, port) = match lower.rfind(':') {
        // An IPv6 literal's colons are inside the brackets; a port follows `]`.
        Some(i) if !lower[i..].contains(']') => (&lower[..i], Some(&lower[i + 1..])),
        _ => (lower.as_str(), None),
    };
    if host.is_empty() {
        return None;
    }
    match port {
        None | Some("443") => Some(host.to_owned()),
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            let port: u16 = port.parse().ok()?;
            Some(format!("{host}:{port}"))
        }
        Some(_) => None,
    }
}

/// The Origin check for cookie-authenticated state changes: `origin` (the `Origin`
/// header) must be exactly `https://` followed by the request's `Host` — same scheme,
/// host and port. A missing or `null` Origin is refused: every browser that matters
/// sends Origin on POST/PUT/DELETE, and scripts use bearer tokens, which skip this.
pub fn check_origin(origin: Option<&str>, host: Option<&str>) -> Result<(), OriginError> {
    let origin = origin.map(str::trim).ok_or(OriginError::Missing)?;
    if origin.is_empty() {
        return Err(OriginError::Missing);
    }
    if origin.eq_ignore_ascii_case("null") {
        return Err(OriginError::Null);
    }
    let host = host
        .map(str::trim)
        .and_then(normalise_authority)
        .ok_or(OriginError::BadHost)?;
    let authority = origin
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .map(|_| &origin[8..])
        .ok_or(OriginError::CrossOrigin)?;
    match normalise_authority(authority) {
        Some(origin_host) if origin_host == host => Ok(()),
        _ => Err(OriginError::CrossOrigin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_url_safe() {
        let a = Token::generate(TokenKind::Session).unwrap();
        let b = Token::generate(TokenKind::Session).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("mcs_"));
        assert_eq!(a.expose().len(), 4 + TOKEN_BODY_CHARS);
        assert!(
            a.expose()[4..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let api = Token::generate(TokenKind::Api).unwrap();
        assert!(api.expose().starts_with("mct_"));
    }

    #[test]
    fn token_hash_never_equals_the_token_and_matches_only_it() {
        let token = Token::generate(TokenKind::Api).unwrap();
        let hash = token.hash();
        assert_ne!(hash.to_hex(), token.expose());
        assert!(!hash.to_hex().contains(&token.expose()[4..]));
        assert!(hash.matches(&token));
        let other = Token::generate(TokenKind::Api).unwrap();
        assert!(!hash.matches(&other));
        assert_ne!(hash, other.hash());
        // Same body, other prefix: another hash (kinds cannot stand in for each other).
        let body = &token.expose()[4..];
        let as_session = Token::parse(&format!("mcs_{body}")).unwrap();
        assert_ne!(as_session.hash(), hash);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<TokenHash>(&json).unwrap(), hash);
    }

    #[test]
    fn parse_round_trips_and_refuses_malformed_tokens() {
        let token = Token::generate(TokenKind::Session).unwrap();
        let parsed = Token::parse(token.expose()).unwrap();
        assert_eq!(parsed.kind(), TokenKind::Session);
        assert_eq!(parsed.hash(), token.hash());
        let body = &token.expose()[4..];
        for bad in [
            String::new(),
            "mcs_".to_owned(),
            body.to_owned(),
            format!("xyz_{body}"),
            format!("mcs_{}", &body[1..]),
            format!("mcs_{body}A"),
            format!("mcs_{}+", &body[1..]),
            format!("MCS_{body}"),
        ] {
            assert_eq!(
                Token::parse(&bad).unwrap_err(),
                TokenError::Malformed,
                "{bad:?}"
            );
        }
        assert_eq!(
            Token::parse_kind(token.expose(), TokenKind::Api).unwrap_err(),
            TokenError::WrongKind {
                expected: TokenKind::Api,
                found: TokenKind::Session
            }
        );
        assert!(Token::parse_kind(token.expose(), TokenKind::Session).is_ok());
    }

    #[test]
    fn debug_does_not_print_tokens_or_keys() {
        let token = Token::generate(TokenKind::Session).unwrap();
        let shown = format!("{token:?} {:?}", CsrfKey::generate().unwrap());
        assert!(!shown.contains(&token.expose()[4..]), "{shown}");
    }

    #[test]
    fn roles() {
        for action in [
            Action::ViewLive,
            Action::ViewEvents,
            Action::ViewRecordings,
            Action::ManageOwnAccount,
            Action::ChangeSettings,
            Action::ManageUsers,
            Action::ManageTokens,
            Action::InstallUpdate,
            Action::ReadAudit,
        ] {
            assert!(Role::Admin.permits(action), "{action:?}");
        }
        for allowed in [
            Action::ViewLive,
            Action::ViewEvents,
            Action::ViewRecordings,
            Action::ManageOwnAccount,
        ] {
            assert!(Role::Viewer.permits(allowed), "{allowed:?}");
        }
        for forbidden in [
            Action::ChangeSettings,
            Action::ManageUsers,
            Action::ManageTokens,
            Action::InstallUpdate,
            Action::ReadAudit,
        ] {
            assert!(!Role::Viewer.permits(forbidden), "{forbidden:?}");
        }
        assert_eq!(serde_json::to_string(&Role::Viewer).unwrap(), "\"viewer\"");
    }

    #[test]
    fn csrf_token_is_bound_to_its_session_and_boot() {
        let key = CsrfKey::generate().unwrap();
        let mine = Token::generate(TokenKind::Session).unwrap().hash();
        let theirs = Token::generate(TokenKind::Session).unwrap().hash();
        let token = key.token_for(&mine);
        assert!(key.verify(&mine, &token));
        assert!(!key.verify(&theirs, &token), "another session's token");
        assert!(!key.verify(&mine, &key.token_for(&theirs)));
        assert!(!key.verify(&mine, ""));
        assert!(!key.verify(&mine, "not base64!"));
        assert!(!key.verify(&mine, &token[..token.len() - 1]));
        let after_reboot = CsrfKey::generate().unwrap();
        assert!(!after_reboot.verify(&mine, &token));
    }

    #[test]
    fn origin_must_be_https_same_host_and_port() {
        let host = Some("mecam.local");
        assert_eq!(check_origin(Some("https://mecam.local"), host), Ok(()));
        assert_eq!(check_origin(Some("https://MECAM.local"), host), Ok(()));
        assert_eq!(check_origin(Some("https://mecam.local:443"), host), Ok(()));
        assert_eq!(
            check_origin(Some("https://mecam.local"), Some("mecam.local:443")),
            Ok(())
        );
        assert_eq!(
            check_origin(Some("https://192.168.1.9:8443"), Some("192.168.1.9:8443")),
            Ok(())
        );
        assert_eq!(
            check_origin(Some("https://[fd00::5]"), Some("[fd00::5]")),
            Ok(())
        );

        assert_eq!(check_origin(None, host), Err(OriginError::Missing));
        assert_eq!(check_origin(Some(""), host), Err(OriginError::Missing));
        assert_eq!(check_origin(Some("null"), host), Err(OriginError::Null));
        assert_eq!(
            check_origin(Some("https://evil.example"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local.evil.example"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local:8443"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local"), Some("mecam.local:8443")),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("http://mecam.local"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local/"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://user@mecam.local"), host),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://[fd00::6]"), Some("[fd00::5]")),
            Err(OriginError::CrossOrigin)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local"), None),
            Err(OriginError::BadHost)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local"), Some("")),
            Err(OriginError::BadHost)
        );
        assert_eq!(
            check_origin(Some("https://mecam.local"), Some("mecam.local:x")),
            Err(OriginError::BadHost)
        );
    }
}
