//! Behaviour of the store through its public API, on real LMDB environments in
//! temporary directories.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::schema::{self, SchemaRecord, key};
use super::*;

const S: u64 = 1_000_000;
const MIN: u64 = 60 * S;
const DAY: u64 = 24 * 60 * MIN;
/// 2024-06-01T00:00:00Z.
const T0: u64 = 1_717_200_000 * S;
/// Bytes before the first fragment (the fMP4 init segment) and per fragment.
const HEAD: u64 = 1_000;
const FRAG: u64 = 10_000;
const GOP: u64 = 2 * S;

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A segment of back-to-back 2 s fragments of 10 000 bytes after a 1 000-byte header.
fn build(id: SegmentId, start_us: u64, dur_us: u64, state: SegmentState) -> Segment {
    let n = dur_us / GOP;
    Segment {
        id,
        path: format!("rec/{:08}.seg", id.0),
        start_us,
        end_us: start_us + dur_us,
        bytes: HEAD + n * FRAG,
        state,
        trigger: Trigger::Continuous,
        fragments: (0..n)
            .map(|i| Fragment {
                offset: HEAD + i * FRAG,
                len: FRAG,
                start_us: start_us + i * GOP,
                duration_us: GOP,
            })
            .collect(),
    }
}

/// Allocates an id, builds and stores a segment.
fn add(store: &Store, start_us: u64, dur_us: u64, state: SegmentState) -> Segment {
    let seg = build(
        store.allocate_segment_id().unwrap(),
        start_us,
        dur_us,
        state,
    );
    store.put_segment(&seg).unwrap();
    seg
}

/// `count` complete one-minute segments back to back from `start`.
fn minutes(store: &Store, start_us: u64, count: u64) -> Vec<Segment> {
    let ids = store.allocate_segment_ids(count).unwrap();
    let segs: Vec<_> = (0..count)
        .zip(ids)
        .map(|(i, id)| build(id, start_us + i * MIN, MIN, SegmentState::Complete))
        .collect();
    store.put_segments(&segs).unwrap();
    segs
}

fn ids(list: &[SegmentSummary]) -> Vec<SegmentId> {
    list.iter().map(|s| s.id).collect()
}

fn files(segs: &[&Segment]) -> Vec<DiskFile> {
    segs.iter()
        .map(|s| DiskFile {
            path: s.path.clone(),
            bytes: s.bytes,
        })
        .collect()
}

/// The (segment, fragment) found at `t`, as ids.
fn at(store: &Store, t: u64) -> Option<(SegmentId, usize)> {
    store.find_at(t).unwrap().map(|l| (l.segment.id, l.index))
}

fn from(store: &Store, t: u64) -> Option<(SegmentId, usize)> {
    store.find_from(t).unwrap().map(|l| (l.segment.id, l.index))
}

// ---- opening, round trips ---------------------------------------------------------

#[test]
fn a_segment_round_trips_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.path(), dir.path().join("index"));
    assert!(dir.path().join("index/data.mdb").is_file());
    let mut seg = build(
        store.allocate_segment_id().unwrap(),
        T0,
        MIN,
        SegmentState::Complete,
    );
    seg.trigger = Trigger::Event;
    store.put_segment(&seg).unwrap();
    assert_eq!(store.segment(seg.id).unwrap().as_ref(), Some(&seg));
    assert_eq!(store.segment(SegmentId(99)).unwrap(), None);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.segment(seg.id).unwrap(), Some(seg.clone()));
    assert_eq!(store.segment_count().unwrap(), 1);
    assert_eq!(store.total_bytes().unwrap(), seg.bytes);
    assert_eq!(store.schema_version(), schema::SCHEMA_VERSION);
}

#[test]
fn ids_increase_and_are_never_reused_across_reopen_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.allocate_segment_id().unwrap();
    let b = store.allocate_segment_id().unwrap();
    assert_eq!((a, b), (SegmentId(1), SegmentId(2)));
    let seg = build(b, T0, MIN, SegmentState::Complete);
    store.put_segment(&seg).unwrap();
    store.delete_segment(b).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.allocate_segment_id().unwrap(), SegmentId(3));
}

