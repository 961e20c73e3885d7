//! Query strings of the events endpoints. Pure and panic-free (network input).

use crate::api::recordings::query::percent_decode;
use crate::api::time::{format_rfc3339, parse_rfc3339};
use crate::events::EventKind;
use crate::events::store::{Cursor, EventQuery, MAX_LIMIT};

/// Rows a listing returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Longest query string looked at.
const MAX_QUERY_LEN: usize = 1024;
/// Longest value quoted back in an error message.
const MAX_QUOTED: usize = 64;

const LIST_NAMES: &[&str] = &["from", "to", "kind", "limit", "cursor"];
const LIST_PARAMS: &str = "`from`, `to`, `kind`, `limit` and `cursor`";
const STREAM_NAMES: &[&str] = &["kind"];
const STREAM_PARAMS: &str = "`kind`";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query string is longer than {MAX_QUERY_LEN} bytes")]
    TooLong,
    #[error("unknown query parameter `{name}`; this endpoint takes {accepted}")]
    Unknown {
        name: String,
        accepted: &'static str,
    },
    #[error("`{0}` is given more than once")]
    Repeated(&'static str),
    #[error("`{0}` is not valid percent-encoded UTF-8")]
    Encoding(&'static str),
    #[error(
        "`{name}` is `{value}`, not an RFC 3339 time such as 2026-03-01T08:00:00Z or 2026-03-01T09:00:00+01:00"
    )]
    Time { name: &'static str, value: String },
    #[error("`from` ({from}) is after `to` ({to})")]
    Order { from: String, to: String },
    #[error("`kind` is `{0}`; expected `motion` or `person`")]
    Kind(String),
    #[error("`limit` is `{0}`; expected a whole number from 1 to {MAX_LIMIT}")]
    Limit(String),
    #[error(
        "`cursor` is `{0}`, which this device did not give out; pass `next_cursor` of the previous page unchanged"
    )]
    Cursor(String),
}

/// `GET /api/v1/events`: `from`, `to` (RFC 3339; events that *started* in
/// `[from, to)`, default: all), `kind`, `limit` (1–500, default 100) and `cursor`.
pub fn parse_list(query: Option<&str>) -> Result<EventQuery, QueryError> {
    let mut q = EventQuery {
        limit: DEFAULT_LIMIT,
        ..EventQuery::default()
    };
    let (mut from, mut to) = (None, None);
    let (mut kind, mut limit, mut cursor) = (None, None, None);
    for (name, value) in pairs(query, LIST_NAMES, LIST_PARAMS)? {
        match name {
            "from" => set(&mut from, "from", parse_time("from", value)?)?,
            "to" => set(&mut to, "to", parse_time("to", value)?)?,
            "kind" => set(&mut kind, "kind", parse_kind(value)?)?,
            "limit" => set(&mut limit, "limit", parse_limit(value)?)?,
            "cursor" => set(
                &mut cursor,
                "cursor",
                Cursor::decode(&value).ok_or_else(|| QueryError::Cursor(quote(&value)))?,
            )?,
            // `pairs` only yields the names it was told about.
            _ => {}
        }
    }
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(QueryError::Order {
            from: format_rfc3339(f),
            to: format_rfc3339(t),
        });
    }
    q.from_us = from.unwrap_or(0);
    q.to_us = to.unwrap_or(u64::MAX);
    q.kind = kind;
    q.limit = limit.unwrap_or(DEFAULT_LIMIT);
    q.before = cursor;
    Ok(q)
}

/// `GET /api/v1/events/stream`: an optional `kind`.
pub fn parse_stream(query: Option<&str>) -> Result<Option<EventKind>, QueryError> {
    let mut kind = None;
    for (name, value) in pairs(query, STREAM_NAMES, STREAM_PARAMS)? {
        if name == "kind" {
            set(&mut kind, "kind", parse_kind(value)?)?;
        }
    }
    Ok(kind)
}

/// The `name=value` pairs, names checked against `names` (listed for people in
/// `accepted`), values decoded.
fn pairs(
    query: Option<&str>,
    names: &[&'static str],
    accepted: &'static str,
) -> Result<Vec<(&'static str, String)>, QueryError> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY_LEN {
        return Err(QueryError::TooLong);
    }
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(name) = names.iter().copied().find(|k| *k == name) else {
            return Err(QueryError::Unknown {
                name: quote(name),
                accepted,
            });
        };
        let value = percent_decode(value).ok_or(QueryError::Encoding(name))?;
        out.push((name, value));
    }
    Ok(out)
}

