//! Retention: which segments to delete for a maximum age and a storage quota.
//!
//! Oldest first (by start time), never the segment being written — neither the id the
//! caller names nor any row still in state `writing`. A segment is too old when its
//! *end* is older than the maximum age, so a recording is kept whole while any part of
//! it is young enough. The quota is met by deleting from the oldest end until the byte
//! total (the maintained counter) fits.
//!
//! [`Store::retention_candidates`] only chooses (a preview, or a caller that wants to
//! delete files first); [`Store::apply_retention`] chooses and deletes the rows in one
//! transaction, so a row inserted meanwhile cannot be counted wrong. Either way the
//! caller deletes the files afterwards: a crash in between leaves orphan files, which
//! `reconcile` reports at the next start.

use heed::RoTxn;

use super::codec;
use super::error::StoreError;
use super::schema::key;
use super::segments::{SegmentId, SegmentState, SegmentSummary};
use super::{Store, Tables};

/// Limits on what is kept. `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep segments whose end is at most this old (µs).
    pub max_age_us: Option<u64>,
    /// Keep at most this many bytes of segments.
    pub max_bytes: Option<u64>,
}

impl Tables {
    fn retention_candidates(
        &self,
        txn: &RoTxn<'_>,
        policy: &RetentionPolicy,
        now_us: u64,
        writing: Option<SegmentId>,
    ) -> Result<Vec<SegmentSummary>, StoreError> {
        let cutoff = policy.max_age_us.map(|age| now_us.saturating_sub(age));
        let mut remaining = self.meta_u64(txn, key::SEGMENT_BYTES)?.unwrap_or(0);
        let mut out = Vec::new();
        for row in self.segments.iter(txn)? {
            let (k, v) = row?;
            let h = codec::decode_header(k, v)?;
            let expired = cutoff.is_some_and(|c| h.end_us <= c);
            let over_quota = policy.max_bytes.is_some_and(|q| remaining > q);
            if !expired && !over_quota {
                // The total only shrinks, so the quota is met for good; and a later row
                // (start >= this start) can only be expired if this one starts before
                // the cutoff. Otherwise nothing further qualifies.
                if cutoff.is_none_or(|c| h.start_us >= c) {
                    break;
                }
                continue;
            }
            if Some(h.id) == writing || h.state == SegmentState::Writing {
                continue;
            }
            remaining = remaining.saturating_sub(h.bytes);
            out.push(h.summary());
        }
        Ok(out)
    }
}

impl Store {
    /// Segments to delete to satisfy `policy` at time `now_us`, oldest first, never
    /// `writing` nor any row still being written. Deletes nothing.
    pub fn retention_candidates(
        &self,
        policy: &RetentionPolicy,
        now_us: u64,
        writing: Option<SegmentId>,
    ) -> Result<Vec<SegmentSummary>, StoreError> {
        self.read(|txn| {
            self.tables
                .retention_candidates(txn, policy, now_us, writing)
        })
    }

    /// Chooses as [`retention_candidates`](Self::retention_candidates) does and deletes
    /// those rows in the same transaction. Returns them: the caller deletes their files.
    pub fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now_us: u64,
        writing: Option<SegmentId>,
    ) -> Result<Vec<SegmentSummary>, StoreError> {
        self.write(|txn| {
            let chosen = self
                .tables
                .retention_candidates(txn, policy, now_us, writing)?;
            for s in &chosen {
                self.tables.delete_segment(txn, s.id)?;
            }
            Ok(chosen)
        })
    }
}