#[test]
fn an_update_replaces_the_row_even_when_the_start_moves() {
    let (_dir, store) = open();
    let id = store.allocate_segment_id().unwrap();
    let mut seg = build(id, T0, 4 * S, SegmentState::Writing);
    store.put_segment(&seg).unwrap();
    // The recorder learns the real start (first keyframe) and finishes the segment.
    seg = build(id, T0 + 30 * S, MIN, SegmentState::Complete);
    store.put_segment(&seg).unwrap();
    assert_eq!(store.segment(id).unwrap(), Some(seg.clone()));
    assert_eq!(store.segment_count().unwrap(), 1);
    assert_eq!(store.total_bytes().unwrap(), seg.bytes);
    // Nothing is left under the old key.
    assert_eq!(at(&store, T0 + S), None);
    let listed = store.segments_overlapping(0, u64::MAX, 10).unwrap();
    assert_eq!(listed, vec![seg.summary()]);
}

#[test]
fn invalid_segments_are_refused_and_nothing_is_written() {
    let (_dir, store) = open();
    let id = store.allocate_segment_id().unwrap();
    let good = build(id, T0, MIN, SegmentState::Complete);
    let mut cases: Vec<(&str, Segment)> = Vec::new();
    let mut s = good.clone();
    s.id = SegmentId(42);
    cases.push(("unallocated id", s));
    for path in ["/abs/x.seg", "rec/../x.seg", "", "rec//x.seg", "rec\\x.seg"] {
        let mut s = good.clone();
        s.path = path.into();
        cases.push(("bad path", s));
    }
    let mut s = good.clone();
    s.fragments[3].offset -= 1;
    cases.push(("overlap in file", s));
    let mut s = good.clone();
    s.fragments[3].start_us -= 1;
    cases.push(("overlap in time", s));
    let mut s = good.clone();
    s.fragments[0].start_us = T0 - 1;
    cases.push(("before start", s));
    let mut s = good.clone();
    s.end_us -= 1;
    cases.push(("end before last fragment", s));
    let mut s = good.clone();
    s.bytes -= 1;
    cases.push(("bytes short of fragments", s));
    let mut s = good.clone();
    s.fragments[2].duration_us = 0;
    cases.push(("empty fragment", s));
    let mut s = good.clone();
    s.end_us = s.start_us + segments::MAX_SEGMENT_SPAN_US + 1;
    cases.push(("longer than a day", s));
    for (what, seg) in cases {
        let err = store.put_segment(&seg).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidSegment { .. }),
            "{what}: {err}"
        );
    }
    // A batch with one bad row writes nothing.
    let mut bad = good.clone();
    bad.path = "/x".into();
    assert!(store.put_segments(&[good.clone(), bad]).is_err());
    assert_eq!(store.segment_count().unwrap(), 0);
    assert_eq!(store.total_bytes().unwrap(), 0);
    store.put_segment(&good).unwrap();
}

// ---- range queries -----------------------------------------------------------------

#[test]
fn range_queries_respect_half_open_boundaries() {
    let (_dir, store) = open();
    let segs = minutes(&store, T0, 10);
    let id = |i: usize| segs[i].id;
    let list = |from, to, limit| ids(&store.segments_overlapping(from, to, limit).unwrap());

    // Exactly on segment boundaries: [start 3, start 5) is segments 3 and 4.
    assert_eq!(list(T0 + 3 * MIN, T0 + 5 * MIN, 100), vec![id(3), id(4)]);
    // Inside segments: both partial segments are included.
    assert_eq!(
        list(T0 + 3 * MIN + 30 * S, T0 + 5 * MIN + 1, 100),
        vec![id(3), id(4), id(5)]
    );
    // One microsecond wide, at the last instant of segment 6.
    assert_eq!(list(T0 + 7 * MIN - 1, T0 + 7 * MIN, 100), vec![id(6)]);
    // Before the first, after the last, empty and reversed ranges.
    assert!(list(T0 - DAY, T0, 100).is_empty());
    assert!(list(T0 + 10 * MIN, T0 + DAY, 100).is_empty());
    assert!(list(T0 + MIN, T0 + MIN, 100).is_empty());
    assert!(list(T0 + 2 * MIN, T0 + MIN, 100).is_empty());
    // Everything, in time order, and the limit.
    assert_eq!(
        list(0, u64::MAX, 100),
        segs.iter().map(|s| s.id).collect::<Vec<_>>()
    );
    assert_eq!(list(0, u64::MAX, 3), vec![id(0), id(1), id(2)]);
    assert!(list(0, u64::MAX, 0).is_empty());
}

