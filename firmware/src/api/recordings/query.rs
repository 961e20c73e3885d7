//! The `from` / `to` query parameters of the listing and the export. Pure and
//! panic-free (query strings are network input).

use crate::api::time::{format_rfc3339, parse_rfc3339};

const HOUR_US: u64 = 3_600_000_000;
/// What a listing covers when the caller does not say.
pub const DEFAULT_LIST_SPAN_US: u64 = 24 * HOUR_US;
/// Longest listing: a month of one-minute segments is ~45 000 rows.
pub const MAX_LIST_SPAN_US: u64 = 31 * 24 * HOUR_US;
/// Longest export: a day, a few GB at most at the default bit rate.
pub const MAX_EXPORT_SPAN_US: u64 = 24 * HOUR_US;

/// Longest query string looked at.
const MAX_QUERY_LEN: usize = 1024;
/// Longest value quoted back in an error message.
const MAX_QUOTED: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query string is longer than {MAX_QUERY_LEN} bytes")]
    TooLong,
    #[error("unknown query parameter `{0}`; this endpoint takes `from` and `to`")]
    Unknown(String),
    #[error("`{0}` is given more than once")]
    Repeated(&'static str),
    #[error("`{0}` is not valid percent-encoded UTF-8")]
    Encoding(&'static str),
    #[error(
        "`{name}` is `{value}`, not an RFC 3339 time such as 2026-03-01T08:00:00Z or 2026-03-01T09:00:00+01:00"
    )]
    Time { name: &'static str, value: String },
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`from` ({from}) is after `to` ({to})")]
    Order { from: String, to: String },
    #[error("`from` must be before `to`")]
    Empty,
    #[error("`from` and `to` are more than {max_hours} hours apart; ask for less at a time")]
    Span { max_hours: u64 },
}

/// A time range, µs since the epoch, `from_us <= to_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_us: u64,
    pub to_us: u64,
}

impl Window {
    /// The listing's range: by default the 24 hours before now; `from` alone runs to
    /// now, `to` alone goes back 24 hours. At most 31 days.
    pub fn for_list(query: Option<&str>, now_us: u64) -> Result<Self, QueryError> {
        let (from, to) = from_to(query)?;
        let to_us = to.unwrap_or(now_us);
        let from_us = from.unwrap_or_else(|| to_us.saturating_sub(DEFAULT_LIST_SPAN_US));
        Self::checked(from_us, to_us, MAX_LIST_SPAN_US)
    }

    /// The export's range: both ends required, at most 24 hours, not empty.
    pub fn for_export(query: Option<&str>) -> Result<Self, QueryError> {
        let (from, to) = from_to(query)?;
        let from_us = from.ok_or(QueryError::Missing("from"))?;
        let to_us = to.ok_or(QueryError::Missing("to"))?;
        if from_us == to_us {
            return Err(QueryError::Empty);
        }
        Self::checked(from_us, to_us, MAX_EXPORT_SPAN_US)
    }

    fn checked(from_us: u64, to_us: u64, max_span_us: u64) -> Result<Self, QueryError> {
        if from_us > to_us {
            return Err(QueryError::Order {
                from: format_rfc3339(from_us),
                to: format_rfc3339(to_us),
            });
        }
        if to_us - from_us > max_span_us {
            return Err(QueryError::Span {
                max_hours: max_span_us / HOUR_US,
            });
        }
        Ok(Self { from_us, to_us })
    }
}

/// `from` and `to` of a query string, parsed; anything else is refused.
fn from_to(query: Option<&str>) -> Result<(Option<u64>, Option<u64>), QueryError> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY_LEN {
        return Err(QueryError::TooLong);
    }
    let (mut from, mut to) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, slot) = match name {
            "from" => ("from", &mut from),
            "to" => ("to", &mut to),
            other => return Err(QueryError::Unknown(quote(other))),
        };
        if slot.is_some() {
            return Err(QueryError::Repeated(name));
        }
        let value = percent_decode(value).ok_or(QueryError::Encoding(name))?;
        let us = parse_rfc3339(&value).ok_or_else(|| QueryError::Time {
            name,
            value: quote(&value),
        })?;
        *slot = Some(us);
    }
    Ok((from, to))
}

