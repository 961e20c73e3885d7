//! What a request presents as proof of identity, parsed from its headers: the session
//! cookie, a bearer token, or HTTP Basic. Pure functions, fuzzed (`fuzz/`), because every
//! byte here comes from the network before anyone is authenticated.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use zeroize::Zeroizing;

use crate::auth::encoding::base64url_decode;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mecam_session";

/// Longest `Authorization` or `Cookie` value looked at; longer ones are ignored (the
/// request head as a whole is capped at 8 KiB anyway).
const MAX_CREDENTIAL_LEN: usize = 4096;

/// Credentials found in a request, not yet checked.
#[derive(PartialEq, Eq)]
pub enum Presented {
    None,
    /// The session cookie's value.
    Cookie(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic` user and password (or an API token as the password).
    Basic {
        user: String,
        password: Zeroizing<String>,
    },
    /// An `Authorization` header that could not be parsed: refused, never ignored, so
    /// a client with a broken header learns why.
    Malformed,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials stay out of logs.
        f.write_str(match self {
            Self::None => "None",
            Self::Cookie(_) => "Cookie(<redacted>)",
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::Basic { .. } => "Basic(<redacted>)",
            Self::Malformed => "Malformed",
        })
    }
}

/// The credentials of a request. An `Authorization` header wins over the cookie: a
/// script that sends a token means the token.
pub fn presented(headers: &HeaderMap) -> Presented {
    if let Some(value) = headers.get(AUTHORIZATION) {
        return match value.to_str() {
            Ok(text) => parse_authorization(text),
            Err(_) => Presented::Malformed,
        };
    }
    for value in headers.get_all(COOKIE) {
        if let Some(v) = value.to_str().ok().and_then(session_cookie) {
            return Presented::Cookie(v.to_owned());
        }
    }
    Presented::None
}

/// Parses an `Authorization` header value (`Bearer …` or `Basic …`).
pub fn parse_authorization(value: &str) -> Presented {
    if value.len() > MAX_CREDENTIAL_LEN {
        return Presented::Malformed;
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() && !rest.contains(' ') {
        Presented::Bearer(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        match parse_basic(rest) {
            Some((user, password)) => Presented::Basic { user, password },
            None => Presented::Malformed,
        }
    } else {
        Presented::Malformed
    }
}

/// Decodes the credentials of `Authorization: Basic` (RFC 7617): base64 of
/// `user:password`, UTF-8. The user part cannot contain a colon; the password can.
pub fn parse_basic(encoded: &str) -> Option<(String, Zeroizing<String>)> {
    if encoded.len() > MAX_CREDENTIAL_LEN {
        return None;
    }
    let unpadded = encoded.trim_end_matches('=');
    if encoded.len() - unpadded.len() > 2 {
        return None;
    }
    // Standard base64 differs from base64url only in two letters.
    let url_alphabet: String = unpadded
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            '-' | '_' => '!', // not valid in standard base64
            c => c,
        })
        .collect();
    let bytes = Zeroizing::new(base64url_decode(&url_alphabet)?);
    let text = std::str::from_utf8(&bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(password.to_owned())))
}

/// The value of the session cookie in a `Cookie` header (`a=1; mecam_session=…`).
pub fn session_cookie(header: &str) -> Option<&str> {
    if header.len() > MAX_CREDENTIAL_LEN {
        return None;
    }
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name.trim() == SESSION_COOKIE && !value.is_empty()).then_some(value.trim())
    })
}

/// `Set-Cookie` for a new session, valid for `max_age_secs`. `Secure`: the device
/// speaks only HTTPS; `HttpOnly`: no script can read it; `SameSite=Strict`: no other
/// site's page can make the browser send it.
pub fn set_session_cookie(token: &str, max_age_secs: u64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; Secure; HttpOnly; SameSite=Strict"
    )
}

/// `Set-Cookie` that removes the session cookie (logout).
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn basic_decodes_user_and_password_with_colons() {
        // "alice:pa:ss word" in standard base64.
        let (user, password) = parse_basic("YWxpY2U6cGE6c3Mgd29yZA==").unwrap();
        assert_eq!(user, "alice");
        assert_eq!(password.as_str(), "pa:ss word");
        // "a:?>" uses `+`/`/` territory: "YTo/Pg==".
        let (_, password) = parse_basic("YTo/Pg==").unwrap();
        assert_eq!(password.as_str(), "?>");
    }

    #[test]
    fn hostile_basic_values_are_refused() {
        for bad in [
            "",
            "====",
            "YWxpY2U",
            "YWxpY2U===",
            "no colon",
            "YWJj",
            "-_-_",
            "\u{0}",
        ] {
            assert!(parse_basic(bad).is_none(), "{bad:?}");
        }
        assert!(parse_basic(&"A".repeat(10_000)).is_none());
    }

    #[test]
    fn authorization_schemes() {
        assert_eq!(
            parse_authorization("Bearer mct_abc"),
            Presented::Bearer("mct_abc".into())
        );
        assert_eq!(
            parse_authorization("bearer  mct_abc "),
            Presented::Bearer("mct_abc".into())
        );
        assert!(matches!(
            parse_authorization("Basic YWxpY2U6eA=="),
            Presented::Basic { .. }
        ));
        for bad in ["Bearer", "Bearer a b", "Digest x", "Basic !!", ""] {
            assert_eq!(parse_authorization(bad), Presented::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn cookie_is_found_among_others() {
        assert_eq!(
            session_cookie("theme=dark; mecam_session=mcs_x; other=1"),
            Some("mcs_x")
        );
        assert_eq!(session_cookie("mecam_session="), None);
        assert_eq!(session_cookie("xmecam_session=1"), None);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=b"));
        h.append(COOKIE, HeaderValue::from_static("mecam_session=mcs_y"));
        assert_eq!(presented(&h), Presented::Cookie("mcs_y".into()));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert_eq!(presented(&h), Presented::Bearer("t".into()));
    }

    #[test]
    fn cookies_are_locked_down() {
        let c = set_session_cookie("mcs_x", 60);
        for part in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_session_cookie().contains("Max-Age=0"));
    }
}