#[test]
fn a_long_segment_that_starts_before_the_range_is_found() {
    let (_dir, store) = open();
    // A 2-hour event recording, then one-minute segments after it.
    let long = add(&store, T0, 120 * MIN, SegmentState::Complete);
    let later = minutes(&store, T0 + 120 * MIN, 3);
    let got = store
        .segments_overlapping(T0 + 119 * MIN, T0 + 121 * MIN, 10)
        .unwrap();
    assert_eq!(ids(&got), vec![long.id, later[0].id]);
    assert_eq!(at(&store, T0 + 90 * MIN + 1), Some((long.id, 2700)));
}

// ---- find at an instant ------------------------------------------------------------

#[test]
fn find_at_instants_inside_fragments_gaps_and_outside() {
    let (_dir, store) = open();
    let a = add(&store, T0, MIN, SegmentState::Complete);
    // Five-minute gap, then b.
    let b = add(&store, T0 + 6 * MIN, MIN, SegmentState::Complete);

    // Inside fragments: first instant, middle, last microsecond.
    assert_eq!(at(&store, T0), Some((a.id, 0)));
    assert_eq!(at(&store, T0 + S), Some((a.id, 0)));
    assert_eq!(at(&store, T0 + GOP - 1), Some((a.id, 0)));
    assert_eq!(at(&store, T0 + GOP), Some((a.id, 1)));
    assert_eq!(at(&store, T0 + 59 * S), Some((a.id, 29)));
    assert_eq!(at(&store, T0 + MIN - 1), Some((a.id, 29)));
    assert_eq!(at(&store, T0 + 6 * MIN + 31 * S), Some((b.id, 15)));
    // The gap between segments: at a's end, in the middle, just before b.
    assert_eq!(at(&store, T0 + MIN), None);
    assert_eq!(at(&store, T0 + 3 * MIN), None);
    assert_eq!(at(&store, T0 + 6 * MIN - 1), None);
    // Before the first and after the last.
    assert_eq!(at(&store, 0), None);
    assert_eq!(at(&store, T0 - 1), None);
    assert_eq!(at(&store, T0 + 7 * MIN), None);
    assert_eq!(at(&store, u64::MAX), None);

    let hit = store.find_at(T0 + 5 * S).unwrap().unwrap();
    assert_eq!(hit.segment, a);
    assert_eq!(*hit.fragment(), a.fragments[2]);
}

#[test]
fn find_at_respects_gaps_inside_a_segment() {
    let (_dir, store) = open();
    let id = store.allocate_segment_id().unwrap();
    let mut seg = build(id, T0, MIN, SegmentState::Complete);
    // Drop fragment 5: a 2 s hole (the encoder stalled) inside the segment.
    seg.fragments.remove(5);
    store.put_segment(&seg).unwrap();
    assert_eq!(at(&store, T0 + 9 * S), Some((id, 4)));
    assert_eq!(at(&store, T0 + 11 * S), None);
    assert_eq!(at(&store, T0 + 12 * S), Some((id, 5)));
    assert_eq!(from(&store, T0 + 11 * S), Some((id, 5)));
}

#[test]
fn find_from_moves_to_the_next_recording() {
    let (_dir, store) = open();
    let a = add(&store, T0, MIN, SegmentState::Complete);
    let b = add(&store, T0 + 6 * MIN, MIN, SegmentState::Complete);
    assert_eq!(from(&store, T0 + 3 * S), Some((a.id, 1)));
    assert_eq!(from(&store, T0 + 3 * MIN), Some((b.id, 0)));
    assert_eq!(from(&store, T0 - DAY), Some((a.id, 0)));
    assert_eq!(from(&store, T0 + 7 * MIN), None);
}

#[test]
fn overlapping_segments_prefer_the_later_start() {
    let (_dir, store) = open();
    let continuous = add(&store, T0, 10 * MIN, SegmentState::Complete);
    let event = add(&store, T0 + 2 * MIN, MIN, SegmentState::Complete);
    assert_eq!(at(&store, T0 + 2 * MIN + 3 * S), Some((event.id, 1)));
    assert_eq!(at(&store, T0 + 4 * MIN), Some((continuous.id, 120)));
}

