//! The recorder's housekeeping: index commits, segment ids, retention, free space and
//! the reserve file. Everything here keeps the crash rule (rows before files when
//! deleting, durable files before rows when adding) and turns every failure into
//! status, never into a panic.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::Recorder;
use crate::record::error::RecordError;
use crate::record::layout;
use crate::record::segment_file::SegmentFile;
use crate::record::space::{self, RESERVE_FILE};
use crate::runtime;
use crate::store::{RetentionPolicy, SegmentId, Store, StoreError};

impl Recorder {
    /// Whether a segment may open now: not held off after an error, and enough free
    /// space (deleting old recordings to make it, if needed).
    pub(super) async fn may_open(&mut self, now: Instant) -> bool {
        if self.blocked_until.is_some_and(|until| now < until) {
            return false;
        }
        self.blocked_until = None;
        if !self.reserve_held {
            self.hold_reserve().await;
        }
        if self
            .free_bytes()
            .is_some_and(|free| free < self.room_needed())
        {
            self.retention(Some(self.room_needed())).await;
            if !self.reserve_held {
                self.hold_reserve().await;
            }
        }
        let needed = self.room_needed();
        match self.free_bytes() {
            Some(free) if free < needed => {
                let message = format!(
                    "not enough free space to record: {free} bytes free, {needed} needed, \
                     even after deleting old recordings"
                );
                tracing::warn!("{message}; retrying later");
                let first = !self.disk_full;
                self.disk_full = true;
                self.shared.update(|s| {
                    s.disk_full = true;
                    s.disk_full_events += u64::from(first);
                    s.last_error = Some(message);
                });
                self.blocked_until = Some(now + self.config.retry_interval);
                false
            }
            _ => true,
        }
    }

    /// Free space to have before a segment opens: the configured minimum; once the
    /// disk has been full, also room for two segments; and room for the reserve while
    /// it is not held.
    pub(super) fn room_needed(&self) -> u64 {
        let mut needed = self.config.min_free_bytes;
        if self.was_full {
            needed = needed.max(self.largest_segment.saturating_mul(2));
        }
        if !self.reserve_held {
            needed = needed.saturating_add(self.config.reserve_bytes);
        }
        needed
    }

    pub(super) fn free_bytes(&self) -> Option<u64> {
        match space::free_bytes(&self.config.data_dir) {
            Ok(free) => {
                self.shared.update(|s| s.bytes_free = Some(free));
                Some(free)
            }
            Err(e) => {
                tracing::warn!("cannot read the free space: {e}");
                None
            }
        }
    }

    pub(super) async fn hold_reserve(&mut self) {
        if self.config.reserve_bytes == 0 {
            self.reserve_held = true;
            return;
        }
        let path = self.config.data_dir.join(RESERVE_FILE);
        match runtime::reserve_space(&path, self.config.reserve_bytes).await {
            Ok(()) => self.reserve_held = true,
            Err(e) => {
                // Half a reserve is no use and takes space: give it back.
                let _ = runtime::remove_file(&path).await;
                tracing::warn!("cannot set space aside in {}: {e}", path.display());
            }
        }
    }

