//! Segment rows: one per recording file, ordered by start time, each with the table of
//! its fragments.
//!
//! Times are microseconds since the Unix epoch (UTC) as `u64`. A row lives under the key
//! `start ‖ id` (see `codec`), so a time range is one B-tree range scan, and a second
//! table maps id → start for lookups by id. Finding the fragment that covers an instant
//! is a backwards seek from that instant to the last segment starting at or before it,
//! then a binary search in its fragment table.
//!
//! Segments may overlap in time (an event recording next to a continuous one). To find
//! the ones that started *before* an instant and still cover it, scans start
//! `max_span` earlier, where `max_span` (kept in `meta`) is the longest segment ever
//! stored. With one-minute segments that is one or two extra rows per query.

use std::fmt;
use std::ops::Bound;

use heed::{RoTxn, RwTxn};

use super::codec::{self, RowHeader};
use super::error::StoreError;
use super::schema::key;
use super::{Store, Tables};

/// Identifier of a segment: handed out by [`Store::allocate_segment_id`], increasing,
/// never reused (also not after the row is deleted), starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Life cycle of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentState {
    /// The recorder is appending to the file.
    Writing,
    /// Closed normally.
    Complete,
    /// Cut short by a crash or power loss; holds the fragments that made it to disk.
    Interrupted,
}

/// Why the segment was recorded. Stored as one byte; `Other(n)` keeps a tag from newer
/// firmware (`Other(0..=3)` reads back as the named variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    Continuous,
    Event,
    Manual,
    Schedule,
    /// A trigger this build does not know (written by newer firmware).
    Other(u8),
}

/// One fMP4 fragment (a GOP) inside a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Byte offset of the fragment in the file (as stored, i.e. sealed by the vault).
    pub offset: u64,
    /// Length in bytes in the file.
    pub len: u64,
    /// Presentation time of its first frame, µs since the Unix epoch.
    pub start_us: u64,
    /// Duration, µs.
    pub duration_us: u64,
}

impl Fragment {
    /// First instant after the fragment.
    pub fn end_us(&self) -> u64 {
        self.start_us.saturating_add(self.duration_us)
    }

    /// First byte after the fragment.
    pub fn end_offset(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// A segment row with its fragment table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: SegmentId,
    /// File path relative to the data directory, `/`-separated, as the recorder wrote
    /// it; `reconcile` matches the directory listing against it byte for byte.
    pub path: String,
    /// Start of the segment, µs since the Unix epoch.
    pub start_us: u64,
    /// End of the segment (at least the end of its last fragment), µs.
    pub end_us: u64,
    /// Size of the file in bytes; summed into [`Store::total_bytes`].
    pub bytes: u64,
    pub state: SegmentState,
    pub trigger: Trigger,
    /// Fragments in file and time order, not overlapping in either.
    pub fragments: Vec<Fragment>,
}

/// A segment row without its fragment table (listings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    pub id: SegmentId,
    pub path: String,
    pub start_us: u64,
    pub end_us: u64,
    pub bytes: u64,
    pub state: SegmentState,
    pub trigger: Trigger,
    pub fragment_count: u64,
}

/// A fragment found by time: the whole segment and the index of the fragment in it, so
/// playback can go on with the following fragments without another lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub segment: Segment,
    pub index: usize,
}

impl Located {
    pub fn fragment(&self) -> &Fragment {
        // `index` is made by the store from the segment's own table.
        &self.segment.fragments[self.index]
    }
}

/// Longest accepted path: far beyond what the recorder makes, far below LMDB limits.
const MAX_PATH_LEN: usize = 1024;

/// Longest accepted segment, end minus start: 24 hours. Lookups scan back from an
/// instant by the longest span stored, so one absurd row (a wall-clock step during a
/// segment on a Pi without a real-time clock: start in 1970, end after NTP sync) would
/// turn every seek into a scan. The recorder cuts segments far shorter and measures
/// their length with a monotonic clock.
pub const MAX_SEGMENT_SPAN_US: u64 = 24 * 3_600 * 1_000_000;