// ---- counters ---------------------------------------------------------------------

#[test]
fn total_bytes_and_count_follow_insert_update_delete() {
    let (_dir, store) = open();
    let segs = minutes(&store, T0, 5);
    let sum = |s: &[Segment]| s.iter().map(|s| s.bytes).sum::<u64>();
    assert_eq!(store.total_bytes().unwrap(), sum(&segs));
    assert_eq!(store.segment_count().unwrap(), 5);

    // An update changes the size: the counter moves by the difference.
    let mut grown = segs[1].clone();
    grown.bytes += 12_345;
    store.put_segment(&grown).unwrap();
    assert_eq!(store.total_bytes().unwrap(), sum(&segs) + 12_345);

    let gone = store.delete_segment(segs[0].id).unwrap().unwrap();
    assert_eq!(gone, segs[0].summary());
    assert_eq!(store.delete_segment(segs[0].id).unwrap(), None);
    let gone = store
        .delete_segments(&[segs[2].id, segs[3].id, SegmentId(77)])
        .unwrap();
    assert_eq!(ids(&gone), vec![segs[2].id, segs[3].id]);
    assert_eq!(store.total_bytes().unwrap(), grown.bytes + segs[4].bytes);
    assert_eq!(store.segment_count().unwrap(), 2);
    assert_eq!(
        store.oldest_segment().unwrap().map(|s| s.id),
        Some(segs[1].id)
    );
    assert_eq!(
        store.newest_segment().unwrap().map(|s| s.id),
        Some(segs[4].id)
    );

    store.delete_segments(&[segs[1].id, segs[4].id]).unwrap();
    assert_eq!(store.total_bytes().unwrap(), 0);
    assert_eq!(store.segment_count().unwrap(), 0);
    assert_eq!(store.oldest_segment().unwrap(), None);
}

// ---- reconcile --------------------------------------------------------------------

#[test]
fn reconcile_fixes_missing_truncated_and_orphaned_files() {
    let (_dir, store) = open();
    let done = add(&store, T0, MIN, SegmentState::Complete);
    let lost = add(&store, T0 + MIN, MIN, SegmentState::Complete);
    let grew = add(&store, T0 + 2 * MIN, MIN, SegmentState::Complete);
    let damaged = add(&store, T0 + 3 * MIN, MIN, SegmentState::Complete);
    let cut = add(&store, T0 + 4 * MIN, MIN, SegmentState::Writing);
    let whole = add(&store, T0 + 5 * MIN, MIN, SegmentState::Writing);
    let empty = add(&store, T0 + 6 * MIN, MIN, SegmentState::Writing);

    let mut disk = files(&[&done, &grew, &damaged, &cut, &whole, &empty]);
    disk[1].bytes += 500; // grew: bytes appended after its last fragment
    disk[2].bytes = HEAD + 10 * FRAG + 7; // damaged: cut inside fragment 10
    disk[3].bytes = HEAD + 12 * FRAG + 4_321; // cut: power lost in fragment 12
    disk[5].bytes = HEAD - 100; // empty: not even the header made it
    let orphan = DiskFile {
        path: "rec/00000099.seg".into(),
        bytes: 77_777,
    };
    disk.push(orphan.clone());

    let summary = store.reconcile(&disk).unwrap();
    assert_eq!(summary.rows_checked, 7);
    assert_eq!(ids(&summary.missing), vec![lost.id]);
    assert_eq!(summary.resized, vec![grew.id]);
    assert_eq!(summary.orphans, vec![orphan]);
    let interrupted: Vec<_> = summary
        .interrupted
        .iter()
        .map(|i| {
            (
                i.id,
                i.previous_state,
                i.kept_fragments,
                i.dropped_fragments,
                i.valid_len,
            )
        })
        .collect();
    assert_eq!(
        interrupted,
        vec![
            (damaged.id, SegmentState::Complete, 10, 20, HEAD + 10 * FRAG),
            (cut.id, SegmentState::Writing, 12, 18, HEAD + 12 * FRAG),
            (whole.id, SegmentState::Writing, 30, 0, HEAD + 30 * FRAG),
            (empty.id, SegmentState::Writing, 0, 30, 0),
        ]
    );

    assert_eq!(store.segment(lost.id).unwrap(), None);
    let c = store.segment(cut.id).unwrap().unwrap();
    assert_eq!(c.state, SegmentState::Interrupted);
    assert_eq!(c.fragments, cut.fragments[..12]);
    assert_eq!(c.end_us, T0 + 4 * MIN + 24 * S);
    assert_eq!(c.bytes, disk[3].bytes);
    // Footage after the cut is gone from the index: the instant is a gap now.
    assert_eq!(at(&store, T0 + 4 * MIN + 23 * S), Some((cut.id, 11)));
    assert_eq!(at(&store, T0 + 4 * MIN + 25 * S), None);
    assert_eq!(
        store.segment(whole.id).unwrap().unwrap().fragments,
        whole.fragments
    );
    assert_eq!(store.segment(done.id).unwrap().unwrap(), done);
    assert_eq!(
        store.segment(grew.id).unwrap().unwrap().bytes,
        grew.bytes + 500
    );

    // The byte total is now what the disk holds for indexed files.
    let on_disk: u64 = disk[..6].iter().map(|f| f.bytes).sum();
    assert_eq!(store.total_bytes().unwrap(), on_disk);
    assert_eq!(store.segment_count().unwrap(), 6);

    // A second pass over the same disk finds nothing to do except the orphan.
    let again = store.reconcile(&disk).unwrap();
    assert!(again.missing.is_empty() && again.interrupted.is_empty() && again.resized.is_empty());
    assert_eq!(again.orphans.len(), 1);
    assert!(store.reconcile(&disk[..6]).unwrap().is_clean());
}