fn set<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), QueryError> {
    if slot.is_some() {
        return Err(QueryError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_time(name: &'static str, value: String) -> Result<u64, QueryError> {
    parse_rfc3339(&value).ok_or_else(|| QueryError::Time {
        name,
        value: quote(&value),
    })
}

fn parse_kind(value: String) -> Result<EventKind, QueryError> {
    match value.as_str() {
        "motion" => Ok(EventKind::Motion),
        "person" => Ok(EventKind::Person),
        _ => Err(QueryError::Kind(quote(&value))),
    }
}

fn parse_limit(value: String) -> Result<usize, QueryError> {
    let digits = !value.is_empty() && value.len() <= 4 && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<usize>() {
        Ok(n) if digits && (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(QueryError::Limit(quote(&value))),
    }
}

/// At most [`MAX_QUOTED`] characters of `s`, for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01T00:00:00Z
    const T: u64 = 1_772_323_200_000_000;

    #[test]
    fn list_query_defaults_to_everything_newest_first_100_at_a_time() {
        assert_eq!(
            parse_list(None),
            Ok(EventQuery {
                from_us: 0,
                to_us: u64::MAX,
                kind: None,
                limit: 100,
                before: None
            })
        );
        assert_eq!(parse_list(Some("&&")), parse_list(None));
    }

    #[test]
    fn list_query_reads_every_parameter() {
        let cursor = Cursor {
            start_us: T,
            id: 42,
        };
        let q = format!(
            "from=2026-03-01T01:00:00%2B01:00&to=2026-03-02T00:00:00Z&kind=person&limit=500&cursor={}",
            cursor.encode()
        );
        assert_eq!(
            parse_list(Some(&q)),
            Ok(EventQuery {
                from_us: T,
                to_us: T + 86_400_000_000,
                kind: Some(EventKind::Person),
                limit: 500,
                before: Some(cursor),
            })
        );
        assert_eq!(
            parse_list(Some("kind=motion&limit=1")).map(|q| (q.kind, q.limit)),
            Ok((Some(EventKind::Motion), 1))
        );
        // from == to is an empty window, not an error.
        assert!(parse_list(Some("from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn list_query_errors_name_the_parameter() {
        let cases: &[(&str, &str)] = &[
            ("limit=0", "`limit`"),
            ("limit=501", "`limit`"),
            ("limit=-1", "`limit`"),
            ("limit=+5", "`limit`"),
            ("limit=1e2", "`limit`"),
            ("limit=99999999999999999999999", "`limit`"),
            ("limit=", "`limit`"),
            ("kind=car", "`kind`"),
            ("kind=Person", "`kind`"),
            ("from=yesterday", "`from`"),
            ("to=2026-02-30T00:00:00Z", "`to`"),
            ("cursor=abc", "`cursor`"),
            ("cursor=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "`cursor`"),
            ("limit=5&limit=6", "`limit`"),
            ("cursr=1", "`cursr`"),
            ("to=%zz", "`to`"),
            (
                "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
                "`from`",
            ),
        ];
        for (q, name) in cases {
            let e = parse_list(Some(q)).unwrap_err().to_string();
            assert!(e.contains(name), "{q}: {e}");
        }
        let long = format!("kind={}", "x".repeat(2000));
        assert_eq!(parse_list(Some(&long)), Err(QueryError::TooLong));
        let e = parse_list(Some(&format!("kind={}", "é".repeat(200)))).unwrap_err();
        assert!(
            e.to_string().contains('…') && e.to_string().len() < 300,
            "{e}"
        );
    }

    #[test]
    fn stream_query_takes_only_a_kind() {
        assert_eq!(parse_stream(None), Ok(None));
        assert_eq!(
            parse_stream(Some("kind=person")),
            Ok(Some(EventKind::Person))
        );
        let e = parse_stream(Some("limit=5")).unwrap_err();
        assert_eq!(
            e,
            QueryError::Unknown {
                name: "limit".into(),
                accepted: STREAM_PARAMS
            }
        );
        assert!(e.to_string().contains("`kind`"), "{e}");
        assert!(parse_stream(Some("kind=dog")).is_err());
    }
}