impl Segment {
    /// Index of the fragment with `start <= t < end`, by binary search.
    pub fn fragment_at(&self, t_us: u64) -> Option<usize> {
        let i = self.fragments.partition_point(|f| f.start_us <= t_us);
        let candidate = i.checked_sub(1)?;
        (t_us < self.fragments[candidate].end_us()).then_some(candidate)
    }

    /// Index of the first fragment that ends after `t`: the one covering `t`, or else the
    /// next one to start.
    pub fn fragment_from(&self, t_us: u64) -> Option<usize> {
        let i = self.fragments.partition_point(|f| f.end_us() <= t_us);
        (i < self.fragments.len()).then_some(i)
    }

    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            id: self.id,
            path: self.path.clone(),
            start_us: self.start_us,
            end_us: self.end_us,
            bytes: self.bytes,
            state: self.state,
            trigger: self.trigger,
            fragment_count: self.fragments.len() as u64,
        }
    }

    /// Checks the invariants the codec and the lookups rely on.
    pub(crate) fn validate(&self, next_id: u64) -> Result<(), StoreError> {
        let fail = |reason: String| {
            Err(StoreError::InvalidSegment {
                id: self.id,
                reason,
            })
        };
        if self.id.0 == 0 || self.id.0 >= next_id {
            return fail(format!(
                "id was not handed out by allocate_segment_id (next id is {next_id})"
            ));
        }
        if let Err(why) = check_path(&self.path) {
            return fail(format!("path {:?} {why}", self.path));
        }
        if self.end_us < self.start_us {
            return fail("ends before it starts".into());
        }
        if self.end_us - self.start_us > MAX_SEGMENT_SPAN_US {
            return fail("is longer than 24 hours (a wall-clock step?)".into());
        }
        let (mut prev_off, mut prev_t) = (0u64, self.start_us);
        for (i, f) in self.fragments.iter().enumerate() {
            if f.len == 0 || f.duration_us == 0 {
                return fail(format!("fragment {i} is empty"));
            }
            if f.offset < prev_off {
                return fail(format!(
                    "fragment {i} overlaps the previous one in the file"
                ));
            }
            if f.start_us < prev_t {
                return fail(format!(
                    "fragment {i} starts before the segment or the previous fragment ends"
                ));
            }
            let (Some(end_off), Some(end_t)) = (
                f.offset.checked_add(f.len),
                f.start_us.checked_add(f.duration_us),
            ) else {
                return fail(format!("fragment {i} overflows"));
            };
            (prev_off, prev_t) = (end_off, end_t);
        }
        if self.end_us < prev_t {
            return fail("ends before its last fragment".into());
        }
        if self.bytes < prev_off {
            return fail("is smaller than its fragments".into());
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err("is empty or too long");
    }
    if path.starts_with('/') || path.contains('\0') || path.contains('\\') {
        return Err("must be relative, `/`-separated and without NUL");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("has an empty, `.` or `..` component");
    }
    Ok(())
}

/// Segments overlapping `[from, to)`: `start < to` and `end > from`. A row of zero
/// length (a segment that has no fragment yet) counts as the instant `start`.
fn overlaps(h: &RowHeader<'_>, from_us: u64, to_us: u64) -> bool {
    h.start_us < to_us && h.end_us.max(h.start_us.saturating_add(1)) > from_us
}

/// A row's key and its value borrowed from the transaction.
type Row<'t> = ([u8; codec::KEY_LEN], &'t [u8]);

// Transaction-level operations, shared by the public methods, reconcile and retention.
impl Tables {
    pub(crate) fn meta_u64(&self, txn: &RoTxn<'_>, k: &[u8]) -> Result<Option<u64>, StoreError> {
        self.meta.get(txn, k)?.map(codec::be_u64).transpose()
    }

