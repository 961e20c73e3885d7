//! Tokens and the CSRF defences: `Token::parse` (session cookie, bearer token, Basic
//! password), `check_origin` (the `Origin` and `Host` headers) and `CsrfKey::verify`
//! (the `X-CSRF-Token` header). All of it is read before a request is authenticated.
//!
//! Input: UTF-8 text. The whole text is a token candidate; split at the first newline
//! it is Origin and Host, and the Origin half is also a CSRF token candidate.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mecam::auth::{CsrfKey, Token, TokenHash, check_origin};

/// One key per process, as on the device (one per boot).
static CSRF: LazyLock<CsrfKey> = LazyLock::new(|| CsrfKey::generate().expect("OS randomness"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(token) = Token::parse(text) {
        // Accepted only as exactly what was sent, and consistently.
        assert_eq!(token.expose(), text);
        assert!(Token::parse_kind(text, token.kind()).is_ok());
        assert!(token.hash().matches(&token));
        assert_eq!(
            TokenHash::from_hex(&token.hash().to_hex()),
            Some(token.hash())
        );
    }

    let (origin, host) = text.split_once('\n').unwrap_or((text, ""));
    if check_origin(Some(origin), Some(host)).is_ok() {
        // Only ever an https:// origin.
        let scheme = origin.trim().get(..8).unwrap_or_default();
        assert!(scheme.eq_ignore_ascii_case("https://"), "{origin:?}");
    }
    assert!(check_origin(None, Some(host)).is_err());
    assert!(check_origin(Some(origin), None).is_err());

    // A forged CSRF token never verifies (the session is fixed; the key is secret).
    let session = TokenHash::from_bytes([7; 32]);
    let genuine = CSRF.token_for(&session);
    if CSRF.verify(&session, origin) {
        assert_eq!(origin, genuine);
    }
});