/// Decodes `%XX` escapes; `+` stays a plus sign (an offset like `+01:00`), since these
/// are not HTML form submissions. `None` for a broken escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// At most [`MAX_QUOTED`] characters of `s`, for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// `20260301T080000Z`: an instant as a file name part (no `:`, which some systems
/// refuse in names).
pub fn compact_time(us: u64) -> String {
    let full = format_rfc3339(us - us % 1_000_000);
    full.chars().filter(|c| *c != '-' && *c != ':').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01T00:00:00Z
    const T: u64 = 1_772_323_200_000_000;

    #[test]
    fn query_list_window_defaults_and_limits() {
        let now = T + 100 * HOUR_US;
        assert_eq!(
            Window::for_list(None, now),
            Ok(Window {
                from_us: now - DEFAULT_LIST_SPAN_US,
                to_us: now
            })
        );
        assert_eq!(
            Window::for_list(Some("from=2026-03-01T00:00:00Z"), now),
            Ok(Window {
                from_us: T,
                to_us: now
            })
        );
        assert_eq!(
            Window::for_list(Some("to=2026-03-02T00:00:00Z"), now),
            Ok(Window {
                from_us: T,
                to_us: T + 24 * HOUR_US
            })
        );
        // An offset, percent-encoded or not, and fractional seconds.
        for q in [
            "from=2026-03-01T01:00:00%2B01:00&to=2026-03-01T00:00:01.5Z",
            "from=2026-03-01T01:00:00+01:00&to=2026-03-01T00%3A00%3A01.500Z",
        ] {
            assert_eq!(
                Window::for_list(Some(q), now),
                Ok(Window {
                    from_us: T,
                    to_us: T + 1_500_000
                }),
                "{q}"
            );
        }
        assert!(matches!(
            Window::for_list(
                Some("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"),
                now
            ),
            Err(QueryError::Order { .. })
        ));
        assert_eq!(
            Window::for_list(
                Some("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"),
                now
            ),
            Err(QueryError::Span { max_hours: 744 })
        );
        let e = Window::for_list(
            Some("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`from`") && e.contains("`to`"), "{e}");
    }

    #[test]
    fn query_export_window_needs_both_ends_and_at_most_a_day() {
        assert_eq!(
            Window::for_export(Some("from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z")),
            Ok(Window {
                from_us: T,
                to_us: T + 24 * HOUR_US
            })
        );
        assert_eq!(
            Window::for_export(Some("from=2026-03-01T00:00:00Z")),
            Err(QueryError::Missing("to"))
        );
        assert_eq!(Window::for_export(None), Err(QueryError::Missing("from")));
        assert_eq!(
            Window::for_export(Some(
                "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00.001Z"
            )),
            Err(QueryError::Span { max_hours: 24 })
        );
        assert_eq!(
            Window::for_export(Some("from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z")),
            Err(QueryError::Empty)
        );
    }

    #[test]
    fn query_hostile_inputs_are_refused_by_name() {
        let now = T;
        let long = format!("from={}", "1".repeat(2000));
        let cases: &[(&str, QueryError)] = &[
            (
                "form=2026-03-01T00:00:00Z",
                QueryError::Unknown("form".into()),
            ),
            (
                "from",
                QueryError::Time {
                    name: "from",
                    value: String::new(),
                },
            ),
            (
                "from=2026-03-01T00:00:00Z&from=2026-03-01T00:00:00Z",
                QueryError::Repeated("from"),
            ),
            ("to=%", QueryError::Encoding("to")),
            ("to=%zz", QueryError::Encoding("to")),
            ("to=%C3%28", QueryError::Encoding("to")),
            ("to=%+1", QueryError::Encoding("to")),
            (long.as_str(), QueryError::TooLong),
            (
                "to=yesterday",
                QueryError::Time {
                    name: "to",
                    value: "yesterday".into(),
                },
            ),
            (
                "to=1969-12-31T23:59:59Z",
                QueryError::Time {
                    name: "to",
                    value: "1969-12-31T23:59:59Z".into(),
                },
            ),
        ];
        for (q, want) in cases {
            assert_eq!(Window::for_list(Some(q), now).as_ref(), Err(want), "{q}");
        }
        // A long value is quoted shortened.
        let e = Window::for_list(Some(&format!("to={}", "x".repeat(500))), now).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        // Empty pairs are fine.
        assert!(Window::for_list(Some("&&"), now).is_ok());
        // Multi-byte characters are never split when quoting.
        let e = Window::for_list(Some(&format!("to={}", "é".repeat(100))), now).unwrap_err();
        assert!(e.to_string().contains('…'));
    }

    #[test]
    fn query_compact_time_for_file_names() {
        assert_eq!(compact_time(T + 250_000), "20260301T000000Z");
        assert_eq!(percent_decode("a%2Bb+c"), Some("a+b+c".into()));
    }
}