    pub(super) async fn release_reserve(&mut self) {
        if !self.reserve_held || self.config.reserve_bytes == 0 {
            return;
        }
        let path = self.config.data_dir.join(RESERVE_FILE);
        match runtime::remove_file(&path).await {
            Ok(()) => tracing::warn!("disk full: gave up the reserve file"),
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
        self.reserve_held = false;
    }

    /// Deletes what the retention policy says (and, with `free_target`, the oldest
    /// recordings until that many bytes are free), never the open segment: rows
    /// first, then files, so a crash in between leaves orphans, not dangling rows.
    pub(super) async fn retention(&mut self, free_target: Option<u64>) {
        let mut policy = self.config.retention;
        if let Some(target) = free_target
            && let Some(free) = self.free_bytes()
            && free < target
        {
            match self.blocking(|store| store.total_bytes()).await {
                Ok(total) => {
                    let allowed = total.saturating_sub(target - free);
                    policy.max_bytes = Some(policy.max_bytes.map_or(allowed, |q| q.min(allowed)));
                }
                Err(e) => tracing::warn!("cannot read the index's byte total: {e}"),
            }
        }
        if policy == RetentionPolicy::default() {
            return;
        }
        let writing = self.current.as_ref().map(SegmentFile::id);
        let now_us = layout::unix_us(SystemTime::now());
        let removed = match self
            .blocking(move |store| store.apply_retention(&policy, now_us, writing))
            .await
        {
            Ok(removed) => removed,
            Err(e) => {
                let message = format!("cannot apply retention: {e}");
                tracing::error!("{message}");
                self.shared.update(|s| {
                    s.errors += 1;
                    s.last_error = Some(message);
                });
                return;
            }
        };
        if removed.is_empty() {
            return;
        }
        let mut dirs = BTreeSet::new();
        for segment in &removed {
            let path = layout::absolute(&self.config.data_dir, &segment.path);
            match runtime::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), "cannot delete: {e}"),
            }
            if let Some(dir) = path.parent() {
                dirs.insert(dir.to_path_buf());
            }
        }
        for dir in &dirs {
            remove_empty_dirs(&self.config.data_dir, dir).await;
        }
        tracing::info!(
            deleted = removed.len(),
            bytes = removed.iter().map(|s| s.bytes).sum::<u64>(),
            "retention deleted old recordings"
        );
        self.shared
            .update(|s| s.segments_deleted += removed.len() as u64);
        self.refresh_usage().await;
    }

    /// Commits the rows of closed segments and the durable part of the open
    /// segment's row, in one transaction. On failure the rows stay queued for the next
    /// commit; a full disk first costs the reserve file, then the commit is retried.
    pub(super) async fn commit_pending(&mut self) {
        let mut result = self.commit_once().await;
        if let Err(e) = &result
            && e.is_disk_full()
            && self.reserve_held
        {
            self.release_reserve().await;
            result = self.commit_once().await;
        }
        if let Err(e) = result {
            let message = format!("cannot update the index: {e}");
            tracing::error!("{message}");
            let disk_full = e.is_disk_full();
            self.disk_full |= disk_full;
            self.was_full |= disk_full;
            self.shared.update(|s| {
                s.errors += 1;
                s.last_error = Some(message);
                s.disk_full |= disk_full;
            });
        }
    }

    pub(super) async fn commit_once(&mut self) -> Result<(), RecordError> {
        let mut rows = self.pending.clone();
        let current = self.current.as_ref().map(SegmentFile::durable_row);
        rows.extend(current.clone());
        if rows.is_empty() {
            return Ok(());
        }
        let total = self
            .blocking(move |store| {
                store.put_segments(&rows)?;
                store.total_bytes()
            })
            .await?;
        self.pending.clear();
        if let (Some(segment), Some(row)) = (self.current.as_mut(), current.as_ref()) {
            segment.mark_committed(row);
        }
        self.shared.update(|s| s.bytes_used = total);
        Ok(())
    }

    pub(super) async fn refresh_usage(&self) {
        if let Ok(total) = self.blocking(|store| store.total_bytes()).await {
            self.shared.update(|s| s.bytes_used = total);
        }
        self.free_bytes();
    }

    pub(super) async fn next_id(&mut self) -> Result<SegmentId, RecordError> {
        if self.ids.is_empty() {
            let batch = self.config.id_batch.max(1);
            let ids = self
                .blocking(move |store| store.allocate_segment_ids(batch))
                .await?;
            let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
                return Err(RecordError::Task("the index handed out no ids".into()));
            };
            self.ids = first.0..last.0 + 1;
        }
        let id = self.ids.start;
        self.ids.start += 1;
        Ok(SegmentId(id))
    }

    /// Runs an index operation on the blocking pool: commits `fsync`.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RecordError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| RecordError::Task(e.to_string()))?
            .map_err(RecordError::from)
    }
}

/// Syncs `dir` (the removals in it) and removes it and its parents up to
/// `DATA/segments` while they are empty: an empty day directory is left behind by
/// retention once a day.
async fn remove_empty_dirs(data_dir: &Path, dir: &Path) {
    if let Err(e) = runtime::sync_dir(dir).await {
        tracing::warn!(dir = %dir.display(), "cannot sync: {e}");
        return;
    }
    let root = data_dir.join(layout::SEGMENTS_DIR);
    let mut at = dir.to_path_buf();
    while at.starts_with(&root) && at != root {
        // Fails when not empty, which is the usual case and ends the walk.
        if runtime::remove_dir(&at).await.is_err() {
            break;
        }
        match at.parent() {
            Some(parent) => {
                let _ = runtime::sync_dir(parent).await;
                at = parent.to_path_buf();
            }
            None => break,
        }
    }
}
