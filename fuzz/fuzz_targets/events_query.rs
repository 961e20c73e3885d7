//! The query strings of the events endpoints (`GET /api/v1/events?from=&to=&kind=&limit=
//! &cursor=`, `GET /api/v1/events/stream?kind=`): `mecam::api::events::query` and the
//! opaque paging cursor.
//!
//! Input: the query string (UTF-8).
//! Properties: nothing panics; an accepted listing has `from ≤ to` and a limit of 1–500;
//! a cursor the device gave out reads back as itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::events::query::{parse_list, parse_stream};
use mecam::events::Cursor;
use mecam::events::store::MAX_LIMIT;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = parse_list(Some(query)) {
        assert!(q.from_us <= q.to_us, "{query:?}: {q:?}");
        assert!((1..=MAX_LIMIT).contains(&q.limit), "{query:?}: {q:?}");
        if let Some(c) = q.before {
            assert_eq!(Cursor::decode(&c.encode()), Some(c), "{query:?}");
        }
    }
    let _ = parse_stream(Some(query));
    if let Some(c) = Cursor::decode(query) {
        assert_eq!(c.encode(), query.to_ascii_lowercase(), "{query:?}");
    }
});
