//! Byte layouts of keys and segment rows.
//!
//! # Why a hand-written binary row, not JSON
//!
//! A segment row carries its fragment table: one entry per GOP, so ~30 entries for a
//! one-minute segment at a 2 s keyframe interval, ~43 000 a day. As JSON with field
//! names an entry costs ~80 bytes and a row ~2.5 KiB, which is past LMDB's inline-node
//! limit (~2 KiB on 4 KiB pages): every row would take an overflow page of its own and a
//! year of rows ~2 GiB of SD card. In the layout below an entry is ~8 bytes (four
//! LEB128 varints of deltas: the gap to the previous fragment, usually 0, its length
//! and duration, 3 bytes each), so a row is ~300 bytes and a dozen share a page.
//! Decoding 30 varint entries is well under a microsecond, after which "which fragment
//! covers T" is a binary search over the decoded table. Settings, which are few, small
//! and edited by hand, are JSON instead (see `settings`).
//!
//! Listing and reconciliation only need the fixed header, so the fragment table sits
//! last and is decoded only on demand ([`RowHeader::fragments`]).
//!
//! # Segment row, format 1
//!
//! ```text
//! u8      format (= 1; a new format needs a MIN_READER_VERSION bump, see schema)
//! u8      state   (0 writing, 1 complete, 2 interrupted)
//! u8      trigger (0 continuous, 1 event, 2 manual, 3 schedule, other: kept as is)
//! varint  end_us - start_us
//! varint  bytes
//! varint  fragment count
//! varint  path length, then the path bytes (UTF-8)
//! per fragment, with prev_off = end offset and prev_t = end time of the previous
//! fragment (0 and start_us for the first):
//!   varint offset - prev_off, varint len, varint start_us - prev_t, varint duration_us
//! ```
//!
//! The start time and id are in the key and not repeated in the value.

use super::error::StoreError;
use super::segments::{Fragment, Segment, SegmentId, SegmentState, SegmentSummary, Trigger};

/// Format byte of segment rows written by this build.
const ROW_FORMAT: u8 = 1;

/// Length of a `segments` key.
pub(crate) const KEY_LEN: usize = 16;

/// `start_us BE ‖ id BE`: byte order equals time order, ties broken by id.
pub(crate) fn segment_key(start_us: u64, id: SegmentId) -> [u8; KEY_LEN] {
    let mut key = [0; KEY_LEN];
    key[..8].copy_from_slice(&start_us.to_be_bytes());
    key[8..].copy_from_slice(&id.0.to_be_bytes());
    key
}

/// Inverse of [`segment_key`].
pub(crate) fn decode_segment_key(bytes: &[u8]) -> Result<(u64, SegmentId), StoreError> {
    let arr: &[u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt_row(format!("segment key of {} bytes", bytes.len())))?;
    let (start, id) = arr.split_at(8);
    Ok((be_u64(start)?, SegmentId(be_u64(id)?)))
}