    pub(crate) fn set_meta_u64(
        &self,
        txn: &mut RwTxn<'_>,
        k: &[u8],
        v: u64,
    ) -> Result<(), StoreError> {
        Ok(self.meta.put(txn, k, &v.to_be_bytes())?)
    }

    fn max_span(&self, txn: &RoTxn<'_>) -> Result<u64, StoreError> {
        Ok(self.meta_u64(txn, key::MAX_SPAN_US)?.unwrap_or(0))
    }

    /// Start time of segment `id`, from the id index.
    fn start_of(&self, txn: &RoTxn<'_>, id: SegmentId) -> Result<Option<u64>, StoreError> {
        self.segment_ids
            .get(txn, &id.0.to_be_bytes())?
            .map(codec::be_u64)
            .transpose()
    }

    /// Row of segment `id`, as `(key, value)` borrowed from the transaction.
    fn row<'t>(&self, txn: &'t RoTxn<'_>, id: SegmentId) -> Result<Option<Row<'t>>, StoreError> {
        let Some(start) = self.start_of(txn, id)? else {
            return Ok(None);
        };
        let k = codec::segment_key(start, id);
        match self.segments.get(txn, &k)? {
            Some(v) => Ok(Some((k, v))),
            None => Err(StoreError::corrupt_row(format!(
                "segment {id} is in the id index but has no row"
            ))),
        }
    }

