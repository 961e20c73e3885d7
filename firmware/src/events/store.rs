//! The `events` table of the index: events by kind and start time, an id index, the
//! id counter and the markers of events in progress.
//!
//! # Layout
//!
//! One LMDB table (the reserved name `events`, opened with [`Store::table`]). The first
//! key byte says what a record is:
//!
//! ```text
//! key                                     value
//! 00 "next_id"                            u64 BE: above every id handed out
//! 00 "open" ‖ kind tag                    row key of that kind's event in progress
//! 01 ‖ id BE                              kind tag ‖ start_us BE   (id index)
//! 10+kind tag ‖ start_us BE ‖ id BE       the event row: JSON, see `Row`
//! ```
//!
//! Kind tags: 0 motion, 1 person. Byte order is time order within a kind, so a listing
//! is one reverse range scan per kind, merged newest first: it reads at most
//! `limit + 1` rows of each kind it asks for, never the rest of the table, and a kind
//! filter never reads rows of the other kind. A kind added by newer firmware gets its
//! own key range, which older builds (after a rollback) simply do not read.
//!
//! Rows are JSON: events are few (a busy day is hundreds) and small, and JSON lets a
//! newer build add fields that an older one ignores. Start time and id are in the key
//! and not repeated. A row is about 150 bytes.
//!
//! # Ids
//!
//! Ids are never reused, even across restarts, crashes and retention — a webhook or an
//! MQTT message that named event 42 keeps meaning the same event. The tracker numbers
//! events in memory and the row is written after the fact, so the stored counter is
//! kept [`ID_HEADROOM`] ahead: [`EventStore::reserve_ids`] (at start) hands out the
//! stored value and stores it plus the headroom, and every row written moves the
//! counter to at least its id plus the headroom. An id that was published but whose
//! row could not be written (a failing card) is therefore still below the counter
//! after a restart, unless more than `ID_HEADROOM` rows in a row failed. The price:
//! ids jump by up to `ID_HEADROOM` at each restart. Ids are opaque to clients.
//!
//! # Events in progress
//!
//! A row written while its event goes on has no end and an `open` marker. A crash or
//! power cut leaves such a row behind: [`EventStore::close_interrupted`] (at start)
//! ends it at the last time it was written and drops the marker.

use std::ops::Bound;
use std::sync::Arc;

use heed::types::Bytes;
use heed::{Database, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use super::{Event, EventKind};
use crate::detect::BBox;
use crate::store::{Store, StoreError};

/// Name of the table (one of `store::schema::RESERVED_TABLES`).
pub const TABLE: &str = "events";

/// How far the stored id counter runs ahead of the ids handed out. See the module doc.
pub const ID_HEADROOM: u64 = 100;

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 500;

const ID_INDEX: u8 = 0x01;
const ROWS: u8 = 0x10;
const NEXT_ID: &[u8] = b"\x00next_id";
const ROW_KEY_LEN: usize = 17;
/// The row format written by this build (`v` in the JSON).
const ROW_VERSION: u8 = 1;

/// Where a listing page ends: the next page holds the events strictly older (in
/// `(start, id)` order) than this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub start_us: u64,
    pub id: u64,
}

impl Cursor {
    /// The opaque text form clients pass back: 32 hex digits.
    pub fn encode(&self) -> String {
        format!("{:016x}{:016x}", self.start_us, self.id)
    }

    /// Parses [`encode`](Self::encode)'s output; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let start_us = u64::from_str_radix(text.get(..16)?, 16).ok()?;
        let id = u64::from_str_radix(text.get(16..)?, 16).ok()?;
        Some(Self { start_us, id })
    }
}

/// What to list: events that started in `[from_us, to_us)`, of `kind` (both if
/// `None`), newest first, at most `limit`, older than `before` when paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    pub from_us: u64,
    pub to_us: u64,
    pub kind: Option<EventKind>,
    pub limit: usize,
    pub before: Option<Cursor>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            from_us: 0,
            to_us: u64::MAX,
            kind: None,
            limit: 100,
            before: None,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Where the next page starts; `None` when this page reached the end.
    pub next: Option<Cursor>,
}

/// The stored value of an event row, format 1.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    v: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_us: Option<u64>,
    score: f32,
    #[serde(default)]
    boxes: Vec<BBox>,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    thumbnail: bool,
    /// Wall time this row was last written: the end given to an event cut short by a
    /// crash.
    seen_us: u64,
}