#[test]
fn reconcile_heals_a_drifted_byte_total() {
    let (_dir, store) = open();
    let segs = minutes(&store, T0, 3);
    store
        .write(|txn| store.tables.set_meta_u64(txn, key::SEGMENT_BYTES, 1))
        .unwrap();
    let summary = store
        .reconcile(&files(&segs.iter().collect::<Vec<_>>()))
        .unwrap();
    assert!(summary.is_clean());
    assert_eq!(
        store.total_bytes().unwrap(),
        segs.iter().map(|s| s.bytes).sum::<u64>()
    );
}

// ---- retention --------------------------------------------------------------------

#[test]
fn retention_by_age_is_oldest_first_and_spares_the_writing_segment() {
    let (_dir, store) = open();
    // One segment an hour for 10 days; the oldest is still being written (a clock
    // jump, or a very long event) and must survive anyway.
    let first = add(&store, T0, MIN, SegmentState::Writing);
    let hourly = store.allocate_segment_ids(239).unwrap();
    let rest: Vec<_> = (1..240)
        .zip(hourly)
        .map(|(h, id)| build(id, T0 + h * 60 * MIN, MIN, SegmentState::Complete))
        .collect();
    store.put_segments(&rest).unwrap();
    let now = T0 + 10 * DAY;
    let policy = RetentionPolicy {
        max_age_us: Some(3 * DAY),
        max_bytes: None,
    };
    let chosen = store
        .retention_candidates(&policy, now, Some(first.id))
        .unwrap();
    // The cutoff is hour 168: hours 1..=167 end before it, hour 168 ends a minute after.
    let expect: Vec<_> = rest[..167].iter().map(|s| s.id).collect();
    assert_eq!(ids(&chosen), expect);
    assert!(!ids(&chosen).contains(&first.id));
    assert!(chosen.windows(2).all(|w| w[0].start_us < w[1].start_us));

    // Same answer with no id given: a row in state `writing` is never chosen.
    assert_eq!(
        store.retention_candidates(&policy, now, None).unwrap(),
        chosen
    );

    let deleted = store.apply_retention(&policy, now, Some(first.id)).unwrap();
    assert_eq!(deleted, chosen);
    assert_eq!(store.segment_count().unwrap(), 240 - 167);
    assert!(
        store
            .retention_candidates(&policy, now, Some(first.id))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_by_quota_deletes_just_enough_and_never_the_writing_segment() {
    let (_dir, store) = open();
    let segs = minutes(&store, T0, 10);
    let writing = add(&store, T0 + 10 * MIN, MIN, SegmentState::Writing);
    let each = segs[0].bytes;
    let total = store.total_bytes().unwrap();
    assert_eq!(total, 11 * each);

    // Room for 7.5 segments: the 4 oldest go.
    let policy = RetentionPolicy {
        max_age_us: None,
        max_bytes: Some(7 * each + each / 2),
    };
    let chosen = store
        .retention_candidates(&policy, T0, Some(writing.id))
        .unwrap();
    assert_eq!(
        ids(&chosen),
        segs[..4].iter().map(|s| s.id).collect::<Vec<_>>()
    );
    store
        .apply_retention(&policy, T0, Some(writing.id))
        .unwrap();
    assert_eq!(store.total_bytes().unwrap(), 7 * each);

    // A quota below the writing segment: everything else goes, the writing one stays.
    let tiny = RetentionPolicy {
        max_age_us: None,
        max_bytes: Some(1),
    };
    let chosen = store.apply_retention(&tiny, T0, Some(writing.id)).unwrap();
    assert_eq!(chosen.len(), 6);
    assert_eq!(
        ids(&store.segments_overlapping(0, u64::MAX, 100).unwrap()),
        vec![writing.id]
    );
    assert!(
        store
            .apply_retention(&tiny, T0, Some(writing.id))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_combines_age_and_quota() {
    let (_dir, store) = open();
    let segs = minutes(&store, T0, 6);
    let each = segs[0].bytes;
    // Age alone takes 2; the quota (3 segments) needs one more.
    let policy = RetentionPolicy {
        max_age_us: Some(4 * MIN),
        max_bytes: Some(3 * each),
    };
    let chosen = store
        .retention_candidates(&policy, T0 + 6 * MIN, None)
        .unwrap();
    assert_eq!(
        ids(&chosen),
        segs[..3].iter().map(|s| s.id).collect::<Vec<_>>()
    );
}

// ---- crashes and damaged files ----------------------------------------------------

/// Copies the environment files as a power cut would leave them: the page cache holds
/// every committed page and none of an open transaction (no `WRITE_MAP`).
fn snapshot(index: &Path, to: &Path) {
    let dst = to.join(Store::INDEX_DIR);
    fs::create_dir_all(&dst).unwrap();
    for f in ["data.mdb", "lock.mdb"] {
        fs::copy(index.join(f), dst.join(f)).unwrap();
    }
}

#[test]
fn committed_rows_survive_a_crash_in_the_middle_of_a_transaction() {
    let (_dir, store) = open();
    let kept = minutes(&store, T0, 3);
    let in_flight = build(
        store.allocate_segment_id().unwrap(),
        T0 + 3 * MIN,
        MIN,
        SegmentState::Writing,
    );
    let crashed = tempfile::tempdir().unwrap();
    let outcome = store.write(|txn| {
        store.tables.put_segment(txn, &in_flight)?;
        // The power goes out here: the store is never closed, the transaction never
        // commits.
        snapshot(store.path(), crashed.path());
        Err::<(), _>(StoreError::UnknownTable("simulated crash".into()))
    });
    assert!(outcome.is_err());

    let after = Store::open(crashed.path()).unwrap();
    let listed = after.segments_overlapping(0, u64::MAX, 100).unwrap();
    assert_eq!(ids(&listed), kept.iter().map(|s| s.id).collect::<Vec<_>>());
    assert_eq!(after.segment(in_flight.id).unwrap(), None);
    assert_eq!(
        after.total_bytes().unwrap(),
        kept.iter().map(|s| s.bytes).sum::<u64>()
    );
    // The id handed out before the crash is not handed out again.
    assert!(after.allocate_segment_id().unwrap() > in_flight.id);
    // And the index takes writes again.
    add(&after, T0 + 10 * MIN, MIN, SegmentState::Complete);
}

const CRASH_DIR_VAR: &str = "MECAM_STORE_CRASH_CHILD_DIR";

/// The child half of `a_killed_process_loses_only_its_open_transaction`: commits three
/// rows, then dies with `abort()` inside a fourth transaction. Does nothing unless run
/// by that test.
#[test]
#[ignore = "run as a child process by a_killed_process_loses_only_its_open_transaction"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_VAR) else {
        return;
    };
    let store = Store::open(&dir).unwrap();
    minutes(&store, T0, 3);
    let next = build(
        store.allocate_segment_id().unwrap(),
        T0 + 3 * MIN,
        MIN,
        SegmentState::Writing,
    );
    let _ = store.write(|txn| -> Result<(), StoreError> {
        store.tables.put_segment(txn, &next)?;
        std::process::abort()
    });
}

#[test]
fn a_killed_process_loses_only_its_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "store::tests::crash_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_DIR_VAR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    // Under qemu-user without binfmt_misc the test binary cannot exec itself: spawning
    // fails, or the forked child exits with 127. The in-process snapshot test above
    // still covers the rule there.
    let status = match status {
        Ok(s) if s.code() == Some(127) => {
            eprintln!("skipped: the test binary cannot be run as a child process here");
            return;
        }
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipped: cannot run the test binary as a child: {e}");
            return;
        }
    };
    assert!(!status.success(), "the child was meant to abort");
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.segment_count().unwrap(), 3);
    assert_eq!(store.segment(SegmentId(4)).unwrap(), None);
    assert_eq!(store.allocate_segment_id().unwrap(), SegmentId(5));
    assert_eq!(store.total_bytes().unwrap(), 3 * (HEAD + 30 * FRAG));
}

