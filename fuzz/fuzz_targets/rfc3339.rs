//! RFC 3339 timestamps in query strings (recording searches):
//! `mecam::api::time::parse_rfc3339`, and `format_rfc3339` on what it returns.
//!
//! Properties: nothing panics; a parsed time before the year 10000 formats back to text
//! that parses to the same time (to the millisecond the formatter keeps).
//!
//! Not checked, and known: a time in the last day of 9999 with a negative offset
//! (`9999-12-31T23:59:59-23:59`) is accepted but is in the year 10000 in UTC, which the
//! formatter writes with five digits and the parser then refuses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::time::{format_rfc3339, parse_rfc3339};

/// 10000-01-01T00:00:00Z in µs: the first time `format_rfc3339` writes with a
/// five-digit year.
const YEAR_10000_US: u64 = 253_402_300_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(us) = parse_rfc3339(text).filter(|&us| us < YEAR_10000_US) {
        let formatted = format_rfc3339(us);
        assert_eq!(
            parse_rfc3339(&formatted),
            Some(us / 1000 * 1000),
            "{text:?} -> {us} -> {formatted:?}"
        );
    }
});