/// Typed access to the `events` table. Every method is one short transaction; the
/// writing ones `fsync`, so call them from a blocking thread.
#[derive(Clone)]
pub struct EventStore {
    store: Arc<Store>,
    table: Database<Bytes, Bytes>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore").finish_non_exhaustive()
    }
}

fn kind_tag(kind: EventKind) -> u8 {
    match kind {
        EventKind::Motion => 0,
        EventKind::Person => 1,
    }
}

fn kind_from_tag(tag: u8) -> Option<EventKind> {
    match tag {
        0 => Some(EventKind::Motion),
        1 => Some(EventKind::Person),
        _ => None,
    }
}

const KINDS: [EventKind; 2] = [EventKind::Motion, EventKind::Person];

fn row_key(kind: EventKind, start_us: u64, id: u64) -> [u8; ROW_KEY_LEN] {
    let mut key = [0; ROW_KEY_LEN];
    key[0] = ROWS + kind_tag(kind);
    key[1..9].copy_from_slice(&start_us.to_be_bytes());
    key[9..].copy_from_slice(&id.to_be_bytes());
    key
}

fn decode_row_key(key: &[u8]) -> Result<(EventKind, u64, u64), StoreError> {
    let bad = || StoreError::corrupt_row(format!("event key of {} bytes", key.len()));
    let key: &[u8; ROW_KEY_LEN] = key.try_into().map_err(|_| bad())?;
    let kind = key[0]
        .checked_sub(ROWS)
        .and_then(kind_from_tag)
        .ok_or_else(bad)?;
    let start_us = u64::from_be_bytes(key[1..9].try_into().map_err(|_| bad())?);
    let id = u64::from_be_bytes(key[9..].try_into().map_err(|_| bad())?);
    Ok((kind, start_us, id))
}

fn id_key(id: u64) -> [u8; 9] {
    let mut key = [ID_INDEX; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn open_key(kind: EventKind) -> [u8; 6] {
    let mut key = *b"\x00open\x00";
    key[5] = kind_tag(kind);
    key
}

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::corrupt_row(format!("events: expected 8 bytes, found {}", bytes.len()))
    })?;
    Ok(u64::from_be_bytes(arr))
}

fn decode_event(key: &[u8], value: &[u8]) -> Result<Event, StoreError> {
    let (kind, start_us, id) = decode_row_key(key)?;
    let row: Row = serde_json::from_slice(value)
        .map_err(|e| StoreError::corrupt_row(format!("event {id}: {e}")))?;
    Ok(Event {
        id,
        kind,
        start_us,
        end_us: row.end_us,
        peak_score: row.score,
        boxes: row.boxes,
        zones: row.zones,
        thumbnail: row.thumbnail,
    })
}

fn encode_row(event: &Event, seen_us: u64) -> Result<Vec<u8>, StoreError> {
    let row = Row {
        v: ROW_VERSION,
        end_us: event.end_us,
        // JSON has no NaN; the tracker never makes one, but a row must always encode.
        score: if event.peak_score.is_finite() {
            event.peak_score
        } else {
            0.0
        },
        boxes: event
            .boxes
            .iter()
            .copied()
            .filter(|b| [b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()))
            .collect(),
        zones: event.zones.clone(),
        thumbnail: event.thumbnail,
        seen_us,
    };
    serde_json::to_vec(&row)
        .map_err(|e| StoreError::corrupt_row(format!("event {} cannot be encoded: {e}", event.id)))
}

impl EventStore {
    /// Opens (creating if needed) the table. Blocking (a write transaction): call at
    /// start-up.
    pub fn open(store: Arc<Store>) -> Result<Self, StoreError> {
        let table = store.table::<Bytes, Bytes>(TABLE)?;
        Ok(Self { store, table })
    }

    fn next_id_in(&self, txn: &RoTxn<'_, WithoutTls>) -> Result<u64, StoreError> {
        Ok(match self.table.get(txn, NEXT_ID)? {
            Some(v) => be_u64(v)?,
            None => 1,
        })
    }

    /// The first id the tracker may hand out in this run; stores it plus
    /// [`ID_HEADROOM`] (see the module doc). Call once at start.
    pub fn reserve_ids(&self) -> Result<u64, StoreError> {
        self.store.write(|txn| {
            let first = self.next_id_in(txn)?;
            let next = first.saturating_add(ID_HEADROOM);
            self.table.put(txn, NEXT_ID, &next.to_be_bytes())?;
            Ok(first)
        })
    }