/// An 8-byte big-endian `u64` (meta counters, id-index keys and values).
pub(crate) fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt_row(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

fn state_tag(s: SegmentState) -> u8 {
    match s {
        SegmentState::Writing => 0,
        SegmentState::Complete => 1,
        SegmentState::Interrupted => 2,
    }
}

fn state_from_tag(tag: u8) -> Result<SegmentState, StoreError> {
    match tag {
        0 => Ok(SegmentState::Writing),
        1 => Ok(SegmentState::Complete),
        2 => Ok(SegmentState::Interrupted),
        n => Err(StoreError::corrupt_row(format!(
            "unknown segment state {n}"
        ))),
    }
}

fn trigger_tag(t: Trigger) -> u8 {
    match t {
        Trigger::Continuous => 0,
        Trigger::Event => 1,
        Trigger::Manual => 2,
        Trigger::Schedule => 3,
        Trigger::Other(n) => n,
    }
}

fn trigger_from_tag(tag: u8) -> Trigger {
    match tag {
        0 => Trigger::Continuous,
        1 => Trigger::Event,
        2 => Trigger::Manual,
        3 => Trigger::Schedule,
        // A trigger added by newer firmware: shown as such, not an error (additive change).
        n => Trigger::Other(n),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads LEB128 varints and bytes from a row, failing (never panicking) on short or
/// malformed input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| StoreError::corrupt_row("segment row ends early"))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StoreError::corrupt_row("varint overflows u64"))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], StoreError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len())
            .ok_or_else(|| StoreError::corrupt_row("segment row ends early"))?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

/// Encodes a row. The segment must have passed `Segment::validate`, which guarantees
/// the deltas below are non-negative.
pub(crate) fn encode_segment(seg: &Segment) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + seg.path.len() + 8 * seg.fragments.len());
    out.push(ROW_FORMAT);
    out.push(state_tag(seg.state));
    out.push(trigger_tag(seg.trigger));
    put_varint(&mut out, seg.end_us - seg.start_us);
    put_varint(&mut out, seg.bytes);
    put_varint(&mut out, seg.fragments.len() as u64);
    put_varint(&mut out, seg.path.len() as u64);
    out.extend_from_slice(seg.path.as_bytes());
    let (mut prev_off, mut prev_t) = (0, seg.start_us);
    for f in &seg.fragments {
        put_varint(&mut out, f.offset - prev_off);
        put_varint(&mut out, f.len);
        put_varint(&mut out, f.start_us - prev_t);
        put_varint(&mut out, f.duration_us);
        prev_off = f.offset + f.len;
        prev_t = f.start_us + f.duration_us;
    }
    out
}

/// The fixed part of a row, decoded without touching the fragment table.
#[derive(Debug, Clone)]
pub(crate) struct RowHeader<'a> {
    pub id: SegmentId,
    pub start_us: u64,
    pub end_us: u64,
    pub bytes: u64,
    pub state: SegmentState,
    pub trigger: Trigger,
    pub fragment_count: u64,
    pub path: &'a str,
    table: &'a [u8],
}

/// Decodes a row's key and header.
pub(crate) fn decode_header<'a>(key: &[u8], value: &'a [u8]) -> Result<RowHeader<'a>, StoreError> {
    let (start_us, id) = decode_segment_key(key)?;
    let mut r = Reader { buf: value };
    let format = r.byte()?;
    if format != ROW_FORMAT {
        return Err(StoreError::corrupt_row(format!(
            "segment {id} has row format {format}, this build reads format {ROW_FORMAT}"
        )));
    }
    let state = state_from_tag(r.byte()?)?;
    let trigger = trigger_from_tag(r.byte()?);
    let end_us = start_us
        .checked_add(r.varint()?)
        .ok_or_else(|| StoreError::corrupt_row(format!("segment {id} ends after year 586 000")))?;
    let bytes = r.varint()?;
    let fragment_count = r.varint()?;
    let path_len = r.varint()?;
    let path = std::str::from_utf8(r.bytes(path_len)?)
        .map_err(|_| StoreError::corrupt_row(format!("segment {id} path is not UTF-8")))?;
    Ok(RowHeader {
        id,
        start_us,
        end_us,
        bytes,
        state,
        trigger,
        fragment_count,
        path,
        table: r.buf,
    })
}