#[test]
fn a_garbage_data_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join(Store::INDEX_DIR);
    fs::create_dir_all(&index).unwrap();
    // 64 KiB of xorshift noise.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(index.join("data.mdb"), noise).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("damaged") && msg.contains("move"), "{msg}");
    assert!(msg.contains(&index.display().to_string()), "{msg}");
}

#[test]
fn a_truncated_data_file_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    minutes(&store, T0, 1_000);
    let data = store.path().join("data.mdb");
    drop(store);
    let len = fs::metadata(&data).unwrap().len();
    assert!(len > 64 * 1024, "test needs a multi-page file, got {len}");
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn opening_twice_in_one_process_is_refused() {
    let (dir, _store) = open();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err:?}");
}

// ---- schema -----------------------------------------------------------------------

fn write_schema(dir: &Path, record: SchemaRecord) {
    let store = Store::open(dir).unwrap();
    store
        .write(|txn| Ok(store.tables.meta.put(txn, key::SCHEMA, &record.encode())?))
        .unwrap();
}

#[test]
fn an_index_from_newer_incompatible_firmware_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let future = SchemaRecord {
        version: schema::SCHEMA_VERSION + 5,
        min_reader: schema::SCHEMA_VERSION + 1,
    };
    write_schema(dir.path(), future);
    let err = Store::open(dir.path()).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found,
            min_reader,
            supported,
            ..
        } => assert_eq!(
            (*found, *min_reader, *supported),
            (future.version, future.min_reader, schema::SCHEMA_VERSION)
        ),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("newer firmware"), "{err}");
    // Refusing wrote nothing: the record is still the future one.
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }));
}

