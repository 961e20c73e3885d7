//! Credentials in request headers, read before anyone is authenticated:
//! `mecam::api::credentials::{parse_authorization, parse_basic, session_cookie}`
//! (`Authorization: Bearer|Basic …` and the `Cookie` header).
//!
//! Input: the header value (UTF-8, as `HeaderValue::to_str` hands it over). Properties:
//! nothing panics; what is accepted is consistent; Basic credentials round-trip
//! through standard base64.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::credentials::{Presented, parse_authorization, parse_basic, session_cookie};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match parse_authorization(text) {
        Presented::Bearer(token) => assert!(!token.is_empty() && !token.contains(' ')),
        Presented::Basic { user, .. } => assert!(!user.contains(':')),
        _ => {}
    }

    if let Some((user, password)) = parse_basic(text) {
        assert!(!user.contains(':'));
        // What a client would send for these credentials decodes to the same.
        let encoded = base64(format!("{user}:{}", password.as_str()).as_bytes());
        let again = parse_basic(&encoded).expect("a client's encoding is accepted");
        assert_eq!(
            (again.0.as_str(), again.1.as_str()),
            (user.as_str(), password.as_str())
        );
    }

    if let Some(value) = session_cookie(text) {
        assert!(!value.is_empty() && text.contains(value));
    }
});

/// Standard base64 with padding (RFC 4648 §4), as browsers and curl send Basic.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