impl RowHeader<'_> {
    /// Decodes the fragment table.
    pub fn fragments(&self) -> Result<Vec<Fragment>, StoreError> {
        let bad = |what: &str| StoreError::corrupt_row(format!("segment {}: {what}", self.id));
        // Each entry takes at least 4 bytes: a corrupt count cannot make us allocate
        // more than the row could hold.
        let cap = usize::try_from(self.fragment_count)
            .unwrap_or(usize::MAX)
            .min(self.table.len() / 4);
        let mut out = Vec::with_capacity(cap);
        let mut r = Reader { buf: self.table };
        let (mut prev_off, mut prev_t) = (0u64, self.start_us);
        for _ in 0..self.fragment_count {
            let offset = prev_off
                .checked_add(r.varint()?)
                .ok_or_else(|| bad("fragment offset overflows"))?;
            let len = r.varint()?;
            let start_us = prev_t
                .checked_add(r.varint()?)
                .ok_or_else(|| bad("fragment time overflows"))?;
            let duration_us = r.varint()?;
            let f = Fragment {
                offset,
                len,
                start_us,
                duration_us,
            };
            prev_off = offset
                .checked_add(len)
                .ok_or_else(|| bad("fragment end overflows"))?;
            prev_t = start_us
                .checked_add(duration_us)
                .ok_or_else(|| bad("fragment end time overflows"))?;
            out.push(f);
        }
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes after the fragment table"));
        }
        Ok(out)
    }

    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            id: self.id,
            path: self.path.to_owned(),
            start_us: self.start_us,
            end_us: self.end_us,
            bytes: self.bytes,
            state: self.state,
            trigger: self.trigger,
            fragment_count: self.fragment_count,
        }
    }

    pub fn segment(&self) -> Result<Segment, StoreError> {
        Ok(Segment {
            id: self.id,
            path: self.path.to_owned(),
            start_us: self.start_us,
            end_us: self.end_us,
            bytes: self.bytes,
            state: self.state,
            trigger: self.trigger,
            fragments: self.fragments()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Segment {
        Segment {
            id: SegmentId(7),
            path: "rec/2024/06/01/0007.seg".into(),
            start_us: 1_717_200_000_000_000,
            end_us: 1_717_200_060_000_000,
            bytes: 3 * 1_048_576 + 900,
            state: SegmentState::Complete,
            trigger: Trigger::Event,
            fragments: (0..30)
                .map(|i| Fragment {
                    offset: 900 + i * 104_857,
                    len: 104_857,
                    start_us: 1_717_200_000_000_000 + i * 2_000_000,
                    duration_us: 2_000_000,
                })
                .collect(),
        }
    }

    #[test]
    fn row_round_trips_and_is_compact() {
        let seg = sample();
        let key = segment_key(seg.start_us, seg.id);
        let value = encode_segment(&seg);
        let header = decode_header(&key, &value).unwrap();
        assert_eq!(header.summary(), seg.summary());
        assert_eq!(header.segment().unwrap(), seg);
        // 30 fragments of ~8 bytes plus the header: the size argument of the module doc.
        assert!(value.len() < 300, "row is {} bytes", value.len());
    }

    #[test]
    fn keys_sort_by_time_then_id() {
        let a = segment_key(5, SegmentId(9));
        let b = segment_key(6, SegmentId(1));
        let c = segment_key(6, SegmentId(2));
        assert!(a < b && b < c);
        assert_eq!(decode_segment_key(&c).unwrap(), (6, SegmentId(2)));
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 2, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Reader { buf: &out }.varint().unwrap(), v);
        }
        // Eleven continuation bytes: not a u64.
        let too_long = [0xff; 11];
        assert!(Reader { buf: &too_long }.varint().is_err());
    }

    #[test]
    fn every_truncation_of_a_row_is_an_error_not_a_panic() {
        let seg = sample();
        let key = segment_key(seg.start_us, seg.id);
        let value = encode_segment(&seg);
        for n in 0..value.len() {
            let cut = &value[..n];
            let ok = decode_header(&key, cut).and_then(|h| h.fragments());
            assert!(ok.is_err(), "a row cut to {n} bytes decoded");
        }
        assert!(decode_header(&key[..15], &value).is_err());
    }

    #[test]
    fn unknown_trigger_survives_unknown_format_is_refused() {
        let mut seg = sample();
        seg.trigger = Trigger::Other(42);
        let key = segment_key(seg.start_us, seg.id);
        let mut value = encode_segment(&seg);
        assert_eq!(
            decode_header(&key, &value).unwrap().trigger,
            Trigger::Other(42)
        );
        value[0] = 2;
        let err = decode_header(&key, &value).unwrap_err();
        assert!(err.to_string().contains("row format 2"), "{err}");
    }
}