#[test]
fn an_index_from_newer_compatible_firmware_opens_and_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let future = SchemaRecord {
        version: schema::SCHEMA_VERSION + 1,
        min_reader: schema::MIN_READER_VERSION,
    };
    write_schema(dir.path(), future);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version(), future.version);
    drop(store);
    // Not lowered by the older build (an OTA rollback must not undo the newer layout).
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version(), future.version);
}

// ---- map size ---------------------------------------------------------------------

#[test]
fn a_full_map_grows_and_the_write_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreOptions {
        map_size: 256 * 1024,
        max_map_size: 64 << 20,
    };
    let store = Store::open_with(dir.path(), small).unwrap();
    let first = store.map_size();
    // 2 000 rows of ~300 bytes in one transaction: far more than 256 KiB.
    let batch = minutes(&store, T0, 2_000);
    assert!(store.map_size() > first, "map stayed at {first}");
    assert_eq!(store.segment_count().unwrap(), 2_000);
    drop(store);
    // The grown map is kept by LMDB across reopen with the small setting.
    let store = Store::open_with(dir.path(), small).unwrap();
    assert_eq!(
        store.segment(batch[1_999].id).unwrap().as_ref(),
        Some(&batch[1_999])
    );
}

#[test]
fn a_map_at_its_ceiling_is_a_clear_error_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let capped = StoreOptions {
        map_size: 128 * 1024,
        max_map_size: 512 * 1024,
    };
    let store = Store::open_with(dir.path(), capped).unwrap();
    let mut stored = 0u64;
    let err = loop {
        let batch = store.allocate_segment_ids(100).map(|ids| {
            (stored..)
                .zip(ids)
                .map(|(i, id)| build(id, T0 + i * MIN, MIN, SegmentState::Complete))
                .collect::<Vec<_>>()
        });
        match batch.and_then(|b| store.put_segments(&b)) {
            Ok(()) => stored += 100,
            Err(e) => break e,
        }
        assert!(stored < 100_000, "the map never filled");
    };
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert!(err.to_string().contains("is full"), "{err}");
    assert!(stored > 0);
    assert_eq!(store.segment_count().unwrap(), stored);
    assert_eq!(store.total_bytes().unwrap(), stored * (HEAD + 30 * FRAG));
    // Deleting makes room again.
    let oldest: Vec<_> = ids(&store.segments_overlapping(0, u64::MAX, 50).unwrap());
    store.delete_segments(&oldest).unwrap();
    add(&store, T0 + DAY * 365, MIN, SegmentState::Complete);
}

