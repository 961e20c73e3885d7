//! Start-up repair: make the index agree with the segment files on disk.
//!
//! By the crash rule (see the module doc of `store`) the index can only be behind the
//! disk after a power cut. Given the listing of segment files that really exist,
//! [`Store::reconcile`] fixes the index in one transaction:
//!
//! - a row whose file is missing is removed (the file was being deleted, or is gone);
//! - a row left `writing` becomes `interrupted`, its fragment table cut to the
//!   fragments that lie wholly inside the file (`offset + len <= size`), its end and
//!   byte count set from what is really there;
//! - a row of any state whose file is now shorter than its fragments is cut the same
//!   way and marked `interrupted` (a damaged card, a copy cut short);
//! - a row whose file size differs from its byte count gets the file's size, so the
//!   quota counts what the disk holds;
//! - files without a row are returned as orphans: the recorder may re-index them
//!   (parse the fragments, [`Store::put_segments`]) or delete them.
//!
//! The byte total and the max span are recomputed from the scan, so any drift is
//! healed too. Only row headers are decoded, except for rows that need cutting: 10 000
//! rows take ~12 ms on a development host including the commit's `fsync`, a year of
//! one-minute rows ~1 s (see `measure.rs`). Call it before the recorder starts.

use std::collections::HashMap;

use super::Store;
use super::codec;
use super::error::StoreError;
use super::schema::key;
use super::segments::{Segment, SegmentId, SegmentState, SegmentSummary};

/// A segment file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFile {
    /// Path relative to the data directory, spelled as in the rows (`/`-separated).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// A row that was cut back to the fragments its file really holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedSegment {
    pub id: SegmentId,
    pub path: String,
    /// State before reconciling (`Writing`, or another state for a damaged file).
    pub previous_state: SegmentState,
    /// File size on disk.
    pub file_bytes: u64,
    pub kept_fragments: usize,
    pub dropped_fragments: usize,
    /// End of the last kept fragment (0 if none): the bytes after it hold no whole
    /// fragment, and the caller may truncate the file there.
    pub valid_len: u64,
}

/// What [`Store::reconcile`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// Rows looked at.
    pub rows_checked: usize,
    /// Rows removed because their file is missing.
    pub missing: Vec<SegmentSummary>,
    /// Rows marked `interrupted` and cut to the file.
    pub interrupted: Vec<InterruptedSegment>,
    /// Rows whose byte count was set to a different file size, fragments intact.
    pub resized: Vec<SegmentId>,
    /// Files with no row; the caller re-indexes or deletes them.
    pub orphans: Vec<DiskFile>,
}

impl ReconcileSummary {
    /// True when the index already agreed with the disk.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.interrupted.is_empty()
            && self.resized.is_empty()
            && self.orphans.is_empty()
    }
}

/// A change decided during the scan, applied after it (the scan borrows the table).
enum Change {
    Remove {
        key: [u8; codec::KEY_LEN],
        id: SegmentId,
    },
    Rewrite(Segment),
}

impl Store {
    /// Fixes the index against `files`, the segment files present on disk. See the
    /// module documentation for the rules.
    pub fn reconcile(&self, files: &[DiskFile]) -> Result<ReconcileSummary, StoreError> {
        let by_path: HashMap<&str, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_str(), i))
            .collect();
        let summary = self.write(|txn| {
            let mut summary = ReconcileSummary::default();
            let mut seen = vec![false; files.len()];
            let mut changes = Vec::new();
            let (mut total, mut span, mut max_id) = (0u64, 0u64, 0u64);
            for row in self.tables.segments.iter(txn)? {
                let (k, v) = row?;
                let h = codec::decode_header(k, v)?;
                summary.rows_checked += 1;
                max_id = max_id.max(h.id.0);
                let Some(&i) = by_path.get(h.path) else {
                    let key = k
                        .try_into()
                        .map_err(|_| StoreError::corrupt_row("segment key length"))?;
                    changes.push(Change::Remove { key, id: h.id });
                    summary.missing.push(h.summary());
                    continue;
                };
                seen[i] = true;
                let size = files[i].bytes;
                let (bytes, end) = if h.state == SegmentState::Writing || size < h.bytes {
                    let seg = cut_to_file(&h, size, &mut summary)?;
                    let kept = (seg.bytes, seg.end_us);
                    changes.push(Change::Rewrite(seg));
                    kept
                } else if size != h.bytes {
                    let mut seg = h.segment()?;
                    seg.bytes = size;
                    summary.resized.push(h.id);
                    changes.push(Change::Rewrite(seg));
                    (size, h.end_us)
                } else {
                    (h.bytes, h.end_us)
                };
                total = total.saturating_add(bytes);
                span = span.max(end - h.start_us);
            }
            for change in &changes {
                match change {
                    Change::Remove { key, id } => {
                        self.tables.segments.delete(txn, key)?;
                        self.tables.segment_ids.delete(txn, &id.0.to_be_bytes())?;
                    }
                    // Same start and id, so the same key: the id index stays right.
                    Change::Rewrite(seg) => {
                        let key = codec::segment_key(seg.start_us, seg.id);
                        self.tables
                            .segments
                            .put(txn, &key, &codec::encode_segment(seg))?;
                    }
                }
            }
            self.tables.set_meta_u64(txn, key::SEGMENT_BYTES, total)?;
            self.tables.set_meta_u64(txn, key::MAX_SPAN_US, span)?;
            let next = self
                .tables
                .meta_u64(txn, key::NEXT_SEGMENT_ID)?
                .unwrap_or(1);
            if next <= max_id {
                self.tables
                    .set_meta_u64(txn, key::NEXT_SEGMENT_ID, max_id + 1)?;
            }
            summary.orphans = files
                .iter()
                .zip(&seen)
                .filter(|(_, seen)| !**seen)
                .map(|(f, _)| f.clone())
                .collect();
            Ok(summary)
        })?;
        if summary.is_clean() {
            tracing::info!(rows = summary.rows_checked, "index agrees with the disk");
        } else {
            tracing::warn!(
                rows = summary.rows_checked,
                missing = summary.missing.len(),
                interrupted = summary.interrupted.len(),
                resized = summary.resized.len(),
                orphans = summary.orphans.len(),
                "index reconciled with the disk"
            );
        }
        Ok(summary)
    }
}

/// The row cut to the fragments wholly inside a file of `size` bytes, and the note of
/// it in the summary. Rows still `writing` always become `interrupted`; others only if
/// a fragment was lost.
fn cut_to_file(
    h: &codec::RowHeader<'_>,
    size: u64,
    summary: &mut ReconcileSummary,
) -> Result<Segment, StoreError> {
    let mut seg = h.segment()?;
    let total = seg.fragments.len();
    // Fragments are in file order, so the ones that fit are a prefix.
    let kept = seg.fragments.partition_point(|f| f.end_offset() <= size);
    seg.fragments.truncate(kept);
    let valid_len = seg.fragments.last().map_or(0, |f| f.end_offset());
    if h.state == SegmentState::Writing || kept < total {
        seg.state = SegmentState::Interrupted;
        seg.end_us = seg.fragments.last().map_or(seg.start_us, |f| f.end_us());
        summary.interrupted.push(InterruptedSegment {
            id: seg.id,
            path: seg.path.clone(),
            previous_state: h.state,
            file_bytes: size,
            kept_fragments: kept,
            dropped_fragments: total - kept,
            valid_len,
        });
    } else {
        summary.resized.push(seg.id);
    }
    seg.bytes = size;
    Ok(seg)
}