    /// Writes `event` (new or changed) durably. `seen_us` is the wall time now: the end
    /// an interrupted event gets. An event without an end is marked in progress; one
    /// with an end loses the mark.
    pub fn put(&self, event: &Event, seen_us: u64) -> Result<(), StoreError> {
        let key = row_key(event.kind, event.start_us, event.id);
        let value = encode_row(event, seen_us)?;
        let mut index = [0u8; 9];
        index[0] = kind_tag(event.kind);
        index[1..].copy_from_slice(&event.start_us.to_be_bytes());
        self.store.write(|txn| {
            self.table.put(txn, &key, &value)?;
            self.table.put(txn, &id_key(event.id), &index)?;
            let next = self.next_id_in(txn)?;
            let wanted = event.id.saturating_add(1).saturating_add(ID_HEADROOM);
            if next < wanted {
                self.table.put(txn, NEXT_ID, &wanted.to_be_bytes())?;
            }
            let open = open_key(event.kind);
            if event.end_us.is_none() {
                self.table.put(txn, &open, &key)?;
            } else if self.table.get(txn, &open)? == Some(&key[..]) {
                self.table.delete(txn, &open)?;
            }
            Ok(())
        })
    }

    /// The row key of event `id`, from the id index.
    fn key_of(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        id: u64,
    ) -> Result<Option<[u8; ROW_KEY_LEN]>, StoreError> {
        let Some(v) = self.table.get(txn, &id_key(id))? else {
            return Ok(None);
        };
        let [tag, start @ ..]: [u8; 9] = v.try_into().map_err(|_| {
            StoreError::corrupt_row(format!("event id index entry of {} bytes", v.len()))
        })?;
        let kind = kind_from_tag(tag)
            .ok_or_else(|| StoreError::corrupt_row(format!("unknown event kind {tag}")))?;
        Ok(Some(row_key(kind, u64::from_be_bytes(start), id)))
    }

    /// One event by id.
    pub fn get(&self, id: u64) -> Result<Option<Event>, StoreError> {
        self.store.read(|txn| {
            let Some(key) = self.key_of(txn, id)? else {
                return Ok(None);
            };
            match self.table.get(txn, &key)? {
                Some(v) => Ok(Some(decode_event(&key, v)?)),
                None => Ok(None),
            }
        })
    }

    /// Whether a row for `id` exists.
    pub fn contains(&self, id: u64) -> Result<bool, StoreError> {
        self.store.read(|txn| Ok(self.key_of(txn, id)?.is_some()))
    }

    /// Ids of every event (for the start-up sweep of orphaned thumbnails). Reads only
    /// the id index.
    pub fn ids(&self) -> Result<Vec<u64>, StoreError> {
        self.store.read(|txn| {
            let lo = [ID_INDEX];
            let hi = [ID_INDEX + 1];
            let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
            let mut ids = Vec::new();
            for entry in self.table.range(txn, &range)? {
                let (k, _) = entry?;
                ids.push(be_u64(k.get(1..).unwrap_or_default())?);
            }
            Ok(ids)
        })
    }

    /// A page of events, newest first. See [`EventQuery`].
    pub fn list(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        if query.from_us >= query.to_us {
            return Ok(EventPage {
                events: Vec::new(),
                next: None,
            });
        }
        self.store.read(|txn| {
            let mut sources = Vec::new();
            for kind in KINDS {
                if query.kind.is_some_and(|k| k != kind) {
                    continue;
                }
                let lo = row_key(kind, query.from_us, 0);
                // Exclusive upper bound: before `to`, and before the cursor if any.
                let mut hi = row_key(kind, query.to_us, 0);
                if let Some(c) = query.before {
                    hi = hi.min(row_key(kind, c.start_us, c.id));
                }
                let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
                sources.push(self.table.rev_range(txn, &range)?.peekable());
            }
            let mut events = Vec::with_capacity(limit + 1);
            while events.len() <= limit {
                // The source whose next row is the newest, by (start, id).
                let mut best: Option<(usize, Cursor)> = None;
                for (i, source) in sources.iter_mut().enumerate() {
                    let at = match source.peek() {
                        None => continue,
                        Some(Ok((k, _))) => {
                            let (_, start_us, id) = decode_row_key(k)?;
                            Cursor { start_us, id }
                        }
                        // Taken next, so that `next()` returns the error itself.
                        Some(Err(_)) => {
                            best = Some((
                                i,
                                Cursor {
                                    start_us: u64::MAX,
                                    id: u64::MAX,
                                },
                            ));
                            break;
                        }
                    };
                    if best.is_none_or(|(_, b)| at > b) {
                        best = Some((i, at));
                    }
                }
                let Some((i, _)) = best else { break };
                let Some(row) = sources[i].next() else { break };
                let (k, v) = row?;
                events.push(decode_event(k, v)?);
            }
            let next = if events.len() > limit {
                events.truncate(limit);
                events.last().map(|e| Cursor {
                    start_us: e.start_us,
                    id: e.id,
                })
            } else {
                None
            };
            Ok(EventPage { events, next })
        })
    }

