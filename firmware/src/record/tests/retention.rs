//! Retention by byte quota: oldest first, rows then files, never the open segment.

use std::time::Duration;

use super::*;
use crate::store::{RetentionPolicy, SegmentState};

/// Records 8 one-second segments under `quota` bytes; returns the surviving rows, the
/// final status and the number of segment files left on disk.
fn run(quota: u64) -> (Data, Vec<Segment>, RecorderStatus, usize) {
    let keys = keys();
    let data = Data::new();
    let mut video = Video::new(FPS / 2, 400_000);
    let packets = video.packets(0..8 * u64::from(FPS));
    let mut config = data.config();
    config.segment_duration = Duration::from_secs(1);
    config.retention = RetentionPolicy {
        max_age_us: None,
        max_bytes: Some(quota),
    };
    let status = record(&data, config, &keys, packets, |_| {});
    let segments = data.segments();
    let files = all_files(&data.path.join(layout::SEGMENTS_DIR)).len();
    (data, segments, status, files)
}

#[test]
fn record_retention_by_quota_deletes_oldest_first_never_the_open_segment() {
    if no_io_uring("record_retention_by_quota_deletes_oldest_first_never_the_open_segment") {
        return;
    }
    // A quota below one segment: after each close only the open segment may remain,
    // so the oldest seven go, one by one, and the last one stays.
    let (data, segments, status, files) = run(1);
    assert_eq!(status.segments_written, 8, "{status:?}");
    assert_eq!(status.segments_deleted, 7, "{status:?}");
    let [last] = &segments[..] else {
        panic!("only the newest segment survives: {segments:?}");
    };
    assert_eq!(last.id.0, 8, "ids 1..=7 were deleted, the newest kept");
    assert_eq!(last.state, SegmentState::Complete);
    assert_eq!(files, 1, "deleted rows' files are gone too");
    assert!(data.file(last).exists());
    assert_eq!(status.bytes_used, last.bytes);

    // A quota of about three segments keeps the newest ones that fit, oldest deleted.
    let size = last.bytes;
    let (data, segments, status, files) = run(3 * size + size / 2);
    let ids: Vec<u64> = segments.iter().map(|s| s.id.0).collect();
    assert!(
        ids == [5, 6, 7, 8] || ids == [6, 7, 8],
        "the newest segments remain, contiguous: {ids:?}"
    );
    assert_eq!(status.segments_deleted, 8 - ids.len() as u64);
    assert_eq!(files, ids.len());
    let total: u64 = segments.iter().map(|s| s.bytes).sum();
    assert_eq!(data.store.total_bytes().unwrap(), total);
    // Retention runs when a segment closes, while the next one is open: it may leave
    // the quota exceeded by the open segment, never by closed ones.
    let closed: u64 = segments[..segments.len() - 1].iter().map(|s| s.bytes).sum();
    assert!(
        closed <= 3 * size + size / 2,
        "{closed} bytes of closed segments"
    );
}