// ---- settings and other tables ------------------------------------------------------

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Retention {
    days: u32,
    quota_gib: f64,
}

#[test]
fn settings_round_trip_as_json_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Retention {
        days: 14,
        quota_gib: 20.5,
    };
    store.set_setting("recording.retention", &r).unwrap();
    store
        .set_setting("camera.name", &"porch".to_string())
        .unwrap();
    assert_eq!(
        store.setting::<Retention>("recording.retention").unwrap(),
        Some(r)
    );
    assert_eq!(store.setting::<u32>("nothing.here").unwrap(), None);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.settings().unwrap(),
        vec![
            ("camera.name".to_string(), serde_json::json!("porch")),
            (
                "recording.retention".to_string(),
                serde_json::json!({"days": 14, "quota_gib": 20.5})
            ),
        ]
    );
    // A stored value of another shape is an error naming the key, not a panic.
    let err = store.setting::<u32>("camera.name").unwrap_err();
    assert!(
        matches!(&err, StoreError::Setting { key, .. } if key == "camera.name"),
        "{err:?}"
    );
    assert!(store.remove_setting("camera.name").unwrap());
    assert!(!store.remove_setting("camera.name").unwrap());
    assert!(store.set_setting("", &1).is_err());
    assert!(store.set_setting(&"k".repeat(300), &1).is_err());
}

#[test]
fn reserved_tables_open_in_the_same_environment() {
    use heed::types::Str;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let users = store.table::<Str, Str>("users").unwrap();
    store
        .write(|txn| Ok(users.put(txn, "owner", "argon2id$...")?))
        .unwrap();
    assert!(matches!(
        store.table::<Str, Str>("scratch"),
        Err(StoreError::UnknownTable(_))
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let users = store.table::<Str, Str>("users").unwrap();
    let got = store
        .read(|txn| Ok(users.get(txn, "owner")?.map(str::to_owned)))
        .unwrap();
    assert_eq!(got.as_deref(), Some("argon2id$..."));
    // Own and reserved names never collide.
    for (name, _) in schema::RESERVED_TABLES {
        assert!(!schema::OWN_TABLES.contains(name), "{name}");
    }
    assert!(
        (schema::OWN_TABLES.len() + schema::RESERVED_TABLES.len()) as u32 <= schema::MAX_TABLES
    );
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
    let (_dir, store) = open();
    let store = std::sync::Arc::new(store);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    add(
                        &store,
                        T0 + (w * 100 + i) * MIN,
                        MIN,
                        SegmentState::Complete,
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(store.segment_count().unwrap(), 100);
    assert_eq!(store.total_bytes().unwrap(), 100 * (HEAD + 30 * FRAG));
}

#[test]
fn a_damaged_row_is_an_error_naming_the_index_not_a_panic() {
    let (_dir, store) = open();
    let seg = add(&store, T0, MIN, SegmentState::Complete);
    let key = super::codec::segment_key(seg.start_us, seg.id);
    store
        .write(|txn| Ok(store.tables.segments.put(txn, &key, &[1, 1, 0, 0xff])?))
        .unwrap();
    for err in [
        store.segment(seg.id).unwrap_err(),
        store.find_at(T0 + S).unwrap_err(),
        store.segments_overlapping(0, u64::MAX, 10).unwrap_err(),
        store.reconcile(&[]).unwrap_err(),
    ] {
        match &err {
            StoreError::Corrupt { path, .. } => assert_eq!(path, store.path()),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