    pub(crate) fn get_segment(
        &self,
        txn: &RoTxn<'_>,
        id: SegmentId,
    ) -> Result<Option<Segment>, StoreError> {
        match self.row(txn, id)? {
            Some((k, v)) => codec::decode_header(&k, v)?.segment().map(Some),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a row and keeps the byte total and max span in step.
    pub(crate) fn put_segment(&self, txn: &mut RwTxn<'_>, seg: &Segment) -> Result<(), StoreError> {
        let next_id = self.meta_u64(txn, key::NEXT_SEGMENT_ID)?.unwrap_or(1);
        seg.validate(next_id)?;
        let mut total = self.meta_u64(txn, key::SEGMENT_BYTES)?.unwrap_or(0);
        if let Some((old_key, old_value)) = self.row(txn, seg.id)? {
            let old_bytes = codec::decode_header(&old_key, old_value)?.bytes;
            total = total.saturating_sub(old_bytes);
            self.segments.delete(txn, &old_key)?;
        }
        let k = codec::segment_key(seg.start_us, seg.id);
        self.segments.put(txn, &k, &codec::encode_segment(seg))?;
        self.segment_ids
            .put(txn, &seg.id.0.to_be_bytes(), &seg.start_us.to_be_bytes())?;
        self.set_meta_u64(txn, key::SEGMENT_BYTES, total.saturating_add(seg.bytes))?;
        let span = seg.end_us - seg.start_us;
        if span > self.max_span(txn)? {
            self.set_meta_u64(txn, key::MAX_SPAN_US, span)?;
        }
        Ok(())
    }

    /// Deletes a row; returns what it held.
    pub(crate) fn delete_segment(
        &self,
        txn: &mut RwTxn<'_>,
        id: SegmentId,
    ) -> Result<Option<SegmentSummary>, StoreError> {
        let Some((k, v)) = self.row(txn, id)? else {
            return Ok(None);
        };
        let summary = codec::decode_header(&k, v)?.summary();
        self.segments.delete(txn, &k)?;
        self.segment_ids.delete(txn, &id.0.to_be_bytes())?;
        let total = self.meta_u64(txn, key::SEGMENT_BYTES)?.unwrap_or(0);
        self.set_meta_u64(txn, key::SEGMENT_BYTES, total.saturating_sub(summary.bytes))?;
        Ok(Some(summary))
    }

    /// The segment whose fragment covers `t` (the latest-starting one if several do).
    fn find_at(&self, txn: &RoTxn<'_>, t_us: u64) -> Result<Option<Located>, StoreError> {
        let lo = codec::segment_key(t_us.saturating_sub(self.max_span(txn)?), SegmentId(0));
        let hi = codec::segment_key(t_us, SegmentId(u64::MAX));
        let range = (Bound::Included(&lo[..]), Bound::Included(&hi[..]));
        for row in self.segments.rev_range(txn, &range)? {
            let (k, v) = row?;
            let h = codec::decode_header(k, v)?;
            if h.end_us <= t_us {
                continue;
            }
            let segment = h.segment()?;
            if let Some(index) = segment.fragment_at(t_us) {
                return Ok(Some(Located { segment, index }));
            }
        }
        Ok(None)
    }

    /// The fragment covering `t`, or else the first one starting after `t`.
    fn find_from(&self, txn: &RoTxn<'_>, t_us: u64) -> Result<Option<Located>, StoreError> {
        if let Some(hit) = self.find_at(txn, t_us)? {
            return Ok(Some(hit));
        }
        // Nothing covers t. Candidates: a later fragment of a segment that started
        // before t (a gap inside it), and the first fragment of the first later segment.
        let mut best: Option<Located> = None;
        let consider = |best: &mut Option<Located>, candidate: Located| {
            let earlier = best
                .as_ref()
                .is_none_or(|b| candidate.fragment().start_us < b.fragment().start_us);
            if earlier {
                *best = Some(candidate);
            }
        };
        let lo = codec::segment_key(t_us.saturating_sub(self.max_span(txn)?), SegmentId(0));
        let mid = codec::segment_key(t_us, SegmentId(u64::MAX));
        let before = (Bound::Included(&lo[..]), Bound::Included(&mid[..]));
        for row in self.segments.range(txn, &before)? {
            let (k, v) = row?;
            let h = codec::decode_header(k, v)?;
            if h.end_us > t_us {
                let segment = h.segment()?;
                if let Some(index) = segment.fragment_from(t_us) {
                    consider(&mut best, Located { segment, index });
                }
            }
        }
        let after = (Bound::Excluded(&mid[..]), Bound::Unbounded);
        for row in self.segments.range(txn, &after)? {
            let (k, v) = row?;
            let h = codec::decode_header(k, v)?;
            if h.fragment_count > 0 {
                // Rows are in start order and a fragment never precedes its segment's
                // start, so the first non-empty later segment has the earliest one.
                consider(
                    &mut best,
                    Located {
                        segment: h.segment()?,
                        index: 0,
                    },
                );
                break;
            }
        }
        Ok(best)
    }
}

impl Store {
    /// Hands out the next segment id, durably: the id is never handed out again, even
    /// if the caller crashes before using it. Allocate, write the file, then insert.
    pub fn allocate_segment_id(&self) -> Result<SegmentId, StoreError> {
        self.write(|txn| {
            let id = self
                .tables
                .meta_u64(txn, key::NEXT_SEGMENT_ID)?
                .unwrap_or(1);
            self.tables
                .set_meta_u64(txn, key::NEXT_SEGMENT_ID, id.saturating_add(1))?;
            Ok(SegmentId(id))
        })
    }

    /// Hands out `count` consecutive ids in one transaction (re-indexing orphans).
    pub fn allocate_segment_ids(&self, count: u64) -> Result<Vec<SegmentId>, StoreError> {
        let first = self.write(|txn| {
            let first = self
                .tables
                .meta_u64(txn, key::NEXT_SEGMENT_ID)?
                .unwrap_or(1);
            self.tables
                .set_meta_u64(txn, key::NEXT_SEGMENT_ID, first.saturating_add(count))?;
            Ok(first)
        })?;
        Ok((first..first.saturating_add(count))
            .map(SegmentId)
            .collect())
    }

    /// Inserts a segment row, or replaces the row with the same id (the start time may
    /// change). Durable when it returns. By the crash rule the file's bytes must already
    /// be durable (`fsync`ed) when this is called.
    pub fn put_segment(&self, segment: &Segment) -> Result<(), StoreError> {
        self.put_segments(std::slice::from_ref(segment))
    }

    /// [`put_segment`](Self::put_segment) for many rows in one transaction (one
    /// `fsync`): re-indexing orphans, imports. All or nothing.
    pub fn put_segments(&self, segments: &[Segment]) -> Result<(), StoreError> {
        self.write(|txn| {
            segments
                .iter()
                .try_for_each(|s| self.tables.put_segment(txn, s))
        })
    }

    /// The segment with this id, with its fragment table.
    pub fn segment(&self, id: SegmentId) -> Result<Option<Segment>, StoreError> {
        self.read(|txn| self.tables.get_segment(txn, id))
    }

    /// Segments overlapping `[from, to)` in start order, at most `limit`. To page,
    /// ask again from the `end_us` of the last one returned.
    pub fn segments_overlapping(
        &self,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<SegmentSummary>, StoreError> {
        if from_us >= to_us || limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let lo = from_us.saturating_sub(self.tables.max_span(txn)?);
            let lo = codec::segment_key(lo, SegmentId(0));
            let hi = codec::segment_key(to_us, SegmentId(0));
            let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
            let mut out = Vec::new();
            for row in self.tables.segments.range(txn, &range)? {
                let (k, v) = row?;
                let h = codec::decode_header(k, v)?;
                if overlaps(&h, from_us, to_us) {
                    out.push(h.summary());
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// The fragment covering instant `t` (µs), or `None` if no recording covers it
    /// (a gap, before the first or after the last). A seek plus a binary search.
    pub fn find_at(&self, t_us: u64) -> Result<Option<Located>, StoreError> {
        self.read(|txn| self.tables.find_at(txn, t_us))
    }

    /// The fragment covering `t`, or else the next fragment after `t`: where playback
    /// asked to start at `t` begins. `None` only after the last recording.
    pub fn find_from(&self, t_us: u64) -> Result<Option<Located>, StoreError> {
        self.read(|txn| self.tables.find_from(txn, t_us))
    }

    /// The segment that starts first.
    pub fn oldest_segment(&self) -> Result<Option<SegmentSummary>, StoreError> {
        self.read(|txn| match self.tables.segments.first(txn)? {
            Some((k, v)) => Ok(Some(codec::decode_header(k, v)?.summary())),
            None => Ok(None),
        })
    }

    /// The segment that starts last.
    pub fn newest_segment(&self) -> Result<Option<SegmentSummary>, StoreError> {
        self.read(|txn| match self.tables.segments.last(txn)? {
            Some((k, v)) => Ok(Some(codec::decode_header(k, v)?.summary())),
            None => Ok(None),
        })
    }

    /// Deletes a row and returns it. Delete the row first, then the file: a crash in
    /// between leaves an orphan file, which `reconcile` reports; the reverse order
    /// would leave a row pointing at nothing.
    pub fn delete_segment(&self, id: SegmentId) -> Result<Option<SegmentSummary>, StoreError> {
        self.write(|txn| self.tables.delete_segment(txn, id))
    }

    /// [`delete_segment`](Self::delete_segment) for many rows in one transaction.
    /// Returns the rows that existed.
    pub fn delete_segments(&self, ids: &[SegmentId]) -> Result<Vec<SegmentSummary>, StoreError> {
        self.write(|txn| {
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                out.extend(self.tables.delete_segment(txn, id)?);
            }
            Ok(out)
        })
    }

    /// Sum of `bytes` over all segment rows, from a counter (no scan).
    pub fn total_bytes(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(self.tables.meta_u64(txn, key::SEGMENT_BYTES)?.unwrap_or(0)))
    }

    /// Number of segment rows (LMDB keeps the count in the B-tree header: no scan).
    pub fn segment_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(self.tables.segments.len(txn)?))
    }
}
