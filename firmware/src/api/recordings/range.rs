//! The HTTP `Range` header (RFC 9110 §14), for one range of bytes: what seeking in a
//! browser's video player sends (`bytes=123-`, sometimes `bytes=a-b`, `bytes=-n`).
//!
//! Pure and panic-free: the header is network input (fuzzed).

/// Longest header looked at. Players send a few dozen bytes; anything far longer is
/// refused without being scanned.
const MAX_HEADER_LEN: usize = 1024;

/// Why a `bytes` range cannot be served. Both answer 416 with
/// `Content-Range: bytes */<len>` (RFC 9110 §15.5.17 covers both cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Well-formed, but starts at or past the end (or asks for the last 0 bytes).
    #[error("the range starts past the end of the {len}-byte content")]
    Unsatisfiable { len: u64 },
    /// `bytes=` followed by something that is not a byte range.
    #[error("the Range header is not `bytes=first-last`, `bytes=first-` or `bytes=-suffix`")]
    Malformed,
}

/// Parses a `Range` header against content of `len` bytes.
///
/// - `Ok(Some((first, last)))`: serve bytes `first..=last` (206); `last < len`.
/// - `Ok(None)`: serve everything (200). For another unit than `bytes` (RFC 9110 says
///   to ignore it) and for several ranges (a server may answer those whole, and
///   video players never ask for them).
/// - `Err(_)`: 416.
pub fn parse_range(header: &str, len: u64) -> Result<Option<(u64, u64)>, RangeError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(RangeError::Malformed);
    }
    let header = header.trim_matches(is_ows);
    let Some((unit, set)) = header.split_once('=') else {
        return Err(RangeError::Malformed);
    };
    if !is_token(unit) {
        return Err(RangeError::Malformed);
    }
    if !unit.eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    // Empty list elements are allowed by the list syntax (RFC 9110 §5.6.1).
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches(is_ows))
        .filter(|s| !s.is_empty());
    let Some(spec) = specs.next() else {
        return Err(RangeError::Malformed);
    };
    let first = parse_spec(spec)?;
    if specs.next().is_some() {
        // Several ranges: each must still be well-formed for the header to count.
        for spec in set
            .split(',')
            .map(|s| s.trim_matches(is_ows))
            .filter(|s| !s.is_empty())
        {
            parse_spec(spec)?;
        }
        return Ok(None);
    }
    resolve(first, len)
}

/// One `range-spec`, before the content's length is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last` (`last` saturated at `u64::MAX`).
    FromTo { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

fn parse_spec(spec: &str) -> Result<Spec, RangeError> {
    let (a, b) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Err(RangeError::Malformed),
        (true, false) => Ok(Spec::Suffix(digits(b)?)),
        (false, _) => {
            let first = digits(a)?;
            let last = if b.is_empty() { None } else { Some(digits(b)?) };
            if last.is_some_and(|last| last < first) {
                // RFC 9110 §14.1.1: such a range is invalid.
                return Err(RangeError::Malformed);
            }
            Ok(Spec::FromTo { first, last })
        }
    }
}

fn resolve(spec: Spec, len: u64) -> Result<Option<(u64, u64)>, RangeError> {
    let unsatisfiable = RangeError::Unsatisfiable { len };
    match spec {
        Spec::FromTo { first, last } => {
            if first >= len {
                return Err(unsatisfiable);
            }
            let last = last.map_or(len - 1, |last| last.min(len - 1));
            Ok(Some((first, last)))
        }
        Spec::Suffix(0) => Err(unsatisfiable),
        Spec::Suffix(_) if len == 0 => Err(unsatisfiable),
        Spec::Suffix(n) => Ok(Some((len.saturating_sub(n), len - 1))),
    }
}

/// A run of ASCII digits as a number, saturating at `u64::MAX`: a position beyond any
/// content is as good as any other position past its end.
fn digits(s: &str) -> Result<u64, RangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Malformed);
    }
    Ok(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// An RFC 9110 `token`, as a range unit must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The `Content-Range` value of a 206 answer.
pub fn content_range(first: u64, last: u64, len: u64) -> String {
    format!("bytes {first}-{last}/{len}")
}

/// The `Content-Range` value of a 416 answer.
pub fn unsatisfied_range(len: u64) -> String {
    format!("bytes */{len}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms_players_send() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=1000-", 5000), Ok(Some((1000, 4999))));
        assert_eq!(parse_range("bytes=0-", 1), Ok(Some((0, 0))));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(parse_range("bytes=500-99999", 1000), Ok(Some((500, 999))));
        assert_eq!(parse_range("bytes=999-999", 1000), Ok(Some((999, 999))));
        assert_eq!(parse_range(" Bytes=1-2 ", 10), Ok(Some((1, 2))));
        assert_eq!(parse_range("bytes= 1-2 ,", 10), Ok(Some((1, 2))));
    }

    #[test]
    fn range_unsatisfiable() {
        let u = |len| Err(RangeError::Unsatisfiable { len });
        assert_eq!(parse_range("bytes=1000-", 1000), u(1000));
        assert_eq!(parse_range("bytes=1000-2000", 1000), u(1000));
        assert_eq!(parse_range("bytes=-0", 1000), u(1000));
        assert_eq!(parse_range("bytes=0-", 0), u(0));
        assert_eq!(parse_range("bytes=-1", 0), u(0));
        assert_eq!(
            parse_range("bytes=99999999999999999999999999-", 10),
            u(10),
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn range_ignored_whole_answer() {
        assert_eq!(parse_range("items=0-5", 10), Ok(None), "unknown unit");
        assert_eq!(parse_range("bytes=0-1,5-6", 10), Ok(None), "several ranges");
        assert_eq!(parse_range("bytes=0-1, -2", 10), Ok(None));
    }

    #[test]
    fn range_hostile_inputs_are_refused_without_panicking() {
        let long = format!("bytes={}", "1".repeat(5000));
        let many = format!("bytes={}", "0-1,".repeat(1000));
        let overflow_last = format!("bytes=5-{}", "9".repeat(40));
        assert_eq!(parse_range(&overflow_last, 10), Ok(Some((5, 9))));
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=--1",
            "bytes=1--2",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=0x10-",
            "bytes=5-4",
            "bytes=1-2,x",
            "bytes=１-2",
            "bytes=1 -2",
            "bytes=1-2-3",
            "=0-1",
            "by tes=0-1",
            "bytes=\u{0}-1",
            long.as_str(),
            many.as_str(),
        ] {
            assert_eq!(parse_range(bad, 10), Err(RangeError::Malformed), "{bad:?}");
            // Every length, including the extremes, is safe.
            for len in [0, 1, u64::MAX] {
                let _ = parse_range(bad, len);
            }
        }
        assert_eq!(
            parse_range("bytes=0-", u64::MAX),
            Ok(Some((0, u64::MAX - 1)))
        );
        assert_eq!(
            parse_range("bytes=-18446744073709551615", u64::MAX),
            Ok(Some((0, u64::MAX - 1)))
        );
    }

    #[test]
    fn range_header_values() {
        assert_eq!(content_range(0, 99, 1000), "bytes 0-99/1000");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
    }
}