    /// Ends the events a crash or power cut left in progress, each at the last time its
    /// row was written, and returns them. Call once at start, before any new event.
    pub fn close_interrupted(&self) -> Result<Vec<Event>, StoreError> {
        self.store.write(|txn| {
            let mut closed = Vec::new();
            for kind in KINDS {
                let open = open_key(kind);
                let Some(key) = self.table.get(txn, &open)?.map(<[u8]>::to_vec) else {
                    continue;
                };
                self.table.delete(txn, &open)?;
                let Some(value) = self.table.get(txn, &key)?.map(<[u8]>::to_vec) else {
                    continue;
                };
                let mut event = decode_event(&key, &value)?;
                if event.end_us.is_some() {
                    continue;
                }
                let row: Row = serde_json::from_slice(&value)
                    .map_err(|e| StoreError::corrupt_row(format!("event {}: {e}", event.id)))?;
                event.end_us = Some(row.seen_us.max(event.start_us));
                self.table
                    .put(txn, &key, &encode_row(&event, row.seen_us)?)?;
                closed.push(event);
            }
            Ok(closed)
        })
    }

    /// Up to `limit` ended events that started before `cutoff_us`, oldest first: what
    /// retention deletes next. Events in progress are never returned.
    pub fn expired(&self, cutoff_us: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.store.read(|txn| {
            let mut out = Vec::new();
            for kind in KINDS {
                let lo = row_key(kind, 0, 0);
                let hi = row_key(kind, cutoff_us, 0);
                let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
                // The oldest `limit` of each kind, so that the oldest `limit` of both
                // are among them.
                let mut taken = 0;
                for row in self.table.range(txn, &range)? {
                    if taken >= limit {
                        break;
                    }
                    let (k, v) = row?;
                    let event = decode_event(k, v)?;
                    if event.end_us.is_some() {
                        out.push(event);
                        taken += 1;
                    }
                }
            }
            out.sort_by_key(|e| (e.start_us, e.id));
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Deletes the rows of `events` (and their id index entries) in one transaction;
    /// returns how many existed.
    pub fn delete(&self, events: &[Event]) -> Result<usize, StoreError> {
        self.store.write(|txn| {
            let mut deleted = 0;
            for e in events {
                if self.delete_in(txn, e)? {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
    }

    fn delete_in(&self, txn: &mut RwTxn<'_>, e: &Event) -> Result<bool, StoreError> {
        let key = row_key(e.kind, e.start_us, e.id);
        let existed = self.table.delete(txn, &key)?;
        self.table.delete(txn, &id_key(e.id))?;
        let open = open_key(e.kind);
        if self.table.get(txn, &open)? == Some(&key[..]) {
            self.table.delete(txn, &open)?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01T00:00:00Z in µs.
    const T0: u64 = 1_772_323_200_000_000;
    const SEC: u64 = 1_000_000;

    fn open_store() -> (tempfile::TempDir, EventStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        (dir, EventStore::open(store).unwrap())
    }

    fn event(id: u64, kind: EventKind, start_us: u64) -> Event {
        Event {
            id,
            kind,
            start_us,
            end_us: Some(start_us + 10 * SEC),
            peak_score: 0.75,
            boxes: vec![BBox {
                x: 0.1,
                y: 0.2,
                w: 0.3,
                h: 0.4,
            }],
            zones: vec!["door".into()],
            thumbnail: id.is_multiple_of(2),
        }
    }

    fn ids(page: &EventPage) -> Vec<u64> {
        page.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn rows_round_trip_and_can_be_found_by_id() {
        let (_dir, s) = open_store();
        let e = event(4, EventKind::Person, T0);
        s.put(&e, T0 + 11 * SEC).unwrap();
        assert_eq!(s.get(4).unwrap(), Some(e.clone()));
        assert!(s.contains(4).unwrap());
        assert_eq!(s.get(5).unwrap(), None);
        // An update replaces the row, it does not add one.
        let mut changed = e.clone();
        changed.peak_score = 0.9;
        changed.zones.push("drive".into());
        s.put(&changed, T0 + 12 * SEC).unwrap();
        assert_eq!(s.get(4).unwrap(), Some(changed));
        let page = s.list(&EventQuery::default()).unwrap();
        assert_eq!(ids(&page), [4]);
    }

    #[test]
    fn listing_is_newest_first_across_kinds_and_pages_with_a_cursor() {
        let (_dir, s) = open_store();
        // 25 events, alternating kinds, one a second; two share a start time.
        for i in 1..=25u64 {
            let kind = if i.is_multiple_of(2) {
                EventKind::Person
            } else {
                EventKind::Motion
            };
            let start = if i == 11 { T0 + 10 * SEC } else { T0 + i * SEC };
            s.put(&event(i, kind, start), T0).unwrap();
        }
        let mut seen = Vec::new();
        // Pages of 5: the tie at 10 s (ids 11 and 10, of different kinds) falls on a
        // page boundary.
        let mut query = EventQuery {
            limit: 5,
            ..EventQuery::default()
        };
        let mut pages = 0;
        loop {
            let page = s.list(&query).unwrap();
            pages += 1;
            assert!(pages <= 10, "paging does not end: {seen:?}");
            assert!(page.events.len() <= 5);
            seen.extend(ids(&page));
            match page.next {
                Some(cursor) => {
                    // The cursor survives its text form.
                    let text = cursor.encode();
                    query.before = Some(Cursor::decode(&text).unwrap());
                }
                None => break,
            }
        }
        assert_eq!(pages, 5, "the last full page has no cursor");
        // Newest first; the tie at 10 s is broken by id, larger first.
        let mut by_time: Vec<(u64, u64)> = (1..=25u64)
            .map(|i| (if i == 11 { T0 + 10 * SEC } else { T0 + i * SEC }, i))
            .collect();
        by_time.sort_by(|x, y| y.cmp(x));
        let want: Vec<u64> = by_time.iter().map(|&(_, id)| id).collect();
        assert_eq!(seen, want, "every event exactly once, newest first");
    }

    #[test]
    fn listing_filters_by_kind_and_time_window() {
        let (_dir, s) = open_store();
        for i in 1..=20u64 {
            let kind = if i.is_multiple_of(4) {
                EventKind::Person
            } else {
                EventKind::Motion
            };
            s.put(&event(i, kind, T0 + i * SEC), T0).unwrap();
        }
        let page = s
            .list(&EventQuery {
                kind: Some(EventKind::Person),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&page), [20, 16, 12, 8, 4]);
        assert_eq!(page.next, None);
        // [from, to): from is included, to is not.
        let page = s
            .list(&EventQuery {
                from_us: T0 + 5 * SEC,
                to_us: T0 + 9 * SEC,
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&page), [8, 7, 6, 5]);
        let page = s
            .list(&EventQuery {
                from_us: T0 + 5 * SEC,
                to_us: T0 + 9 * SEC,
                kind: Some(EventKind::Motion),
                limit: 2,
                before: None,
            })
            .unwrap();
        assert_eq!(ids(&page), [7, 6]);
        let page = s
            .list(&EventQuery {
                from_us: T0 + 5 * SEC,
                to_us: T0 + 9 * SEC,
                kind: Some(EventKind::Motion),
                limit: 2,
                before: page.next,
            })
            .unwrap();
        assert_eq!(ids(&page), [5], "the last page has no cursor");
        assert_eq!(page.next, None);
        let empty = s
            .list(&EventQuery {
                from_us: T0 + 9 * SEC,
                to_us: T0 + 9 * SEC,
                ..EventQuery::default()
            })
            .unwrap();
        assert!(empty.events.is_empty());
    }

    #[test]
    fn a_page_exactly_at_the_end_has_no_cursor() {
        let (_dir, s) = open_store();
        for i in 1..=4u64 {
            s.put(&event(i, EventKind::Motion, T0 + i * SEC), T0)
                .unwrap();
        }
        let page = s
            .list(&EventQuery {
                limit: 4,
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&page), [4, 3, 2, 1]);
        assert_eq!(page.next, None, "no empty page to fetch");
    }

    #[test]
    fn cursors_are_opaque_but_strict() {
        let c = Cursor {
            start_us: T0,
            id: u64::MAX,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "00",
            &"g".repeat(32),
            &"0".repeat(33),
            "+0000000000000000000000000000000",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let s = EventStore::open(Arc::new(Store::open(dir.path()).unwrap())).unwrap();
            let first = s.reserve_ids().unwrap();
            assert_eq!(first, 1);
            // Three events published; only the first two rows were written (the card
            // failed on the third).
            s.put(&event(first, EventKind::Motion, T0), T0).unwrap();
            s.put(&event(first + 1, EventKind::Person, T0), T0).unwrap();
            first
        };
        let s = EventStore::open(Arc::new(Store::open(dir.path()).unwrap())).unwrap();
        let again = s.reserve_ids().unwrap();
        assert!(
            again > first + 2,
            "the unwritten id {} stays used: {again}",
            first + 2
        );
        assert!(again <= first + 2 + ID_HEADROOM);
        // Retention deleting everything does not bring ids back either.
        let all = s.expired(u64::MAX, 100).unwrap();
        assert_eq!(s.delete(&all).unwrap(), 2);
        drop(s);
        let s = EventStore::open(Arc::new(Store::open(dir.path()).unwrap())).unwrap();
        assert!(s.reserve_ids().unwrap() > again);
    }

    #[test]
    fn interrupted_events_are_closed_at_their_last_write() {
        let (_dir, s) = open_store();
        let mut e = event(1, EventKind::Person, T0);
        e.end_us = None;
        s.put(&e, T0 + 3 * SEC).unwrap();
        let mut m = event(2, EventKind::Motion, T0);
        m.end_us = None;
        s.put(&m, T0 + SEC).unwrap();
        m.end_us = Some(T0 + 2 * SEC);
        s.put(&m, T0 + 2 * SEC).unwrap();
        // "Crash", then start again.
        let closed = s.close_interrupted().unwrap();
        assert_eq!(closed.len(), 1, "the motion event had ended: {closed:?}");
        assert_eq!(closed[0].id, 1);
        assert_eq!(closed[0].end_us, Some(T0 + 3 * SEC));
        assert_eq!(s.get(1).unwrap().unwrap().end_us, Some(T0 + 3 * SEC));
        assert_eq!(s.get(2).unwrap().unwrap().end_us, Some(T0 + 2 * SEC));
        assert!(s.close_interrupted().unwrap().is_empty(), "once");
    }

    #[test]
    fn retention_takes_only_ended_events_older_than_the_cutoff() {
        let (_dir, s) = open_store();
        for i in 1..=6u64 {
            let kind = if i.is_multiple_of(2) {
                EventKind::Person
            } else {
                EventKind::Motion
            };
            let mut e = event(i, kind, T0 + i * SEC);
            if i == 4 {
                // Still going on, though it started long ago.
                e.end_us = None;
            }
            s.put(&e, T0).unwrap();
        }
        let old = s.expired(T0 + 5 * SEC, 100).unwrap();
        let old_ids: Vec<_> = old.iter().map(|e| e.id).collect();
        assert_eq!(old_ids, [1, 2, 3], "oldest first, never the open one");
        let two: Vec<_> = s
            .expired(T0 + 5 * SEC, 2)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(two, [1, 2], "the oldest of both kinds");
        assert_eq!(s.delete(&old).unwrap(), 3);
        assert_eq!(s.delete(&old).unwrap(), 0, "already gone");
        let page = s.list(&EventQuery::default()).unwrap();
        assert_eq!(ids(&page), [6, 5, 4]);
        assert!(!s.contains(3).unwrap());
        let mut left = s.ids().unwrap();
        left.sort();
        assert_eq!(left, [4, 5, 6]);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let (_dir, s) = open_store();
        s.put(&event(1, EventKind::Motion, T0), T0).unwrap();
        let key = row_key(EventKind::Motion, T0, 1);
        s.store
            .write(|txn| Ok(s.table.put(txn, &key, b"{not json")?))
            .unwrap();
        let e = s.list(&EventQuery::default()).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("event 1"), "{e}");
    }
}
